"""Shared pytest fixtures: a fresh PostgreSQL database and a real Mosquitto broker.

Loaded for the whole suite by the root ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.mosquitto import Broker, running_broker
from tests.helpers.postgres import fresh_database


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of an empty PostgreSQL database, dropped after the test (skips if no server)."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def mosquitto_broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto on a free port with our generated config and no agents yet."""
    with running_broker(tmp_path / "broker") as broker:
        yield broker
