from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from settleguard.collector.alerts.smpp_gateway import SmppGateway

from .smsc import TestSMSC


@pytest.fixture
def smsc() -> Iterator[TestSMSC]:
    server = TestSMSC()
    yield server
    server.close()


@pytest.fixture
def smpp_gateway(smsc: TestSMSC) -> Iterator[Callable[..., SmppGateway]]:
    made: list[SmppGateway] = []

    def make(**query: object) -> SmppGateway:
        opts = {"timeout": 1, "submit_timeout": 3, "throttle_delay": 0.02, **query}
        gateway = SmppGateway.from_url(smsc.url(**opts))
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()
