"""ingest_batch without a broker: verification, identity binding, idempotency, conflicts."""

from __future__ import annotations

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.enrollment.keys import init_keys
from settleguard.collector.ingest.verify import (
    IncomingMessage,
    Keyring,
    Refused,
    ingest_batch,
    verify_messages,
)
from settleguard.collector.store import Store
from settleguard.protocol.envelope import key_id_for
from settleguard.protocol.records import CardChange
from settleguard.protocol.sealed import card_change_context, seal

from tests.helpers.records import TestAgent, batch, heartbeat, make_agent


def _one(store: Store, topic: str, payload: bytes, keyring: Keyring | None = None):  # type: ignore[no-untyped-def]
    return ingest_batch(store, keyring or Keyring(store), [IncomingMessage(topic, payload)])


def test_batch_accepted_and_stored_verbatim(store: Store) -> None:
    agent = make_agent(store, "agent-a")
    payload = agent.seal(batch(amount=5000), seq=1)
    [(agent_id, ack)] = _one(store, agent.topic, payload)
    assert (agent_id, ack.seq, ack.status) == ("agent-a", 1, "accepted")
    row = store.query_one("SELECT envelope FROM received_records")
    assert row is not None and row["envelope"] == payload
    summary = store.query_one("SELECT * FROM batch_summaries")
    assert summary is not None and summary["total_amount"] == 5000 and summary["batch_no"] == 1
    assert store.count("batch_buckets") == 1
    assert store.query_one("SELECT last_seq FROM agents")["last_seq"] == 1  # type: ignore[index]


def test_resend_after_crash_between_commit_and_ack_is_a_noop(store: Store) -> None:
    agent = make_agent(store, "agent-a")
    payload = agent.seal(batch(), seq=1)
    _one(store, agent.topic, payload)  # committed; the worker "crashes" before publishing
    before = {t: store.count(t) for t in ("received_records", "batch_summaries", "batch_buckets")}
    [(_, ack)] = _one(store, agent.topic, payload)  # the agent resends
    assert ack.status == "duplicate"
    assert {t: store.count(t) for t in before} == before
    assert store.count("conflicts") == 0


def test_same_seq_different_content_is_a_conflict(store: Store) -> None:
    agent = make_agent(store, "agent-a")
    original = agent.seal(batch(amount=100), seq=7)
    _one(store, agent.topic, original)
    [(_, ack)] = _one(store, agent.topic, agent.seal(batch(amount=999), seq=7))
    assert ack.status == "conflict" and ack.reason
    assert store.query_one("SELECT envelope FROM received_records")["envelope"] == original  # type: ignore[index]
    assert store.query_one("SELECT total_amount FROM batch_summaries")["total_amount"] == 100  # type: ignore[index]
    assert store.query_one("SELECT kind FROM conflicts")["kind"] == "seq"  # type: ignore[index]


def test_natural_key_duplicate_and_conflict(store: Store) -> None:
    agent = make_agent(store, "agent-a")
    _one(store, agent.topic, agent.seal(batch(amount=100), seq=1))
    [(_, same)] = _one(store, agent.topic, agent.seal(batch(amount=100), seq=2))
    [(_, changed)] = _one(store, agent.topic, agent.seal(batch(amount=101), seq=3))
    assert (same.status, changed.status) == ("duplicate", "conflict")
    assert store.count("batch_summaries") == 1
    assert store.query_one("SELECT kind FROM conflicts")["kind"] == "natural_key"  # type: ignore[index]
    assert store.count("received_records") == 3  # every envelope kept verbatim


def test_unknown_key_rejected_with_reason(store: Store) -> None:
    make_agent(store, "agent-a")
    stranger = TestAgent("agent-a", Ed25519PrivateKey.generate(), "")
    [(agent_id, ack)] = _one(store, stranger.topic, stranger.seal(batch(), seq=4))
    assert (agent_id, ack.seq, ack.status, ack.reason) == ("agent-a", 4, "rejected", "unknown_key")
    assert store.query_one("SELECT reason FROM rejected_messages")["reason"] == "unknown_key"  # type: ignore[index]
    assert store.count("received_records") == 0


def test_revoked_and_pending_agents_rejected(store: Store) -> None:
    keyring = Keyring(store, ttl_s=0)
    revoked = make_agent(store, "agent-r")
    enrollment.revoke(store, "agent-r", actor="test")
    pending = make_agent(store, "agent-p", approve=False)
    acks = ingest_batch(
        store,
        keyring,
        [
            IncomingMessage(revoked.topic, revoked.seal(batch(), seq=1)),
            IncomingMessage(pending.topic, pending.seal(batch(batch_no=2), seq=1)),
        ],
    )
    assert [a.reason for _, a in acks] == ["revoked", "not_approved"]
    assert store.count("batch_summaries") == 0


def test_bad_signature_rejected(store: Store) -> None:
    agent = make_agent(store, "agent-a")
    payload = agent.seal(batch(amount=12345), seq=1)
    forged = payload.replace(b'"sale_amount":12345', b'"sale_amount":92345')
    assert forged != payload
    [(_, ack)] = _one(store, agent.topic, forged)
    assert (ack.seq, ack.status, ack.reason) == (1, "rejected", "bad_signature")
    # unreadable bytes: stored as rejected, but no seq to answer
    assert _one(store, agent.topic, payload[:-40]) == []
    reasons = [r["reason"] for r in store.iter_rows("rejected_messages")]
    assert reasons == ["bad_signature", "bad_signature"]
    assert store.count("received_records") == 0


