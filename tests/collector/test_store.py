"""The store on SQLite and PostgreSQL: migrations, transactions, unique keys."""

from __future__ import annotations

import pytest
from settleguard.collector.store import Store, StoreError, open_store
from settleguard.collector.store.schema import latest_version


def test_migrate_is_idempotent(empty_database_url: str) -> None:
    store = open_store(empty_database_url)
    try:
        assert store.schema_version() == 0
        assert store.migrate() == list(range(1, latest_version() + 1))
        assert store.migrate() == []
        assert store.schema_version() == latest_version()
    finally:
        store.close()


def test_expected_tables_exist(store: Store) -> None:
    for table in (
        "merchants settlement_accounts settlement_account_history terminals agents agent_keys"
        " received_records rejected_messages conflicts batch_summaries batch_buckets"
        " turnover_readings card_changes terminal_replacements heartbeats credits imports"
        " payout_records matches gaps alerts users audit_log enrollment_tokens"
    ).split():
        assert store.count(table) == 0, table


def test_transaction_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.insert("merchants", {"merchant_id": "M1"}, returning="merchant_id")
        raise RuntimeError("boom")
    assert store.count("merchants") == 0


def test_insert_ignore_conflict_returns_none(store: Store) -> None:
    with store.transaction() as tx:
        first = tx.insert(
            "merchants", {"merchant_id": "M1"}, ignore_conflict=True, returning="merchant_id"
        )
        again = tx.insert(
            "merchants", {"merchant_id": "M1"}, ignore_conflict=True, returning="merchant_id"
        )
    assert first is not None and again is None
    assert store.count("merchants") == 1


def test_blob_round_trip(store: Store) -> None:
    raw = bytes(range(256))
    with store.transaction() as tx:
        tx.insert(
            "rejected_messages",
            {"source": "test", "reason": "malformed", "payload_size": 256, "payload_head": raw},
        )
    row = store.query_one("SELECT payload_head FROM rejected_messages")
    assert row is not None and row["payload_head"] == raw


