"""Collector commits are durable: SQLite runs with ``synchronous = FULL`` on every connection.

Acks to agents (which then delete their copy) and import reports follow a commit, so a commit
must survive a power loss, not just a process crash.
"""

from __future__ import annotations

import threading
from pathlib import Path

from settleguard.collector.store import open_store


def test_every_store_connection_fsyncs_each_commit(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    store.migrate()
    seen: list[tuple[int, str]] = []

    def look() -> None:
        with store.transaction() as tx:
            seen.append(
                (
                    tx.query("PRAGMA synchronous")[0]["synchronous"],
                    tx.query("PRAGMA journal_mode")[0]["journal_mode"],
                )
            )

    try:
        look()
        other = threading.Thread(target=look)  # each thread has its own connection
        other.start()
        other.join(10)
        assert seen == [(2, "wal"), (2, "wal")]  # 2 = FULL
    finally:
        store.close()
