"""The store's bulk paths: ``Tx.query_rows`` (plain tuples) and ``Tx.executemany``, both stores."""

from __future__ import annotations

from settleguard.collector.store import Store


def test_query_rows_returns_tuples_with_query_values(store: Store) -> None:
    with store.transaction() as tx:
        tx.executemany(
            "INSERT INTO recon_state (name, value) VALUES (?, ?)",
            [("a", 1), ("b", 2), ("c", 3)],
        )
    with store.transaction() as tx:
        sql = "SELECT name, value FROM recon_state ORDER BY name"
        rows = tx.query_rows(sql)
        assert rows == [("a", 1), ("b", 2), ("c", 3)]
        assert all(type(row) is tuple for row in rows)
        assert [tuple(r.values()) for r in tx.query(sql)] == rows
        assert tx.query_rows("SELECT name FROM recon_state WHERE value > ?", (2,)) == [("c",)]


def test_query_rows_gives_blobs_as_bytes(store: Store) -> None:
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO received_records (agent_id, seq, key_id, record_type, created_at,"
            " source, payload_sha256, envelope) VALUES ('ag', 1, 'k', 't', 'now', 's', 'x', ?)",
            (b"\x00\xffblob",),
        )
        assert tx.query_rows("SELECT envelope FROM received_records") == [(b"\x00\xffblob",)]


def test_executemany_rolls_back_with_its_transaction(store: Store) -> None:
    try:
        with store.transaction() as tx:
            tx.executemany("INSERT INTO recon_state (name, value) VALUES (?, ?)", [("x", 1)])
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    assert store.query("SELECT name FROM recon_state") == []
