"""``settleguard agent run`` as a real process: connects, syncs, stops on SIGTERM.

Its CPU use while idle is a figure of ``benchmarks/agent_idle.py``, not a timed test.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from settleguard.agent.config import AgentConfig
from settleguard.agent.home import AgentHome
from settleguard.agent.keys import AgentKey
from settleguard.agent.recorder import record
from settleguard.agent.status import status

from tests.agent.ackdouble import AckDouble
from tests.agent.conftest import AGENT_PASSWORD, sample_record
from tests.helpers.mosquitto import Broker, wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_run_syncs_and_stops_on_sigterm(
    home: AgentHome, key: AgentKey, broker: Broker, ack_double: AckDouble
) -> None:
    home.config_path.write_text(
        f'[broker]\nurl = "mqtt://127.0.0.1:{broker.port}"\n'
        f'username = "{key.agent_id}"\npassword = "{AGENT_PASSWORD}"\n'
    )
    record(home, sample_record())
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from settleguard.cli import main; main()",
            "agent",
            "run",
            "--home",
            str(home.root),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    try:
        config = AgentConfig()
        wait_until(lambda: ack_double.accepted[(key.agent_id, 1)] == 1, 20, what="record acked")
        wait_until(lambda: status(home, config)["broker"]["link_state"] == "connected")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()
    info = status(home, AgentConfig())
    assert info["broker"]["link_state"] == "stopped"
    assert info["outbox"]["pending"] == 0
