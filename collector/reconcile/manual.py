"""Operators fix what the rules cannot: match by hand, unmatch, split a credit, suggestions.

Library first: the ``collector match`` CLI, the JSON API and the dashboard call these. Each
action checks the merchant's batches and credits, writes a ``hand_matches`` row and one audit
line in the same transaction, then re-reconciles the merchant so the result shows at once. The
engine applies hand matches before any rule (:mod:`collector.reconcile.hand`), so a re-run never
undoes them; only :func:`unmatch` does. Amounts are integers in minor units (fen).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from settleguard.collector.audit import audit
from settleguard.collector.merchants import mark_dirty
from settleguard.collector.reconcile import (
    Credit,
    MerchantInputs,
    load_calendar,
    reconcile_merchant,
    split_part_id,
)
from settleguard.collector.reconcile.hand import split_credits
from settleguard.collector.reconcile.payers import is_acquirer_payer
from settleguard.collector.reconcile.store import load_inputs, reconcile
from settleguard.collector.store import Store, Tx

#: how far from the due date a suggested credit may be booked ("the same week")
SUGGEST_DAYS = 7
#: how far (basis points of the expected amount) a suggested credit's amount may be off
SUGGEST_BP = 1000


class HandMatchError(ValueError):
    """A hand action cannot be done; ``status``: 400 bad input, 404 unknown, 409 conflict."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _note(note: str) -> str:
    note = note.strip()
    if not note:
        raise HandMatchError("a hand match, unmatch or split needs a note saying why")
    if len(note) > 2000:
        raise HandMatchError("the note is longer than 2000 characters")
    return note


def _active(tx: Tx, merchant_id: str) -> list[dict[str, Any]]:
    return tx.query(
        "SELECT id, kind, batch_keys, credit_ids, amounts FROM hand_matches"
        " WHERE merchant_id = ? AND undone_at IS NULL ORDER BY id",
        (merchant_id,),
    )


def _inputs(tx: Tx, merchant_id: str) -> MerchantInputs:
    (inputs,) = load_inputs(tx, [merchant_id])
    if not inputs.batches and not inputs.credits:
        raise HandMatchError(f"no batches or credits for merchant {merchant_id}", 404)
    return inputs


def _credit_ids(inputs: MerchantInputs) -> dict[str, int]:
    """Credit id -> amount as the engine sees them: split credits by their parts."""
    return {c.credit_id: c.amount for c in split_credits(inputs.credits, inputs.splits)}


