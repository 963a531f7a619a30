"""Fixtures for the agent's outbox/sync tests: an agent home, a real broker, an ack double."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from settleguard.agent.config import SyncSettings
from settleguard.agent.home import AgentHome, agent_home
from settleguard.agent.keys import AgentKey, load_or_create_key
from settleguard.agent.outbox import Outbox
from settleguard.agent.sync import BrokerTarget, SyncLink

from tests.agent.ackdouble import AckDouble
from tests.agent.samples import sample_record  # noqa: F401 - re-exported for tests
from tests.helpers.mosquitto import Broker, running_broker

AGENT_PASSWORD = "agent-test-pw"


@pytest.fixture
def home(tmp_path: Path) -> AgentHome:
    return agent_home(tmp_path / "agent-home")


@pytest.fixture
def key(home: AgentHome) -> AgentKey:
    return load_or_create_key(home)


@pytest.fixture
def broker(tmp_path: Path, key: AgentKey) -> Iterator[Broker]:
    with running_broker(tmp_path / "broker", agents={key.agent_id: AGENT_PASSWORD}) as running:
        yield running


@pytest.fixture
def ack_double(broker: Broker, key: AgentKey) -> Iterator[AckDouble]:
    user, password = broker.collector
    double = AckDouble(broker.port, user, password, {key.agent_id: key.private_key.public_key()})
    double.start()
    yield double
    double.stop()


@dataclass
class LinkFactory:
    broker: Broker
    key: AgentKey
    home: AgentHome

    def __call__(self, outbox: Outbox | None = None, **settings: object) -> SyncLink:
        target = BrokerTarget.from_url(
            f"mqtt://127.0.0.1:{self.broker.port}",
            username=self.key.agent_id,
            password=AGENT_PASSWORD,
        )
        box = outbox or Outbox(self.home.outbox_path)
        return SyncLink(box, self.key, target, SyncSettings(**settings))  # type: ignore[arg-type]


@pytest.fixture
def make_link(broker: Broker, key: AgentKey, home: AgentHome) -> LinkFactory:
    return LinkFactory(broker, key, home)
