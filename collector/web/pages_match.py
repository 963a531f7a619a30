"""Dashboard pages for hand matching: a gap's suggestions and forms, undo on the merchant page.

Routes of :data:`collector.web.pages.bp`, registered by importing this module. Every form posts
with the CSRF token and calls :mod:`collector.reconcile.manual`; an error is flashed, not raised.
"""

from __future__ import annotations

import json
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from settleguard.collector.reconcile import manual as hand_match
from settleguard.collector.statements.amounts import AmountError, parse_decimal, to_minor_units
from settleguard.collector.web.auth import actor, role_required
from settleguard.collector.web.db import get_db
from settleguard.collector.web.i18n import translate
from settleguard.collector.web.pages import bp


def _ids(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


@bp.get("/gaps/<int:gap_id>/match")
@role_required("viewer")
def gap_match(gap_id: int) -> Any:
    store = get_db()
    gap = store.query_one("SELECT * FROM gaps WHERE id = ?", (gap_id,))
    if gap is None:
        abort(404)
    gap["batch_ids"] = json.loads(gap["batch_ids"] or "[]")
    try:
        suggestions = hand_match.suggest_matches(store, gap_id)
    except hand_match.HandMatchError as exc:
        flash(str(exc), "error")
        suggestions = []
    hands = hand_match.list_hand_matches(store, gap["merchant_id"])
    return render_template("hand_match.html", gap=gap, suggestions=suggestions, hands=hands)


def _done(action: Any, gap_id: int) -> Any:
    try:
        action()
    except hand_match.HandMatchError as exc:
        flash(str(exc), "error")
    else:
        flash(translate("Done."))
    return redirect(url_for("pages.gap_match", gap_id=gap_id))


@bp.post("/gaps/<int:gap_id>/match/<kind>")
@role_required("operator")
def gap_match_action(gap_id: int, kind: str) -> Any:
    store, who, form = get_db(), actor(), request.form
    gap = store.query_one("SELECT merchant_id, batch_ids FROM gaps WHERE id = ?", (gap_id,))
    if gap is None:
        abort(404)
    mid, note = gap["merchant_id"], form.get("note", "")
    if kind == "match":
        keys = _ids(form.get("batch_keys", "")) or json.loads(gap["batch_ids"] or "[]")
        credits = _ids(form.get("credit_ids", ""))
        return _done(
            lambda: hand_match.match_by_hand(store, mid, keys, credits, note=note, actor=who),
            gap_id,
        )
    if kind == "split":
        try:
            parts = [to_minor_units(parse_decimal(p), "CNY") for p in _ids(form.get("amounts", ""))]
        except AmountError as exc:
            flash(str(exc), "error")
            return redirect(url_for("pages.gap_match", gap_id=gap_id))
        credit_id = form.get("credit_id", "").strip()
        return _done(
            lambda: hand_match.split_credit(store, mid, credit_id, parts, note=note, actor=who),
            gap_id,
        )
    if kind == "undo":
        hand_id = form.get("hand_id", type=int)
        if hand_id is None:
            abort(400)
        return _done(lambda: hand_match.unmatch(store, hand_id, note=note, actor=who), gap_id)
    abort(404)