def test_account_status_is_checked(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert("merchants", {"merchant_id": "M1"}, returning="merchant_id")
    with pytest.raises(Exception, match=r"(?i)check"), store.transaction() as tx:
        tx.insert(
            "settlement_accounts",
            {"merchant_id": "M1", "account_masked": "1234", "account_hmac": "x", "status": "bogus"},
        )


def test_unknown_url_scheme() -> None:
    with pytest.raises(StoreError, match="unsupported database URL"):
        open_store("mysql://x")


def test_insert_many_counts_skips_clashes_and_keeps_every_value(store: Store) -> None:
    """The bulk insert (one statement over arrays on PostgreSQL): NULLs, any bytes, text with
    quotes, backslashes and non-ASCII, big integers; a clash is skipped and not counted."""
    columns = ("source", "claimed_agent_id", "reason", "detail", "payload_size", "payload_head")
    rows = [
        ("bulk", None, "malformed", 'quote " backslash \\ 中文 {"a": [1]}', 2**53 - 1,
         bytes(range(256))),
        ("bulk", "agent-a", "too_large", "", 0, None),
    ]  # fmt: skip
    with store.transaction() as tx:
        assert tx.insert_many("rejected_messages", columns, rows) == 2
        assert tx.insert_many("rejected_messages", columns, []) == 0
    stored = store.query(f"SELECT {', '.join(columns)} FROM rejected_messages ORDER BY id")
    assert [tuple(r[c] for c in columns) for r in stored] == rows
    with store.transaction() as tx:
        tx.insert("merchants", {"merchant_id": "M1"}, returning="merchant_id")
        added = tx.insert_many("merchants", ("merchant_id", "name"),
                               [("M1", "again"), ("M2", ""), ("M3", "x")],
                               ignore_conflict=True)  # fmt: skip
    assert added == 2
    assert [r["merchant_id"] for r in store.query("SELECT merchant_id FROM merchants"
                                                  " ORDER BY merchant_id")] == ["M1", "M2", "M3"]  # fmt: skip
    with pytest.raises(Exception), store.transaction() as tx:  # noqa: B017 - either driver's
        tx.insert_many("merchants", ("merchant_id",), [("M1",)])  # a clash without the flag
    assert store.count("merchants") == 3


def test_insert_many_sees_a_column_added_after_its_first_use(store: Store) -> None:
    """PostgreSQL's bulk insert caches column types per table; a column added later (by a
    migration in another process) is read again rather than failing until a restart."""
    try:
        with store.transaction() as tx:
            tx.execute("CREATE TABLE scratch_columns (id INTEGER PRIMARY KEY, a BIGINT)")
            assert tx.insert_many("scratch_columns", ("id", "a"), [(1, 2**40)]) == 1
        with store.transaction() as tx:
            tx.execute("ALTER TABLE scratch_columns ADD COLUMN b TEXT")
        with store.transaction() as tx:
            assert tx.insert_many("scratch_columns", ("id", "a", "b"), [(2, 7, "new")]) == 1
        rows = store.query("SELECT id, a, b FROM scratch_columns ORDER BY id")
        assert [(r["id"], r["a"], r["b"]) for r in rows] == [(1, 2**40, None), (2, 7, "new")]
    finally:
        with store.transaction() as tx:
            tx.execute("DROP TABLE IF EXISTS scratch_columns")


def test_upgrade_to_6_keeps_batch_summaries_and_drops_only_the_body_copy(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a collector at schema 5 with a stored batch, then upgraded by this code
    from settleguard.collector.store import schema

    store = open_store(empty_database_url)
    try:
        monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:5])
        assert store.migrate() == [1, 2, 3, 4, 5]
        with store.transaction() as tx:
            rid = tx.insert("received_records", {
                "agent_id": "ag-1", "seq": 1, "key_id": "k", "record_type": "batch_summary",
                "created_at": "2026-11-27T10:00:00Z", "source": "test",
                "payload_sha256": "s", "envelope": b"x"})  # fmt: skip
            tx.insert("batch_summaries", {
                "received_record_id": rid, "agent_id": "ag-1", "terminal_id": "T1",
                "merchant_id": "M1", "batch_no": 7, "closed_at": "2026-11-27T09:00:00Z",
                "total_amount": 12345, "content_sha256": "c", "body": "{}"})  # fmt: skip
        monkeypatch.undo()
        assert store.migrate() == list(range(6, schema.latest_version() + 1))
        [row] = store.query("SELECT * FROM batch_summaries")
        assert "body" not in row
        assert (row["terminal_id"], row["batch_no"], row["total_amount"]) == ("T1", 7, 12345)
        assert row["source"] == "terminal"  # batches from before typed slips came from links
    finally:
        store.close()


