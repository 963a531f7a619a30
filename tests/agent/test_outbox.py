"""The outbox: one-transaction commits, seq, migrations, acks, retention, budget, disk full."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from settleguard.agent import outbox as outbox_module
from settleguard.agent.errors import StorageError
from settleguard.agent.home import AgentHome
from settleguard.agent.keys import AgentKey
from settleguard.agent.outbox import MIGRATIONS, SCHEMA_VERSION, Outbox, Sealed
from settleguard.agent.recorder import append_record, record
from settleguard.protocol.acks import Ack
from settleguard.protocol.envelope import read_header, verify_and_parse
from settleguard.protocol.records import BatchSummary, Bucket

from tests.agent.conftest import sample_record


def batch(n: int = 1) -> BatchSummary:
    return BatchSummary(
        terminal_id="T0000001",
        merchant_id="m-100",
        batch_no=n,
        closed_at="2026-03-01T20:00:00Z",
        terminal_local_time="2026-03-01T21:00:00",
        currency="978",
        buckets=(Bucket("visa", sale_count=2, sale_amount=1234),),
        receipt_start=1,
        receipt_end=2,
        host_reconciled=True,
        protocol="zvt",
    )


def rows(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT seq, state FROM outbox ORDER BY seq").fetchall()


def test_record_commits_signed_payload_signature_and_times(home: AgentHome, key: AgentKey) -> None:
    seq = record(home, batch())
    assert seq == 1
    with Outbox(home.outbox_path) as box:
        ((got_seq, payload),) = box.pending()
        signature, terminal_time = box.conn.execute(
            "SELECT signature, terminal_time FROM outbox WHERE seq = 1"
        ).fetchone()
        assert box.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    envelope = verify_and_parse(payload, key.private_key.public_key())
    assert (got_seq, envelope.seq, envelope.agent_id) == (1, 1, key.agent_id)
    assert envelope.body["terminal_local_time"] == "2026-03-01T21:00:00"  # terminal's clock
    assert envelope.created_at.endswith("Z")  # agent's clock
    assert terminal_time == "2026-03-01T21:00:00"
    assert signature == read_header(payload).signature


def test_connection_uses_full_sync(home: AgentHome) -> None:
    with Outbox(home.outbox_path) as box:
        assert box.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_seq_is_monotonic_across_restart_prune_and_clock_jumps(
    home: AgentHome, key: AgentKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    seqs = [record(home, sample_record(i)) for i in range(3)]
    with Outbox(home.outbox_path) as box:
        box.apply_acks([Ack(s, "accepted") for s in seqs])
        assert box.prune(0, now=10**12) == 3  # every acked row gone
    # the wall clock jumps back a year: seq must not care, ages must not go negative
    real_time = outbox_module.time.time
    monkeypatch.setattr(outbox_module.time, "time", lambda: real_time() - 365 * 86400)
    seqs.append(record(home, sample_record(9)))
    monkeypatch.setattr(outbox_module.time, "time", lambda: real_time() + 3 * 86400)
    seqs.append(record(home, sample_record(10)))
    assert seqs == [1, 2, 3, 4, 5]
    with Outbox(home.outbox_path) as box:
        assert [s for s, _ in box.pending()] == [4, 5]
        assert box.stats().oldest_pending_age_s is not None
        assert box.stats().oldest_pending_age_s >= 0


def test_failed_seal_leaves_nothing_and_consumes_no_seq(home: AgentHome, key: AgentKey) -> None:
    with Outbox(home.outbox_path) as box:
        append_record(box, key, sample_record())

        def explode(seq: int) -> Sealed:
            raise RuntimeError("power cut while signing")

        with pytest.raises(RuntimeError):
            box.append(explode, record_type="heartbeat", created_at="x")
        assert append_record(box, key, sample_record(1)) == 2
    assert rows(home.outbox_path) == [(1, "pending"), (2, "pending")]


def test_disk_full_is_a_storage_error_and_nothing_half_written(
    home: AgentHome, key: AgentKey
) -> None:
    with Outbox(home.outbox_path) as box:
        append_record(box, key, sample_record())
        pages = box.conn.execute("PRAGMA page_count").fetchone()[0]
        box.conn.execute(f"PRAGMA max_page_count = {pages}")  # the "disk" is now full

        def big(seq: int) -> Sealed:
            return Sealed(b"x" * 200_000, b"s" * 64)

        with pytest.raises(StorageError, match=r"disk full.*nothing was written"):
            box.append(big, record_type="batch_summary", created_at="2026-03-01T00:00:00.000Z")
        assert box.stats().next_seq == 2
        assert box.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert rows(home.outbox_path) == [(1, "pending")]


def test_migrates_a_v1_database_and_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO outbox (seq, record_type, is_batch, created_at, created_epoch, payload, "
        "signature) VALUES (1, 'batch_summary', 1, 't', 0, x'00', x'00')"
    )
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'next_seq'")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Outbox(path) as box:
        assert box.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert box.pending() == [(1, b"\x00")]
        box.apply_acks([Ack(1, "accepted")])
        assert box.prune(0, now=10**12) == 1  # uses the v2 acked_epoch column
        assert box.stats().next_seq == 2


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError, match="newer than this agent"):
        Outbox(path)


def test_acks_positive_negative_and_unknown(home: AgentHome, key: AgentKey) -> None:
    with Outbox(home.outbox_path) as box:
        for i in range(4):
            append_record(box, key, sample_record(i))
        changed = box.apply_acks(
            [
                Ack(1, "accepted"),
                Ack(2, "duplicate"),
                Ack(3, "rejected", "revoked key"),
                Ack(99, "accepted"),
                Ack(1, "conflict", "late"),  # 1 is no longer pending: no change
            ]
        )
        assert changed == 3
        assert [s for s, _ in box.pending()] == [4]
        rejected = box.rejected()
        assert [(r["seq"], r["status"], r["reason"]) for r in rejected] == [
            (3, "rejected", "revoked key")
        ]
        stats = box.stats()
        assert (stats.pending, stats.acked, stats.rejected) == (1, 2, 1)


def test_retention_prunes_only_old_acked_rows(home: AgentHome, key: AgentKey) -> None:
    with Outbox(home.outbox_path) as box:
        for i in range(3):
            append_record(box, key, sample_record(i))
        box.apply_acks([Ack(1, "accepted"), Ack(2, "rejected", "malformed")])
        acked_at = box.conn.execute("SELECT acked_epoch FROM outbox WHERE seq = 1").fetchone()[0]
        assert box.prune(3600, now=acked_at + 60) == 0  # within retention
        assert box.prune(3600, now=acked_at + 3601) == 1
    assert rows(home.outbox_path) == [(2, "rejected"), (3, "pending")]


def test_budget_refuses_non_batch_records_but_never_a_batch(home: AgentHome, key: AgentKey) -> None:
    with Outbox(home.outbox_path, disk_budget_bytes=1) as box:
        with pytest.raises(StorageError, match="budget reached"):
            append_record(box, key, sample_record())
        assert box.stats().disk_alarm is not None
        assert append_record(box, key, batch(7)) == 1  # a batch is never dropped
        assert box.stats().pending == 1
        box.disk_budget_bytes = 10**9
        box.apply_acks([Ack(1, "accepted")])
        box.prune(0, now=10**12)
        assert box.stats().disk_alarm is None  # alarm clears once under budget
