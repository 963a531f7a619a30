"""JSON API for hand matching (``/api/v1``): match, unmatch, split, suggestions, list.

Routes of :data:`collector.web.api.bp`, registered by importing this module. Each one checks the
body and calls :mod:`collector.reconcile.manual`; its errors answer with their status and one line.
"""

from __future__ import annotations

import json
from typing import Any

from flask import abort, jsonify
from settleguard.collector.reconcile import manual as hand_match
from settleguard.collector.web.api import _body, _id_in_range, _note, bp
from settleguard.collector.web.auth import actor, role_required
from settleguard.collector.web.db import get_db


def _strings(body: dict[str, Any], name: str, *, required: bool = True) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(
        isinstance(v, str) and 0 < len(v) <= 200 for v in value
    ):
        abort(400, f"{name} must be a list of ids")
    if required and not value:
        abort(400, f"{name} must name at least one id")
    if len(value) > 200:
        abort(400, f"{name} names more than 200 ids")
    return value


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        abort(400, f"{name} must be a string of 1-64 characters")
    return value


def _answer(action: Any) -> Any:
    try:
        return jsonify(action())
    except hand_match.HandMatchError as exc:
        return jsonify({"error": str(exc)}), exc.status


@bp.get("/gaps/<int:gap_id>/suggestions")
@role_required("viewer")
def gap_suggestions(gap_id: int) -> Any:
    _id_in_range(gap_id)
    return _answer(lambda: {"items": hand_match.suggest_matches(get_db(), gap_id)})


@bp.post("/gaps/<int:gap_id>/match")
@role_required("operator")
def gap_match(gap_id: int) -> Any:
    """Confirm a suggestion: the credits pay every batch of the gap."""
    _id_in_range(gap_id)
    body = _body()
    credits, note = _strings(body, "credit_ids"), _note(body, required=True)
    store = get_db()
    row = store.query_one("SELECT merchant_id, batch_ids FROM gaps WHERE id = ?", (gap_id,))
    if row is None:
        abort(404, f"no gap {gap_id}")
    keys = json.loads(row["batch_ids"] or "[]")
    if not keys:
        return jsonify({"error": f"gap {gap_id} names no batches: use /matches"}), 409
    return _answer(
        lambda: hand_match.match_by_hand(
            store, row["merchant_id"], keys, credits, note=note, actor=actor()
        )
    )


@bp.post("/matches")
@role_required("operator")
def hand_match_add() -> Any:
    body = _body()
    merchant_id = _text(body, "merchant_id")
    keys, credits = _strings(body, "batch_keys"), _strings(body, "credit_ids")
    note = _note(body, required=True)
    return _answer(
        lambda: hand_match.match_by_hand(
            get_db(), merchant_id, keys, credits, note=note, actor=actor()
        )
    )


@bp.post("/matches/<int:hand_id>/undo")
@role_required("operator")
def hand_match_undo(hand_id: int) -> Any:
    _id_in_range(hand_id)
    note = _note(_body(), required=True)
    return _answer(lambda: hand_match.unmatch(get_db(), hand_id, note=note, actor=actor()))


@bp.post("/credits/split")
@role_required("operator")
def credit_split() -> Any:
    body = _body()
    merchant_id, credit_id = _text(body, "merchant_id"), _text(body, "credit_id")
    amounts = body.get("amounts")
    if (
        not isinstance(amounts, list)
        or not 2 <= len(amounts) <= 100
        or not all(type(a) is int and 0 < a <= 10**15 for a in amounts)
    ):
        abort(400, "amounts must list 2-100 positive integers in minor units (fen)")
    note = _note(body, required=True)
    return _answer(
        lambda: hand_match.split_credit(
            get_db(), merchant_id, credit_id, amounts, note=note, actor=actor()
        )
    )


@bp.get("/merchants/<merchant_id>/hand-matches")
@role_required("viewer")
def hand_matches(merchant_id: str) -> Any:
    if len(merchant_id) > 64:
        abort(404)
    return jsonify({"items": hand_match.list_hand_matches(get_db(), merchant_id)})
