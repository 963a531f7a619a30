"""A real Mosquitto broker on a free loopback port, configured by OUR generated files.

Reuse: ``with running_broker(tmp_path, agents={"a1": "pw"}) as broker: broker.port`` or the
``mosquitto_broker`` fixture in :mod:`tests.helpers.fixtures`. ``broker.collector`` holds the
collector's credentials; ``broker.set_agents({...})`` rewrites the password file and reloads the
broker with SIGHUP, as approve/revoke do in production.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from settleguard.collector.enrollment import broker as broker_config
from settleguard.collector.enrollment.broker import free_port


def wait_until(condition, timeout: float = 10.0, interval: float = 0.01, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll ``condition()`` until it is truthy; return its value or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Broker:
    """A running broker and the files it was started with."""

    port: int
    files: broker_config.BrokerFiles
    process: subprocess.Popen[bytes]
    collector: tuple[str, str]
    agents: dict[str, str] = field(default_factory=dict)

    def set_agents(self, agents: dict[str, str]) -> None:
        """Replace the agent credentials (``agent_id -> clear password``) and SIGHUP."""
        self.agents = dict(agents)
        user, password = self.collector
        broker_config.write_password_file(
            self.files.password_file,
            (user, broker_config.hash_password(password)),
            {a: broker_config.hash_password(p) for a, p in agents.items()},
        )
        assert broker_config.reload_broker(pid=self.process.pid)


@contextmanager
def running_broker(
    directory: Path,
    agents: dict[str, str] | None = None,
    *,
    tls: broker_config.TlsListener | None = None,
) -> Iterator[Broker]:
    """Start Mosquitto with ``write_broker_config`` output; skip if the binary is missing.

    :param tls: make the listener TLS (see :class:`collector.enrollment.broker.TlsListener`)
    """
    binary = broker_config.mosquitto_binary()
    if binary is None:
        pytest.skip("mosquitto binary not installed (Debian: apt-get install mosquitto)")
    port = free_port()
    collector = ("collector", "collector-test-pw")
    agents = dict(agents or {})
    files = broker_config.write_broker_config(
        directory,
        port=port,
        collector_password_hash=broker_config.hash_password(collector[1]),
        agents={a: broker_config.hash_password(p) for a, p in agents.items()},
        run_as=pwd.getpwuid(os.geteuid()).pw_name,  # keep our uid: passwd is 0600
        tls=tls,
    )
    with mosquitto_process(files.config, port) as process:
        yield Broker(port=port, files=files, process=process, collector=collector, agents=agents)


@contextmanager
def mosquitto_process(config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``mosquitto -c config`` until the block ends; its log is ``mosquitto.log`` beside
    the config. Skips if the binary is missing; fails with the log if it does not listen."""
    if broker_config.mosquitto_binary() is None:
        pytest.skip("mosquitto binary not installed (Debian: apt-get install mosquitto)")
    try:
        process = broker_config.start_mosquitto(config, port)
    except broker_config.BrokerStartError as exc:
        raise AssertionError(f"{exc}:\n{(config.parent / 'mosquitto.log').read_text()}") from exc
    try:
        yield process
    finally:
        broker_config.stop_process(process, timeout=5)