def test_a_signed_created_at_that_is_no_real_time_is_refused_not_fatal(store: Store) -> None:
    # The shape matches, the calendar does not: before, the skew check raised inside the
    # transaction and the worker retried the batch for ever.
    agent = make_agent(store, "agent-a")
    body = rfc8785.dumps({"agent_id": "agent-a", "body": batch().to_body(),
                          "created_at": "2026-13-45T99:99:99.999Z",
                          "key_id": key_id_for(agent.key.public_key()),
                          "seq": 1, "type": "batch_summary", "v": 1})  # fmt: skip
    payload = agent.sign_raw(body)
    good = agent.seal(batch(batch_no=2), seq=2)
    acks = ingest_batch(store, Keyring(store), [IncomingMessage(agent.topic, payload),
                                                IncomingMessage(agent.topic, good)])  # fmt: skip
    assert [(a.seq, a.status, a.reason) for _, a in acks] == [
        (1, "rejected", "bad_field"), (2, "accepted", None)]  # fmt: skip
    assert [r["reason"] for r in store.iter_rows("rejected_messages")] == ["bad_field"]
    assert store.count("received_records") == 1


def test_identity_binding_topic_key_body(store: Store) -> None:
    a = make_agent(store, "agent-a")
    b = make_agent(store, "agent-b")
    acks = ingest_batch(
        store,
        Keyring(store),
        [
            IncomingMessage(b.topic, a.seal(batch(), seq=1)),  # A's key on B's topic
            IncomingMessage(a.topic, a.seal(batch(), seq=2, agent_id="agent-b")),  # body says B
            IncomingMessage("sg/v1/a/agent-a/ack", a.seal(batch(), seq=3)),  # not a rec topic
            IncomingMessage(a.hb_topic, a.seal(batch(), seq=4)),  # batch on the hb topic
        ],
    )
    assert [(agent, ack.reason) for agent, ack in acks] == [
        ("agent-b", "wrong_topic"),
        ("agent-a", "agent_mismatch"),
        ("agent-a", "wrong_topic"),
    ]
    assert store.count("rejected_messages") == 4
    assert store.count("received_records") == 0


def test_heartbeat_on_hb_topic(store: Store) -> None:
    agent = make_agent(store, "agent-a")
    [(_, ack)] = _one(store, agent.hb_topic, agent.seal(heartbeat(), seq=1))
    assert ack.status == "accepted"
    assert store.query_one("SELECT outbox_depth FROM agents")["outbox_depth"] == 2  # type: ignore[index]


def test_heartbeat_after_records_reports_the_outbox_depth(store: Store) -> None:
    """A heartbeat carries the highest record seq the agent stored: that is no conflict."""
    agent = make_agent(store, "agent-a")
    _one(store, agent.topic, agent.seal(batch(), seq=1))
    [(_, ack)] = _one(store, agent.hb_topic, agent.seal(heartbeat(), seq=1))
    assert ack.status == "accepted"
    assert store.query_one("SELECT outbox_depth FROM agents")["outbox_depth"] == 2  # type: ignore[index]
    assert store.count("conflicts") == 0 and store.count("received_records") == 1


def test_card_change_stores_hmac_not_number(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    keys, _ = init_keys(tmp_path / "keys")
    agent = make_agent(store, "agent-a")
    number = "6222021234567894"
    change = CardChange(
        merchant_id="M100",
        change_id="chg-1",
        old_account_masked="****1111",
        new_account_masked="****7894",
        new_account_sealed=seal(keys.sealing_public, number.encode(),
                                context=card_change_context("chg-1")),
        holder_name="Zhang San",
        bank="ICBC",
        requested_at="2026-03-01T09:00:00Z",
        effective_at=None,
        review_status="under_review",
        acquirer_ref=None,
    )  # fmt: skip
    acks = ingest_batch(
        store, Keyring(store), [IncomingMessage(agent.topic, agent.seal(change, 1))], keys=keys
    )
    assert acks[0][1].status == "accepted"
    account = store.query_one("SELECT * FROM settlement_accounts")
    # an agent only reports a change: a claimed review status is stored as requested
    assert account is not None and account["status"] == "requested"
    assert account["account_hmac"] == keys.account_hmac(number)
    for table in ("settlement_accounts", "card_changes", "received_records"):
        for row in store.iter_rows(table):
            assert number not in repr(row)


def test_a_mixed_batch_is_decided_per_message_in_order(store: Store) -> None:
    # verify_messages checks the whole batch's signatures in one call: every message must
    # still get its own verdict, in order, whatever its neighbours are
    a, b = make_agent(store, "agent-a"), make_agent(store, "agent-b")
    good = a.seal(batch(terminal_id="TA", batch_no=1), seq=1)
    forged = a.seal(batch(terminal_id="TA", batch_no=2, amount=111), seq=2).replace(
        b'"sale_amount":111', b'"sale_amount":999'
    )
    messages = [
        IncomingMessage(a.topic, good),
        IncomingMessage(a.topic, forged),
        IncomingMessage(b.topic, b"SG1 garbage"),
        IncomingMessage(b.topic, b.seal(batch(terminal_id="TB", batch_no=1), seq=1)),
        IncomingMessage(b.topic, a.seal(batch(terminal_id="TA", batch_no=3), seq=3)),
    ]
    calls: list[int] = []
    decided = verify_messages(messages, Keyring(store), before_signatures=lambda: calls.append(1))
    assert calls == [1]  # once, for the three messages left after the header and key checks
    assert [d.reason if isinstance(d, Refused) else "ok" for d in decided] == [
        "ok", "bad_signature", "bad_header", "ok", "wrong_topic"
    ]  # fmt: skip
    assert [d.message for d in decided] == messages
    early = verify_messages(
        messages[2:3], Keyring(store), before_signatures=lambda: calls.append(2)
    )
    assert calls == [1] and isinstance(early[0], Refused)  # nothing left to verify: not called
