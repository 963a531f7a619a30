"""kill -9 of a syncing agent at random points: every committed record delivered, acked once.

Each round starts :mod:`tests.agent.kill_worker`, which commits a few records and syncs them
with commits, publishes, PUBACKs and app acks interleaved, and SIGKILLs it after a random
delay (0–60 ms after it is ready, which spreads the kills over every phase). After all rounds a
final unkilled run drains the outbox. Then:

* every ``seq`` the worker reported as committed is in the outbox, and the outbox holds the
  gapless range 1..N (no half-written rows, no lost or skipped seq);
* every one of them was accepted by the ack double exactly once (resends show up only as
  ``duplicate``), nothing is pending, no conflict was ever seen;
* the database passes ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from settleguard.agent.home import AgentHome
from settleguard.agent.keys import AgentKey

from tests.agent.ackdouble import AckDouble
from tests.agent.conftest import AGENT_PASSWORD
from tests.helpers.mosquitto import Broker

ROOT = Path(__file__).resolve().parents[2]


class Zygote:
    """Drives :mod:`tests.agent.kill_worker`: one interpreter, one fork per round."""

    def __init__(self, home: AgentHome, broker: Broker) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.agent.kill_worker",
                str(home.root),
                str(broker.port),
                AGENT_PASSWORD,
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.readline() == "zygote"

    def readline(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def round(self, new_records: int, kill_after: float | None) -> tuple[set[int], bool, list[str]]:
        """Run one child; SIGKILL it ``kill_after`` s after it is ready (None: let it finish)."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"run {new_records}\n")
        self.process.stdin.flush()
        pid = int(self.readline().split()[1])
        lines = [self.readline()]
        assert lines[0] == "ready", lines
        killed = False
        if kill_after is not None:
            time.sleep(kill_after)  # the kill point itself, not a wait for a result
            try:
                os.kill(pid, signal.SIGKILL)
                killed = True
            except ProcessLookupError:  # it finished, and was reaped, before the kill point
                pass
        while not (line := self.readline()).startswith(f"exit {pid} "):
            lines.append(line)
        status = int(line.split()[2])
        killed = killed and os.WIFSIGNALED(status)
        assert not any(x.startswith("error") for x in lines), lines
        return committed_in(lines), killed, lines

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def committed_in(lines: list[str]) -> set[int]:
    return {int(line.split()[1]) for line in lines if line.startswith("committed ")}


def run_rounds(zygote: Zygote, rounds: int, seed: int) -> tuple[set[int], int]:
    rng = random.Random(seed)
    reported: set[int] = set()
    kills = 0
    for _ in range(rounds):
        committed, killed, _ = zygote.round(rng.randint(1, 6), rng.uniform(0, 0.06))
        reported |= committed
        kills += killed
    return reported, kills


@pytest.mark.slow
@pytest.mark.mosquitto
@pytest.mark.parametrize("seed", [11, 29])
def test_kill9_never_loses_or_double_accepts(
    home: AgentHome, key: AgentKey, broker: Broker, ack_double: AckDouble, seed: int
) -> None:
    zygote = Zygote(home, broker)
    try:
        reported, kills = run_rounds(zygote, rounds=32, seed=seed)
        assert kills >= 25  # at least 50 kills over the two seeds
        _, _, lines = zygote.round(0, kill_after=None)
        assert lines[-1] == "done", lines
    finally:
        zygote.close()

    with sqlite3.connect(home.outbox_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        states = dict(conn.execute("SELECT seq, state FROM outbox"))
    committed = set(states)
    assert reported <= committed
    assert committed == set(range(1, len(committed) + 1))  # gapless
    assert set(states.values()) == {"acked"}
    with ack_double.lock:
        accepted = dict(ack_double.accepted)
        assert ack_double.conflicts == 0
    assert {seq for (_, seq) in accepted} == committed
    assert set(accepted.values()) == {1}
    print(f"kills={kills} records={len(committed)} duplicates={ack_double.duplicates}")
