"""Agent processes for the kill -9 tests, forked from one pre-imported parent (a zygote).

``python -m tests.agent.kill_worker HOME PORT PASSWORD`` imports everything once, prints
``zygote``, then reads commands on stdin. ``run N`` forks a child and prints ``pid <pid>``;
the child prints ``ready``, then for each of ``N`` new records commits it (printing
``committed <seq>`` only after the commit returned) and pumps the MQTT link once, so commits,
publishes, PUBACKs and app acks overlap; then it pumps until the outbox is empty and prints
``done``. The zygote reaps the child and prints ``exit <pid> <status>``. Forking keeps each
round at a few milliseconds of start-up instead of a full interpreter start, so the suite
can afford many kills. Each child opens its own key, outbox and MQTT client after the fork.
"""

from __future__ import annotations

import os
import sys
import time

from settleguard.agent.config import SyncSettings
from settleguard.agent.home import agent_home
from settleguard.agent.keys import load_or_create_key
from settleguard.agent.outbox import Outbox
from settleguard.agent.recorder import append_record
from settleguard.agent.sync import BrokerTarget, SyncLink

from tests.agent.samples import sample_record


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())  # one write per line: atomic on a pipe


def child(home_dir: str, port: str, password: str, new_records: int) -> None:
    home = agent_home(home_dir)
    key = load_or_create_key(home)
    box = Outbox(home.outbox_path)
    target = BrokerTarget.from_url(
        f"mqtt://127.0.0.1:{port}", username=key.agent_id, password=password
    )
    link = SyncLink(box, key, target, SyncSettings(window=4, ack_timeout_s=0.5))
    say("ready")
    link.connect()
    for i in range(new_records):
        seq = append_record(box, key, sample_record(i))
        say(f"committed {seq}")
        link.pump(0)
    deadline = time.monotonic() + 20
    while box.has_pending() and time.monotonic() < deadline:
        link.pump(0.05)
    link.disconnect()
    say("done" if not box.has_pending() else "timeout")


def main(home_dir: str, port: str, password: str) -> None:
    say("zygote")
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                child(home_dir, port, password, int(line.split()[1]))
            except BaseException as exc:
                say(f"error {exc!r}")
                code = 1
            os._exit(code)
        say(f"pid {pid}")
        _, status = os.waitpid(pid, 0)
        say(f"exit {pid} {status}")


if __name__ == "__main__":
    main(*sys.argv[1:])
