"""What one approved agent may write: only its own merchant's records, plausible amounts, card
changes it merely reports, and card-change masks that match the sealed number. Refusals are
kept with their reason (and no payload head when the payload holds a card number)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from settleguard.collector.enrollment.keys import CollectorKeys, init_keys
from settleguard.collector.ingest.bundles import import_bundle
from settleguard.collector.ingest.verify import (
    MAX_BATCH_AMOUNT,
    MAX_BUCKET_AMOUNT,
    MAX_BUCKETS,
    PAYLOAD_HEAD_BYTES,
    IncomingMessage,
    Keyring,
    ingest_batch,
)
from settleguard.collector.store import Store
from settleguard.protocol.envelope import encode_bundle
from settleguard.protocol.records import BatchSummary, Bucket, CardChange, Record, TerminalReplaced
from settleguard.protocol.sealed import card_change_context, seal

from tests.helpers.records import TestAgent, batch, heartbeat, make_agent

NUMBER = "6222021234567894"  # the new settlement card, Luhn-valid


def _send(
    store: Store, agent: TestAgent, records: list[Record], *, keys: CollectorKeys | None = None
) -> list[str]:
    messages = [IncomingMessage(agent.topic, agent.seal(r, seq)) for seq, r in
                enumerate(records, start=1)]  # fmt: skip
    return [ack.status for _, ack in ingest_batch(store, Keyring(store), messages, keys=keys)]


def _batch(merchant_id: str | None, terminal_id: str = "T-M2", amount: int = 5000) -> BatchSummary:
    return replace(batch(terminal_id=terminal_id, amount=amount), merchant_id=merchant_id)


def _card_change(keys: CollectorKeys, merchant_id: str | None, **changes: object) -> CardChange:
    change = CardChange(
        merchant_id=merchant_id, change_id="chg-1", old_account_masked=None,
        new_account_masked="****7894",
        new_account_sealed=seal(keys.sealing_public, NUMBER.encode(),
                                context=card_change_context("chg-1")),
        holder_name="Mallory", bank="ICBC", requested_at="2026-03-01T09:00:00Z",
        effective_at="2026-03-01T09:00:00Z", review_status="requested", acquirer_ref=None,
    )  # fmt: skip
    return replace(change, **changes)


@pytest.fixture
def keys(tmp_path: Path) -> CollectorKeys:
    return init_keys(tmp_path / "keys")[0]


def test_an_agent_cannot_write_for_another_merchant(store: Store, keys: CollectorKeys) -> None:
    make_agent(store, "shop-2", merchant="M2")
    mallory = make_agent(store, "shop-1", merchant="M1")
    replaced = TerminalReplaced("M2", "T-M2", "T-NEW", "2026-03-02T09:00:00Z", None, None)
    records = [
        _card_change(keys, "M2", review_status="active"),
        _batch("M2"),
        replaced,
    ]
    assert _send(store, mallory, records, keys=keys) == ["rejected"] * 3
    rejected = store.query("SELECT reason, claimed_agent_id, detail FROM rejected_messages")
    assert [(r["reason"], r["claimed_agent_id"]) for r in rejected] == [
        ("wrong_merchant", "shop-1")
    ] * 3
    assert "'M1'" in rejected[0]["detail"]
    for table in ("settlement_accounts", "card_changes", "batch_summaries", "terminals",
                  "terminal_replacements", "received_records"):  # fmt: skip
        assert store.count(table) == 0, table


def test_records_without_a_merchant_take_the_agent_s(store: Store, keys: CollectorKeys) -> None:
    agent = make_agent(store, "shop-1", merchant="M1")
    change = _card_change(keys, None)
    assert _send(store, agent, [_batch(None, "T1"), change], keys=keys) == ["accepted"] * 2
    assert store.query_one("SELECT merchant_id FROM batch_summaries") == {"merchant_id": "M1"}
    assert store.query_one("SELECT merchant_id FROM terminals") == {"merchant_id": "M1"}
    assert store.query_one("SELECT merchant_id FROM settlement_accounts") == {"merchant_id": "M1"}


def test_the_batch_natural_key_is_scoped_to_the_merchant(store: Store) -> None:
    # shop-1 sends a batch with shop-2's terminal, number and closing time first: shop-2's own
    # batch is still accepted and stored, under M2, with its own amount
    shop2 = make_agent(store, "shop-2", merchant="M2")
    shop1 = make_agent(store, "shop-1", merchant="M1")
    assert _send(store, shop1, [_batch(None, "T-M2", amount=1)]) == ["accepted"]
    assert _send(store, shop2, [_batch("M2", "T-M2", amount=5000)]) == ["accepted"]
    rows = store.query("SELECT merchant_id, total_amount FROM batch_summaries ORDER BY merchant_id")
    assert [(r["merchant_id"], r["total_amount"]) for r in rows] == [("M1", 1), ("M2", 5000)]
    assert store.count("conflicts") == 0


def test_a_replacement_only_retires_the_agent_s_own_terminal(store: Store) -> None:
    shop2 = make_agent(store, "shop-2", merchant="M2")
    shop1 = make_agent(store, "shop-1", merchant="M1")
    assert _send(store, shop2, [_batch("M2", "T-M2")]) == ["accepted"]
    replaced = TerminalReplaced(None, "T-M2", "T-EVIL", "2026-03-02T09:00:00Z", None, None)
    assert _send(store, shop1, [replaced]) == ["accepted"]  # stored, for M1 only
    rows = store.query("SELECT merchant_id, terminal_id, status FROM terminals ORDER BY 1, 2")
    assert [(r["merchant_id"], r["terminal_id"], r["status"]) for r in rows] == [
        ("M1", "T-EVIL", "active"),
        ("M1", "T-M2", "replaced"),
        ("M2", "T-M2", "active"),
    ]


@pytest.mark.parametrize("claimed", ["active", "under_review"])
def test_an_agent_only_reports_a_card_change(
    store: Store, keys: CollectorKeys, claimed: str
) -> None:
    agent = make_agent(store, "shop-1", merchant="M1")
    assert _send(store, agent, [_card_change(keys, "M1", review_status=claimed)], keys=keys) == [
        "accepted"
    ]
    account = store.query_one("SELECT status FROM settlement_accounts")
    assert account == {"status": "requested"}
    assert store.query_one("SELECT review_status FROM card_changes") == {
        "review_status": "requested"
    }
    flag = store.query_one("SELECT kind, detail FROM ingest_flags")
    assert flag is not None and flag["kind"] == "review_status_claim"
    assert claimed in flag["detail"]


def test_a_bundle_follows_the_same_rules(store: Store, keys: CollectorKeys) -> None:
    make_agent(store, "shop-2", merchant="M2")
    mallory = make_agent(store, "shop-1", merchant="M1")
    bundle = encode_bundle([
        mallory.seal(_batch("M2"), 1),
        mallory.seal(_card_change(keys, "M1", review_status="active"), 2),
        mallory.seal(_batch(None, "T1"), 3),
    ])  # fmt: skip
    result = import_bundle(store, bundle, source="bundle:x", keys=keys)
    assert result.by_status == {"rejected": 1, "accepted": 2}
    assert store.query_one("SELECT reason, source FROM rejected_messages") == {
        "reason": "wrong_merchant", "source": "bundle:x"
    }  # fmt: skip
    assert store.query_one("SELECT status FROM settlement_accounts") == {"status": "requested"}
    assert [r["merchant_id"] for r in store.query("SELECT merchant_id FROM batch_summaries")] == [
        "M1"
    ]


# -- implausible amounts ---------------------------------------------------------------------


def _buckets(n: int, amount: int) -> tuple[Bucket, ...]:
    return tuple(Bucket(f"b{i}", sale_count=1, sale_amount=amount) for i in range(n))


@pytest.mark.parametrize(
    ("buckets", "words"),
    [
        (_buckets(400, 2**53 - 1), f"at most {MAX_BUCKETS}"),  # an overview-breaking batch
        (_buckets(1, MAX_BUCKET_AMOUNT + 1), "buckets[0].sale_amount is above the ceiling"),
        (_buckets(3, MAX_BATCH_AMOUNT // 2), "the ceiling per batch"),
    ],
)
def test_implausible_amounts_are_refused_with_the_limit(
    store: Store, buckets: tuple[Bucket, ...], words: str
) -> None:
    agent = make_agent(store, "shop-1", merchant="M1")
    record = replace(_batch("M1", "T1"), buckets=buckets, protocol="poslink")
    assert _send(store, agent, [record]) == ["rejected"]
    row = store.query_one("SELECT reason, detail FROM rejected_messages")
    assert row is not None and row["reason"] == "implausible_amount"
    assert words in row["detail"]
    assert str(buckets[0].sale_amount) not in row["detail"]  # names the limit, not the value
    assert store.count("batch_summaries") == 0


def test_amounts_at_the_ceiling_are_accepted(store: Store) -> None:
    agent = make_agent(store, "shop-1", merchant="M1")
    record = replace(_batch("M1", "T1"), buckets=_buckets(1, MAX_BUCKET_AMOUNT),
                     protocol="poslink")  # fmt: skip
    assert _send(store, agent, [record]) == ["accepted"]


# -- card-change masks and refused payloads --------------------------------------------------


def test_a_mask_that_does_not_match_the_sealed_number_is_refused(
    store: Store, keys: CollectorKeys
) -> None:
    agent = make_agent(store, "shop-1", merchant="M1")
    change = _card_change(keys, "M1", new_account_masked="****1111")
    assert _send(store, agent, [change], keys=keys) == ["rejected"]
    row = store.query_one("SELECT reason, detail, claimed_agent_id FROM rejected_messages")
    assert row is not None and row["reason"] == "account_mask_mismatch"
    assert "new_account_masked" in row["detail"] and row["claimed_agent_id"] == "shop-1"
    for table in ("card_changes", "settlement_accounts", "received_records"):
        assert store.count(table) == 0, table
    # the right mask is accepted
    assert _send(store, agent, [replace(change, new_account_masked="************7894")],
                 keys=keys) == ["accepted"]  # fmt: skip


@pytest.mark.parametrize("forged", [False, True])
def test_no_payload_head_is_kept_for_a_payload_with_a_card_number(
    store: Store, forged: bool
) -> None:
    # refused for the card number itself, or (forged) for a bad signature with a card number
    # placed where the kept head would cut it in two
    agent = make_agent(store, "shop-1", merchant="M1")
    body = agent.seal(heartbeat(), 1).split(b"\n", 1)[1]
    header = agent.sign_raw(body).split(b"\n", 1)[0] + b"\n"

    def with_text(text: str) -> bytes:
        return body.replace(b'"last_error":null', f'"last_error":"{text}"'.encode())

    payload = agent.sign_raw(with_text(f"card {NUMBER}"))
    if forged:
        start = (header + with_text(f"card {NUMBER}")).index(NUMBER.encode())
        payload = header + with_text("x" * (PAYLOAD_HEAD_BYTES - 8 - start) + f" card {NUMBER}")
        start = payload.index(NUMBER.encode())
        assert start < PAYLOAD_HEAD_BYTES < start + len(NUMBER)
    payloads = [payload, agent.seal(_batch("M2", "T1"), 2)]
    ingest_batch(store, Keyring(store), [IncomingMessage(agent.topic, p) for p in payloads])
    rows = store.query("SELECT reason, payload_head FROM rejected_messages ORDER BY id")
    first = "bad_signature" if forged else "bad_field"
    assert [r["reason"] for r in rows] == [first, "wrong_merchant"]
    assert rows[0]["payload_head"] is None
    assert rows[1]["payload_head"]  # an ordinary refusal keeps its head for the operator
    for row in store.iter_rows("rejected_messages"):
        assert NUMBER[:10] not in repr(row)


def test_a_change_reported_again_cannot_undo_the_operator_s_decision(
    store: Store, keys: CollectorKeys
) -> None:
    from settleguard.collector.merchants import set_account_status

    agent = make_agent(store, "shop-1", merchant="M1")
    change = _card_change(keys, "M1")
    assert _send(store, agent, [change], keys=keys) == ["accepted"]
    account = store.query_one("SELECT id FROM settlement_accounts")
    assert account is not None
    set_account_status(store, account["id"], "active", actor="operator")
    # the agent lost its outbox, re-sealed the same change and sent it under a new seq
    resent = IncomingMessage(agent.topic, agent.seal(change, 9))
    [(_, ack)] = ingest_batch(store, Keyring(store), [resent], keys=keys)
    assert ack.status == "accepted"
    rows = store.query("SELECT status FROM settlement_accounts")
    assert [r["status"] for r in rows] == ["active"]
    assert store.count("card_changes") == 2  # the report itself is kept
