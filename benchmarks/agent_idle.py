"""How much CPU ``settleguard agent run`` uses while it waits with nothing to send.

1. Starts Mosquitto on a free loopback port with the shipped config and an agent credential.
2. Starts ``settleguard agent run`` on an empty agent home and waits until its status says it
   is connected.
3. Measures, over the same window, the CPU time of the idle agent and of the idle broker (the
   baseline: another network daemon holding one connection and waiting).

Last line: ``RESULT idle_cpu_pct=… broker_cpu_pct=… ratio=… window_s=…`` (``ratio`` is the
agent's idle CPU over the broker's; both round to clock ticks, so a ratio of a few ticks is
noise). Target: ``idle_cpu_pct < 5``.
Usage: ``python benchmarks/agent_idle.py [--quick] [--window SECONDS]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from settleguard.agent.config import AgentConfig  # noqa: E402
from settleguard.agent.home import agent_home  # noqa: E402
from settleguard.agent.keys import load_or_create_key  # noqa: E402
from settleguard.agent.status import status  # noqa: E402

from tests.helpers.mosquitto import running_broker, wait_until  # noqa: E402

PASSWORD = "agent-idle-pw"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 5-second window")
    parser.add_argument("--window", type=float, default=None, help="seconds to measure")
    args = parser.parse_args()
    window = args.window or (5.0 if args.quick else 20.0)
    with tempfile.TemporaryDirectory(prefix="sg-idle-") as scratch:
        home = agent_home(Path(scratch) / "home")
        key = load_or_create_key(home)
        with running_broker(Path(scratch) / "broker", agents={key.agent_id: PASSWORD}) as broker:
            home.config_path.write_text(
                f'[broker]\nurl = "mqtt://127.0.0.1:{broker.port}"\n'
                f'username = "{key.agent_id}"\npassword = "{PASSWORD}"\n'
            )
            command = [sys.executable, "-c", "from settleguard.cli import main; main()"]
            agent = subprocess.Popen(
                [*command, "agent", "run", "--home", str(home.root)],
                cwd=ROOT,
                stderr=subprocess.DEVNULL,
            )
            try:
                config = AgentConfig()
                wait_until(
                    lambda: status(home, config)["broker"]["link_state"] == "connected",
                    30,
                    what="the agent to connect",
                )
                agent0, broker0 = cpu_seconds(agent.pid), cpu_seconds(broker.process.pid)
                started = time.monotonic()
                time.sleep(window)  # the measurement window itself
                elapsed = time.monotonic() - started
                agent_cpu = cpu_seconds(agent.pid) - agent0
                broker_cpu = cpu_seconds(broker.process.pid) - broker0
            finally:
                agent.terminate()
                agent.wait(15)
    tick = 1 / os.sysconf("SC_CLK_TCK")
    print(
        f"RESULT idle_cpu_pct={100 * agent_cpu / elapsed:.2f} "
        f"broker_cpu_pct={100 * broker_cpu / elapsed:.2f} "
        f"ratio={agent_cpu / max(broker_cpu, tick):.2f} window_s={elapsed:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
