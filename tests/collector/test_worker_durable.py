"""The ingest worker commits with SQLite ``synchronous = FULL`` (acks follow durable commits)."""

from __future__ import annotations

from pathlib import Path

from collector.store import open_store
from collector.worker import IngestWorker


def test_worker_connection_fsyncs_each_commit(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    store.migrate()
    try:
        worker = IngestWorker(store, {"host": "127.0.0.1", "port": 1, "protocol": "5"})
        assert store.db.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # store: NORMAL
        worker._make_durable()
        assert store.db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        store.close()
