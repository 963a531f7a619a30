"""The bulk write path for new batch summaries gives exactly what one-by-one writes give."""

from __future__ import annotations

from pathlib import Path

from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.ingest.verify import IncomingMessage, Keyring, ingest_batch
from settleguard.collector.store import Store, open_store

from tests.helpers.records import TestAgent, batch, heartbeat, make_agent

TABLES = {
    "received_records": "id, agent_id, seq, key_id, record_type, created_at, source,"
    " payload_sha256, envelope",
    "batch_summaries": "id, received_record_id, agent_id, terminal_id, merchant_id, batch_no,"
    " closed_at, closed_at_local, currency, total_amount, receipt_start, receipt_end,"
    " host_reconciled, content_sha256",
    "batch_buckets": "*",
    "terminals": "terminal_id, merchant_id, agent_id",
    "conflicts": "kind, agent_id, seq, natural_key, existing_record_id, payload_sha256",
    "agents": "agent_id, last_seq, last_seen",
}


def _dump(store: Store) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    with store.transaction() as tx:
        return {t: sorted(tx.query_rows(f"SELECT {c} FROM {t}")) for t, c in TABLES.items()}


def _rounds(agent: TestAgent, other: TestAgent) -> list[list[IncomingMessage]]:
    def msg(who: TestAgent, seq: int, **kwargs: object) -> IncomingMessage:
        record = kwargs.pop("record", None) or batch(**kwargs)  # type: ignore[arg-type]
        return IncomingMessage(who.topic, who.seal(record, seq))  # type: ignore[arg-type]

    return [
        # all new: the bulk path
        [msg(agent, s, batch_no=s, amount=100 * s) for s in range(1, 9)]
        + [msg(other, s, terminal_id="T9", batch_no=s) for s in range(1, 4)],
        # a resend, a seq conflict, a natural-key duplicate and conflict, new ones, a heartbeat
        [msg(agent, 1, batch_no=1, amount=100), msg(agent, 2, batch_no=2, amount=999),
         msg(agent, 20, batch_no=3, amount=300), msg(agent, 21, batch_no=4, amount=1),
         msg(agent, 22, batch_no=22), msg(agent, 23, batch_no=23),
         msg(other, 4, record=heartbeat()), msg(other, 5, terminal_id="T9", batch_no=5)],
        # the same key twice inside one transaction
        [msg(agent, 30, batch_no=30), msg(agent, 30, batch_no=30), msg(agent, 31, batch_no=31),
         msg(agent, 32, batch_no=31)],
        # new again after all that
        [msg(agent, s, batch_no=s) for s in range(40, 45)],
    ]  # fmt: skip


def test_bulk_and_one_by_one_write_the_same(tmp_path: Path) -> None:
    bulk, single = (open_store(f"sqlite:///{tmp_path / n}.db") for n in ("bulk", "single"))
    for store in (bulk, single):
        store.migrate()
    agents = [make_agent(bulk, "agent-a"), make_agent(bulk, "agent-b")]
    for agent in agents:  # the same agents, keys and merchant in the second store
        token = enrollment.issue_token(single, "M100", ttl_s=600)
        enrollment.enroll(single, token=token, public_key=agent.public_raw,
                          agent_id=agent.agent_id)  # fmt: skip
        enrollment.approve(single, agent.agent_id, actor="test")
    rounds = [_rounds(*agents)]
    results_bulk, results_single = [], []
    for messages in rounds[0]:
        results_bulk += ingest_batch(bulk, Keyring(bulk), messages)
    for messages in rounds[0]:
        for message in messages:
            results_single += ingest_batch(single, Keyring(single), [message])
    assert results_bulk == results_single
    statuses = [a.status for _, a in results_bulk]
    assert statuses[:11] == ["accepted"] * 11
    assert statuses[11:19] == ["duplicate", "conflict", "duplicate", "conflict", "accepted",
                               "accepted", "accepted", "accepted"]  # fmt: skip
    assert statuses[19:23] == ["accepted", "duplicate", "accepted", "duplicate"]
    dump_bulk, dump_single = _dump(bulk), _dump(single)
    for table in TABLES:
        if table == "agents":  # last_seen is the envelope time: equal too
            assert dump_bulk[table] == dump_single[table]
        else:
            assert dump_bulk[table] == dump_single[table], table


def test_bulk_path_on_each_backend(store: Store) -> None:
    agent = make_agent(store, "agent-a")
    first = [IncomingMessage(agent.topic, agent.seal(batch(batch_no=s), s)) for s in range(1, 6)]
    acks = ingest_batch(store, Keyring(store), first)
    assert [a.status for _, a in acks] == ["accepted"] * 5
    again = [*first[:2], IncomingMessage(agent.topic, agent.seal(batch(batch_no=6), 6))]
    acks = ingest_batch(store, Keyring(store), again)
    assert [a.status for _, a in acks] == ["duplicate", "duplicate", "accepted"]
    assert store.count("received_records") == store.count("batch_summaries") == 6
    assert store.count("batch_buckets") == 6
    with store.transaction() as tx:
        ids = [r[0] for r in tx.query_rows("SELECT received_record_id FROM batch_summaries")]
    assert len(set(ids)) == 6
    assert store.query_one("SELECT last_seq FROM agents")["last_seq"] == 6  # type: ignore[index]