def match_by_hand(
    store: Store,
    merchant_id: str,
    batch_keys: list[str],
    credit_ids: list[str],
    *,
    note: str,
    actor: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Record that ``credit_ids`` pay ``batch_keys`` (one or more of each).

    :raises HandMatchError: an empty note or list, an unknown batch or credit, or one already
        in another hand match (409)
    """
    note = _note(note)
    if not batch_keys or not credit_ids:
        raise HandMatchError("name at least one batch and one credit")
    with store.transaction() as tx:
        inputs = _inputs(tx, merchant_id)
        known_batches = {b.key for b in inputs.batches}
        known_credits = _credit_ids(inputs)
        for key in batch_keys:
            if key not in known_batches:
                raise HandMatchError(f"merchant {merchant_id} has no batch {key}", 404)
        for cid in credit_ids:
            if cid not in known_credits:
                raise HandMatchError(f"merchant {merchant_id} has no credit {cid}", 404)
        for row in _active(tx, merchant_id):
            if row["kind"] != "match":
                continue
            if set(json.loads(row["batch_keys"])) & set(batch_keys) or set(
                json.loads(row["credit_ids"])
            ) & set(credit_ids):
                raise HandMatchError(f"already in hand match {row['id']}: unmatch it first", 409)
        after = {
            "merchant_id": merchant_id,
            "kind": "match",
            "batch_keys": json.dumps(sorted(set(batch_keys))),
            "credit_ids": json.dumps(sorted(set(credit_ids))),
            "note": note,
            "actor": actor,
        }
        hand_id = tx.insert("hand_matches", after)
        audit(tx, actor, "match.hand", f"hand_match:{hand_id}", None, after)
        mark_dirty(tx, merchant_id, f"hand match {hand_id}")
    reconcile(store, [merchant_id], now=now)
    return {"id": hand_id, **after}


def unmatch(
    store: Store, hand_id: int, *, note: str, actor: str, now: datetime | None = None
) -> dict[str, Any]:
    """Undo a hand match or a split; the rules decide again on the next run (run here).

    :raises HandMatchError: unknown (404) or already undone (409)
    """
    note = _note(note)
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with store.transaction() as tx:
        before = tx.query_one("SELECT * FROM hand_matches WHERE id = ?", (hand_id,))
        if before is None:
            raise HandMatchError(f"no hand match {hand_id}", 404)
        if before["undone_at"] is not None:
            raise HandMatchError(f"hand match {hand_id} is undone already", 409)
        if before["kind"] == "split":
            parent = json.loads(before["credit_ids"])[0]
            prefix = f"{parent}/"
            for row in _active(tx, before["merchant_id"]):
                if row["kind"] == "match" and any(
                    c.startswith(prefix) for c in json.loads(row["credit_ids"])
                ):
                    raise HandMatchError(
                        f"hand match {row['id']} uses a part of this split: unmatch it first", 409
                    )
        tx.execute(
            "UPDATE hand_matches SET undone_at = ?, undone_by = ?, undo_note = ? WHERE id = ?",
            (stamp, actor, note, hand_id),
        )
        after = tx.query_one("SELECT * FROM hand_matches WHERE id = ?", (hand_id,))
        audit(tx, actor, "match.undo", f"hand_match:{hand_id}", before, after)
        mark_dirty(tx, before["merchant_id"], f"hand match {hand_id} undone")
    reconcile(store, [before["merchant_id"]], now=now)
    return dict(after or {})


def split_credit(
    store: Store,
    merchant_id: str,
    credit_id: str,
    amounts: list[int],
    *,
    note: str,
    actor: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Split one credit into parts (``<credit_id>/1``, ``/2``, …) that add up to it.

    :raises HandMatchError: fewer than two parts, a part not positive, parts not adding up to
        the credit, an unknown credit (404), or one split or hand-matched already (409)
    """
    note = _note(note)
    if len(amounts) < 2 or any(a <= 0 for a in amounts):
        raise HandMatchError("a split has at least two positive parts")
    with store.transaction() as tx:
        inputs = _inputs(tx, merchant_id)
        credit = next((c for c in inputs.credits if c.credit_id == credit_id), None)
        if credit is None:
            raise HandMatchError(f"merchant {merchant_id} has no credit {credit_id}", 404)
        if sum(amounts) != credit.amount:
            raise HandMatchError(
                f"the parts add up to {sum(amounts)} fen, the credit is {credit.amount} fen", 409
            )
        for row in _active(tx, merchant_id):
            if credit_id in json.loads(row["credit_ids"]):
                raise HandMatchError(f"credit {credit_id} is in hand match {row['id']}", 409)
        after = {
            "merchant_id": merchant_id,
            "kind": "split",
            "credit_ids": json.dumps([credit_id]),
            "amounts": json.dumps(list(amounts)),
            "note": note,
            "actor": actor,
        }
        hand_id = tx.insert("hand_matches", after)
        audit(tx, actor, "match.split", f"hand_match:{hand_id}", None, after)
        mark_dirty(tx, merchant_id, f"credit split {hand_id}")
    reconcile(store, [merchant_id], now=now)
    parts = [split_part_id(credit_id, n) for n in range(1, len(amounts) + 1)]
    return {"id": hand_id, **after, "parts": parts}


def list_hand_matches(store: Store, merchant_id: str) -> list[dict[str, Any]]:
    """Every hand match and split of a merchant, undone ones included, newest first."""
    rows = store.query(
        "SELECT * FROM hand_matches WHERE merchant_id = ? ORDER BY id DESC", (merchant_id,)
    )
    for row in rows:
        for name in ("batch_keys", "credit_ids", "amounts"):
            row[name] = json.loads(row[name] or "[]")
    return rows


def suggest_matches(
    store: Store, gap_id: int, *, now: datetime | None = None, limit: int = 5
) -> list[dict[str, Any]]:
    """Credits that may pay a gap's batches, best first.

    Candidates are credits no rule used (single credits, and all such credits of one day),
    booked within :data:`SUGGEST_DAYS` of the due date, of an amount within
    :data:`SUGGEST_BP` of what the batches should bring. Ranked by: from the acquirer (payer
    matches, then unknown, then someone else), amount difference, days from the due date.

    :raises HandMatchError: unknown gap (404)
    """
    row = store.query_one("SELECT merchant_id, batch_ids FROM gaps WHERE id = ?", (gap_id,))
    if row is None:
        raise HandMatchError(f"no gap {gap_id}", 404)
    merchant_id, keys = row["merchant_id"], set(json.loads(row["batch_ids"] or "[]"))
    with store.transaction() as tx:
        (inputs,) = load_inputs(tx, [merchant_id])
    result = reconcile_merchant(inputs, now=now or datetime.now(UTC), calendar=load_calendar())
    wanted = [e for e in result.expected if e.batch_key in keys]
    if not wanted:
        return []
    target = sum(e.amount for e in wanted)
    due = min(e.due_date for e in wanted)
    used = {c for m in result.matches for c in m.credit_ids}
    free = [
        c
        for c in _engine_credits(inputs)
        if c.credit_id not in used
        and c.status == "booked"
        and not c.reversal
        and abs((c.booking_date - due).days) <= SUGGEST_DAYS
    ]
    options: list[tuple[list[Any], int]] = [([c], c.amount) for c in free]
    by_day: dict[date, list[Any]] = {}
    for credit in free:
        by_day.setdefault(credit.booking_date, []).append(credit)
    options += [(day, sum(c.amount for c in day)) for day in by_day.values() if len(day) > 1]
    payers = inputs.merchant.payers
    ranked = []
    for credits, amount in options:
        if abs(amount - target) * 10000 > target * SUGGEST_BP:
            continue
        verdicts = [is_acquirer_payer(c.payer_name, c.payer_account, payers) for c in credits]
        from_acquirer = None if not payers else (False if False in verdicts else verdicts[0])
        order = {True: 0, None: 1, False: 2}[from_acquirer]
        days = max(abs((c.booking_date - due).days) for c in credits)
        ranked.append(
            (
                (order, abs(amount - target), days, [c.credit_id for c in credits]),
                {
                    "batch_keys": sorted(keys),
                    "credit_ids": sorted(c.credit_id for c in credits),
                    "amount": amount,
                    "expected": target,
                    "difference": amount - target,
                    "days_from_due": days,
                    "from_acquirer": from_acquirer,
                    "payer_names": sorted({c.payer_name for c in credits if c.payer_name}),
                },
            )
        )
    ranked.sort(key=lambda item: item[0])
    return [item[1] for item in ranked[:limit]]


def _engine_credits(inputs: MerchantInputs) -> list[Credit]:
    return split_credits(inputs.credits, inputs.splits)


__all__ = [
    "HandMatchError",
    "list_hand_matches",
    "match_by_hand",
    "split_credit",
    "suggest_matches",
    "unmatch",
]
