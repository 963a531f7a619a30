"""Start Mosquitto for the agent tests and the benchmark.

Same generated files as :func:`tests.helpers.mosquitto.running_broker` (the shipped
:mod:`collector.broker` config: no anonymous, password file, per-agent ACL,
``set_tcp_nodelay true``), plus one line: when the tests run as root, Mosquitto would drop
privileges to the ``mosquitto`` user and then fail to read our 0600 password file in a 0700
temp directory, so we tell it to stay the current user (``user <name>``).
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from collector import broker as broker_config
from tests.helpers.mosquitto import Broker, _accepts, free_port, wait_until


@contextmanager
def agent_broker(directory: Path, agents: dict[str, str] | None = None) -> Iterator[Broker]:
    """A running broker with ``agents`` (``agent_id -> password``) and the collector user."""
    binary = broker_config.mosquitto_binary()
    if binary is None:
        pytest.skip("mosquitto binary not installed")
    port = free_port()
    collector = ("collector", "collector-test-pw")
    agents = dict(agents or {})
    files = broker_config.write_broker_config(
        directory,
        port=port,
        collector_password_hash=broker_config.hash_password(collector[1]),
        agents={a: broker_config.hash_password(p) for a, p in agents.items()},
    )
    with files.config.open("a") as config:
        config.write(f"user {pwd.getpwuid(os.geteuid()).pw_name}\n")
    log_path = directory / "mosquitto.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([binary, "-c", str(files.config)], stdout=log, stderr=log)
    try:
        wait_until(lambda: _accepts(port) or process.poll() is not None, what="mosquitto")
        if process.poll() is not None:
            raise AssertionError(log_path.read_text())
        yield Broker(port=port, files=files, process=process, collector=collector, agents=agents)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
