"""The JSON API under ``/api/v1`` (described by :mod:`collector.web.openapi`).

Authenticated by the dashboard session or ``Authorization: Bearer <API token>``; no
credentials: 401, a role too low: 403. Reads need ``viewer``, actions ``operator``. A
session caller's POST must carry the CSRF token in ``X-CSRFToken``, checked for every
state-changing request by :func:`collector.web.check_csrf` (a token caller has no cookie
for another site to ride on, so it needs none). Lists page by key: pass the returned
``next_after`` as ``after``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from settleguard.collector.statements.importer import list_imports
from settleguard.collector.web import actions, read_models
from settleguard.collector.web.auth import actor, role_required
from settleguard.collector.web.db import get_db
from settleguard.collector.web.openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_LIMIT = 500


def _limit() -> int:
    limit = request.args.get("limit", read_models.PAGE_SIZE, type=int)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        abort(400, f"limit must be 1-{MAX_LIMIT}")
    return limit


def _int_arg(name: str) -> int:
    value = request.args.get(name, 0, type=int)
    if value is None or value < 0 or value > 2**62:
        abort(400, f"{name} must be a non-negative integer")
    return value


def _str_arg(name: str, limit: int = 64) -> str:
    value = request.args.get(name, "")
    if len(value) > limit or "\x00" in value:
        abort(400, f"{name} is too long or not text")
    return value


def _id_in_range(value: int) -> None:
    if value > 2**62:  # beyond any id the store hands out (and beyond a 64-bit column)
        abort(404, "no such id")


def _body() -> dict[str, Any]:
    if not request.content_length:
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "the body must be a JSON object")
    return body


def _note(body: dict[str, Any], required: bool = False) -> str:
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > 2000:
        abort(400, "note must be a string of at most 2000 characters")
    if required and not note.strip(" \t\r\n"):
        abort(400, "note is required")
    return note


def _run(action: Any) -> Any:
    try:
        return jsonify(action())
    except actions.ActionError as exc:
        return jsonify({"error": str(exc)}), exc.status


def _page(rows: list[dict[str, Any]], limit: int, key: str = "id") -> dict[str, Any]:
    return {"items": rows, "next_after": rows[-1][key] if len(rows) == limit else None}


@bp.get("/openapi.json")
def openapi() -> Any:
    """The OpenAPI 3.0 description of this API (public: it holds no data)."""
    return jsonify(openapi_document())


@bp.get("/merchants")
@role_required("viewer")
def merchants() -> Any:
    limit = _limit()
    rows, next_after = read_models.search_merchants(
        get_db(),
        q=_str_arg("q"),
        status=_str_arg("status"),
        category=_str_arg("category"),
        after=_str_arg("after"),
        limit=limit,
    )
    return jsonify({"items": rows, "next_after": next_after})


@bp.get("/merchants/<merchant_id>")
@role_required("viewer")
def merchant(merchant_id: str) -> Any:
    store = get_db()
    row = read_models.merchant(store, merchant_id)
    if row is None:
        abort(404, f"no merchant {merchant_id}")
    row["timeline"] = read_models.timeline(store, merchant_id)
    return jsonify(row)


@bp.get("/batches")
@role_required("viewer")
def batches() -> Any:
    limit, merchant_id = _limit(), _str_arg("merchant_id")
    sql = (
        "SELECT id, agent_id, terminal_id, merchant_id, batch_no, closed_at, currency,"  # noqa: S608 - fixed fragments, bound values
        " total_amount, host_reconciled, source FROM batch_summaries WHERE "
        + ("merchant_id = ?" if merchant_id else "1 = 1")
    )
    rows = read_models.page_by_id(
        get_db(), sql, [merchant_id] if merchant_id else [], after=_int_arg("after"), limit=limit
    )
    return jsonify(_page(rows, limit))


@bp.get("/credits")
@role_required("viewer")
def credits() -> Any:
    limit = _limit()
    rows = read_models.page_by_id(
        get_db(),
        "SELECT id, import_id, account_masked, booked_at, value_date, amount, currency, kind,"
        " status, reference FROM credits WHERE 1 = 1",
        [],
        after=_int_arg("after"),
        limit=limit,
    )
    return jsonify(_page(rows, limit))


@bp.get("/gaps")
@role_required("viewer")
def gaps() -> Any:
    limit = _limit()
    sort = _str_arg("sort") or "money"
    if sort not in read_models.GAP_SORTS:
        abort(400, f"sort must be one of {', '.join(read_models.GAP_SORTS)}")
    rows = read_models.gap_queue(
        get_db(),
        sort=sort,
        status=_str_arg("status") or "open",
        category=_str_arg("category"),
        merchant_id=_str_arg("merchant_id"),
        after=_str_arg("after", 128),
        limit=limit,
    )
    more = len(rows) == limit
    return jsonify(
        {"items": rows, "next_after": read_models.gap_cursor(rows[-1], sort) if more else None}
    )


@bp.get("/gaps/<int:gap_id>")
@role_required("viewer")
def gap(gap_id: int) -> Any:
    _id_in_range(gap_id)
    row = read_models.gap(get_db(), gap_id)
    if row is None:
        abort(404, f"no gap {gap_id}")
    return jsonify(row)


@bp.post("/gaps/<int:gap_id>/<action>")
@role_required("operator")
def gap_action(gap_id: int, action: str) -> Any:
    _id_in_range(gap_id)
    store, who = get_db(), actor()
    if action == "acknowledge":
        note = _note(_body())
        return _run(lambda: actions.acknowledge_gap(store, gap_id, actor=who, note=note or None))
    if action == "resolve":
        note = _note(_body(), required=True)
        return _run(lambda: actions.resolve_gap(store, gap_id, actor=who, note=note))
    if action == "resend":
        return _run(lambda: actions.resend_alert(store, gap_id, actor=who))
    abort(404)


@bp.post("/accounts/<int:account_id>/status")
@role_required("operator")
def account_status(account_id: int) -> Any:
    """Review a settlement-account change: ``{"status", "reference", "date", "note"}``."""
    _id_in_range(account_id)
    body = _body()
    status, reference, day = body.get("status"), body.get("reference"), body.get("date")
    if not isinstance(status, str) or len(status) > 32:
        abort(400, "status is required")
    if reference is not None and (not isinstance(reference, str) or len(reference) > 64):
        abort(400, "reference must be a string of at most 64 characters")
    at = None
    if day is not None:
        try:
            at = datetime.strptime(str(day), "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            abort(400, "date must be YYYY-MM-DD")
    note = _note(body) or None
    return _run(
        lambda: actions.set_account_status(
            get_db(), account_id, status, actor=actor(), note=note, reference=reference, at=at
        )
    )


@bp.get("/imports")
@role_required("viewer")
def imports() -> Any:
    return jsonify({"items": list_imports(get_db(), limit=_limit())})


@bp.post("/imports")
@role_required("operator")
def upload() -> Any:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        abort(400, "send the statement as multipart form field 'file'")
    form = request.form
    try:
        result = actions.upload_statement(
            current_app,
            get_db(),
            upload.read(),
            filename=upload.filename or "upload",
            actor=actor(),
            fmt=form.get("format", "auto"),
            profile=form.get("profile"),
            account=form.get("account"),
            account_of=form.get("account_of"),
        )
    except actions.ActionError as exc:
        return jsonify({"error": str(exc)}), exc.status
    return jsonify(result), 422 if "error" in result else 200


@bp.get("/agents")
@role_required("viewer")
def agents() -> Any:
    return jsonify({"items": read_models.agents(get_db())})


@bp.post("/agents/<agent_id>/<action>")
@role_required("operator")
def agent_action(agent_id: str, action: str) -> Any:
    if action not in actions.AGENT_ACTIONS:
        abort(404)
    return _run(
        lambda: actions.agent_action(current_app, get_db(), agent_id, action, actor=actor())
    )


@bp.get("/alerts")
@role_required("viewer")
def alerts() -> Any:
    limit = _limit()
    rows = read_models.page_by_id(
        get_db(),
        "SELECT id, gap_id, merchant_id, state, attempts, created_at, sent_at, delivered_at,"
        " last_error, text FROM alerts WHERE 1 = 1",
        [],
        after=_int_arg("after"),
        limit=limit,
    )
    return jsonify(_page(rows, limit))


@bp.get("/escalations")
@role_required("viewer")
def escalations() -> Any:
    from settleguard.collector.alerts.store import escalated_alerts, escalation_count

    store = get_db()
    return jsonify(
        {"items": escalated_alerts(store, limit=_limit()), "count": escalation_count(store)}
    )


@bp.post("/alerts/<int:alert_id>/<decision>")
@role_required("operator")
def alert_decision(alert_id: int, decision: str) -> Any:
    _id_in_range(alert_id)
    if decision not in actions.DECISIONS:
        abort(404)
    return _run(lambda: actions.decide_uncertain_alert(get_db(), alert_id, decision, actor=actor()))