def test_upgrade_to_8_scopes_batches_and_terminals_to_their_merchant(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a collector at schema 7: a batch without a merchant (its agent's is taken), buckets that
    # reference it, and a terminal; after the upgrade the same batch and terminal ids may exist
    # once per merchant, and nothing referenced was lost
    from settleguard.collector.store import schema

    store = open_store(empty_database_url)
    try:
        monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:7])
        assert store.migrate() == [1, 2, 3, 4, 5, 6, 7]
        with store.transaction() as tx:
            tx.insert("agents", {"agent_id": "ag-1", "merchant_id": "M1", "status": "approved",
                                 "key_id": "k", "public_key": b"k" * 32}, returning="agent_id")  # fmt: skip
            rid = tx.insert("received_records", {
                "agent_id": "ag-1", "seq": 1, "key_id": "k", "record_type": "batch_summary",
                "created_at": "2026-11-27T10:00:00Z", "source": "test",
                "payload_sha256": "s", "envelope": b"x"})  # fmt: skip
            bid = tx.insert("batch_summaries", {
                "received_record_id": rid, "agent_id": "ag-1", "terminal_id": "T1",
                "merchant_id": None, "batch_no": 7, "closed_at": "2026-11-27T09:00:00Z",
                "total_amount": 12345, "content_sha256": "c"})  # fmt: skip
            tx.insert("batch_buckets", {"batch_id": bid, "name": "visa", "sale_count": 1,
                                        "sale_amount": 12345, "refund_count": 0,
                                        "refund_amount": 0, "void_count": 0, "void_amount": 0},
                      returning="batch_id")  # fmt: skip
            tx.insert("terminals", {"terminal_id": "T1", "merchant_id": None, "agent_id": "ag-1"},
                      returning="terminal_id")  # fmt: skip
            # what another feature's migration may have added before this one ran
            tx.execute("ALTER TABLE batch_summaries ADD COLUMN legacy_note TEXT DEFAULT 'x'")
            tx.execute("UPDATE batch_summaries SET legacy_note = 'kept'")
            tx.execute("CREATE INDEX terminals_agent ON terminals (agent_id)")
        monkeypatch.undo()
        assert store.migrate() == list(range(8, schema.latest_version() + 1))
        [row] = store.query("SELECT * FROM batch_summaries")
        assert (row["id"], row["merchant_id"], row["total_amount"]) == (bid, "M1", 12345)
        assert row["legacy_note"] == "kept"
        indexes = (  # every index is still there (SQLite rebuilt the tables)
            "SELECT name FROM sqlite_master WHERE type = 'index'"
            if store.dialect == "sqlite"
            else "SELECT indexname AS name FROM pg_indexes"
        )
        names = {r["name"] for r in store.query(indexes)}
        assert {"terminals_agent", "terminals_merchant", "batch_summaries_merchant"} <= names
        with store.transaction() as tx:  # the same batch and terminal for another merchant
            tx.insert("batch_summaries", {
                "received_record_id": rid, "agent_id": "ag-2", "terminal_id": "T1",
                "merchant_id": "M2", "batch_no": 7, "closed_at": "2026-11-27T09:00:00Z",
                "total_amount": 1, "content_sha256": "d"})  # fmt: skip
            tx.insert("terminals", {"terminal_id": "T1", "merchant_id": "M2", "agent_id": "ag-2"},
                      returning="terminal_id")  # fmt: skip
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"), store.transaction() as tx:
            tx.insert("batch_summaries", {
                "received_record_id": rid, "agent_id": "ag-1", "terminal_id": "T1",
                "merchant_id": "M1", "batch_no": 7, "closed_at": "2026-11-27T09:00:00Z",
                "total_amount": 2, "content_sha256": "e"})  # fmt: skip
        joined = store.query(
            "SELECT b.merchant_id, k.sale_amount FROM batch_buckets k"
            " JOIN batch_summaries b ON b.id = k.batch_id"
        )
        assert [(r["merchant_id"], r["sale_amount"]) for r in joined] == [("M1", 12345)]
        terminals = store.query("SELECT merchant_id FROM terminals ORDER BY merchant_id")
        assert [r["merchant_id"] for r in terminals] == ["M1", "M2"]
        with store.transaction() as tx:  # new ids continue after the copied ones
            new_id = tx.insert("batch_summaries", {
                "received_record_id": rid, "agent_id": "ag-1", "terminal_id": "T1",
                "merchant_id": "M1", "batch_no": 8, "closed_at": "2026-11-28T09:00:00Z",
                "total_amount": 3, "content_sha256": "f"})  # fmt: skip
        assert new_id > bid + 1
    finally:
        store.close()


def test_upgrade_to_7_keeps_credits_and_adds_their_payer_columns(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from settleguard.collector.store import schema

    store = open_store(empty_database_url)
    try:
        monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:6])
        assert store.migrate() == [1, 2, 3, 4, 5, 6]
        with store.transaction() as tx:
            tx.insert("credits", {"amount": 152300, "currency": "CNY", "entry_id": "e1"})
        monkeypatch.undo()
        assert 7 in store.migrate()
        with store.transaction() as tx:
            tx.insert(
                "credits",
                {
                    "amount": 1,
                    "currency": "CNY",
                    "entry_id": "e2",
                    "payer_name": "拉***付股份有限公司",
                    "payer_account": "3100****8899",
                },
            )
        rows = store.query("SELECT amount, payer_name, payer_account FROM credits ORDER BY id")
        assert [tuple(r.values()) for r in rows] == [
            (152300, None, None), (1, "拉***付股份有限公司", "3100****8899"),
        ]  # fmt: skip
    finally:
        store.close()
