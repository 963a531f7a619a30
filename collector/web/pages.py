"""The dashboard's pages: server-rendered HTML, forms and links, no scripts.

Views translate between HTTP and :mod:`collector.web.read_models` / :mod:`collector.web.actions`.
Reading needs ``viewer``; every form that changes something needs ``operator`` and a CSRF
token (Flask-WTF checks it before the view runs).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from settleguard.collector.alerts.store import escalated_alerts, escalation_count
from settleguard.collector.reconcile.calendar import CalendarError, calendar_path, load_calendar
from settleguard.collector.reconcile.model import GAP_CATEGORIES
from settleguard.collector.web import actions, read_models
from settleguard.collector.web.auth import actor, can, role_required
from settleguard.collector.web.chart import bars, ticks
from settleguard.collector.web.db import get_db
from settleguard.collector.web.export import ADMIN_ONLY, TABLES, export_csv
from settleguard.collector.web.i18n import translate
from settleguard.collector.web.security import same_site_path

bp = Blueprint("pages", __name__)

#: A gap's reference as SMS texts quote it (``SG-11``), or its bare number.
GAP_REFERENCE = re.compile(r"(?:SG-?)?(\d{1,18})", re.IGNORECASE)

FORMATS = ("auto", "camt053", "camt054", "mt940", "csv", "payout")


def _back(default: str) -> Any:
    return redirect(same_site_path(request.form.get("next")) or default)


@bp.get("/")
@role_required("viewer")
def overview() -> str:
    data = read_models.overview(
        get_db(),
        now=datetime.now(UTC),
        silent_after_s=int(current_app.config["AGENT_SILENT_AFTER_S"]),
    )
    data["escalations"] = escalation_count(get_db())
    return render_template(
        "overview.html",
        data=data,
        bars=bars(data["trend"]),
        ticks=ticks(data["trend"]),
        calendar=_calendar_notice(),
    )


def _calendar_notice() -> dict[str, Any] | None:
    """The working calendar's name, end and days left when it ends soon, or why it is unusable.

    The parsed file is kept while its modification time stays the same, so the banner goes
    away as soon as an operator adds the next year, without a restart.
    """
    path = calendar_path()
    try:
        stamp = (str(path), path.stat().st_mtime_ns)
    except OSError:
        stamp = (str(path), None)  # load_calendar says why, with the file's name
    cached = current_app.extensions.get("settleguard.calendar")
    if cached is not None and cached[0] == stamp:
        found = cached[1]
    else:
        try:
            found = load_calendar(path)
        except CalendarError as exc:
            return {"error": str(exc)}
        current_app.extensions["settleguard.calendar"] = (stamp, found)
    left = found.ending_soon(datetime.now(UTC).date())
    if left is None:
        return None
    return {"name": found.name, "valid_to": found.valid_to.isoformat(), "days_left": left}


@bp.get("/merchants")
@role_required("viewer")
def merchants() -> str:
    args = request.args
    rows, next_after = read_models.search_merchants(
        get_db(),
        q=args.get("q", "")[:64],
        status=args.get("status", ""),
        category=args.get("category", ""),
        after=args.get("after", ""),
    )
    return render_template(
        "merchants.html", rows=rows, next_after=next_after, categories=GAP_CATEGORIES, args=args
    )


@bp.get("/merchants/<merchant_id>")
@role_required("viewer")
def merchant(merchant_id: str) -> str:
    store = get_db()
    row = read_models.merchant(store, merchant_id)
    if row is None:
        abort(404)
    events = read_models.timeline(store, merchant_id)
    gaps = read_models.gap_queue(store, merchant_id=merchant_id, status="", limit=200)
    return render_template("merchant.html", m=row, events=events, gaps=gaps)


@bp.post("/merchants/<merchant_id>/accounts/<int:account_id>")
@role_required("operator")
def account_status(merchant_id: str, account_id: int) -> Any:
    return _act(
        lambda: actions.set_account_status(
            get_db(),
            account_id,
            request.form.get("status", ""),
            actor=actor(),
            note=request.form.get("note") or None,
            reference=(request.form.get("reference") or "").strip()[:64] or None,
            at=_form_date(request.form.get("date")),
        ),
        url_for("pages.merchant", merchant_id=merchant_id),
    )


def _form_date(text: str | None) -> datetime | None:
    """A ``YYYY-MM-DD`` form field as UTC midnight; empty or malformed: None (now)."""
    try:
        return datetime.strptime(text or "", "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


def _act(action: Any, default: str) -> Any:
    try:
        action()
    except actions.ActionError as exc:
        flash(str(exc), "error")
        return _back(default)
    flash(translate("Done."))
    return _back(default)


@bp.get("/gaps")
@role_required("viewer")
def gaps() -> Any:
    args = request.args
    reference = GAP_REFERENCE.fullmatch(args.get("q", "").strip())
    if reference:  # the SMS reference a merchant quotes, SG-11 (or just 11)
        return redirect(url_for("pages.gap_page", gap_id=int(reference.group(1))))
    sort = args.get("sort", "money")
    sort = sort if sort in read_models.GAP_SORTS else "money"
    rows = read_models.gap_queue(
        get_db(),
        sort=sort,
        status=args.get("status", "open"),
        category=args.get("category", ""),
        after=args.get("after", "")[:128],
    )
    more = len(rows) == read_models.PAGE_SIZE
    return render_template(
        "gaps.html",
        rows=rows,
        args=args,
        categories=GAP_CATEGORIES,
        sort=sort,
        next_after=read_models.gap_cursor(rows[-1], sort) if more else None,
    )


@bp.get("/gaps/<int:gap_id>")
@role_required("viewer")
def gap_page(gap_id: int) -> str:
    """One gap at a stable address: the page the SMS reference ``SG-<id>`` opens."""
    store = get_db()
    row = read_models.gap(store, gap_id)
    if row is None:
        abort(404)
    merchant = read_models.merchant(store, row["merchant_id"])
    return render_template("gap.html", gap=row, m=merchant)


@bp.post("/gaps/<int:gap_id>/<action>")
@role_required("operator")
def gap_action(gap_id: int, action: str) -> Any:
    store, who, note = get_db(), actor(), request.form.get("note", "")
    todo = {
        "acknowledge": lambda: actions.acknowledge_gap(store, gap_id, actor=who, note=note or None),
        "resolve": lambda: actions.resolve_gap(store, gap_id, actor=who, note=note),
        "resend": lambda: actions.resend_alert(store, gap_id, actor=who),
    }
    if action not in todo:
        abort(404)
    return _act(todo[action], url_for("pages.gaps"))


@bp.get("/agents")
@role_required("viewer")
def agents() -> str:
    return render_template("agents.html", rows=read_models.agents(get_db()))


@bp.post("/agents/<agent_id>/<action>")
@role_required("operator")
def agent_action(agent_id: str, action: str) -> Any:
    if action not in actions.AGENT_ACTIONS:
        abort(404)
    return _act(
        lambda: actions.agent_action(current_app, get_db(), agent_id, action, actor=actor()),
        url_for("pages.agents"),
    )


@bp.route("/imports", methods=["GET", "POST"])
@role_required("viewer")
def imports() -> Any:
    result = None
    status = 200
    if request.method == "POST":
        if not can("operator"):
            abort(403)
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash("choose a file to upload", "error")
            status = 400
        else:
            try:
                result = actions.upload_statement(
                    current_app,
                    get_db(),
                    upload.read(),
                    filename=upload.filename,
                    actor=actor(),
                    fmt=request.form.get("format", "auto"),
                    profile=request.form.get("profile"),
                    account=request.form.get("account"),
                    account_of=request.form.get("account_of"),
                )
            except actions.ActionError as exc:
                flash(str(exc), "error")
                status = exc.status
            else:
                status = 422 if "error" in result else 200
    rows = get_db().query(
        "SELECT id, kind, filename, file_format, account_masked, imported_at, actor, status,"
        " row_count, reject_count, rejects, error FROM imports ORDER BY id DESC LIMIT 100"
    )
    return render_template("imports.html", rows=rows, result=result, formats=FORMATS), status


@bp.get("/alerts")
@role_required("viewer")
def alerts() -> str:
    after = request.args.get("after", 0, type=int)
    rows = read_models.page_by_id(
        get_db(),
        "SELECT id, gap_id, merchant_id, phone, state, attempts, created_at, sent_at,"
        " delivered_at, last_error, text FROM alerts WHERE 1 = 1",
        [],
        after=after,
    )
    for row in rows:
        row["phone"] = read_models._mask_phone(row["phone"])
    return render_template("alerts.html", rows=rows)


@bp.get("/escalations")
@role_required("viewer")
def escalations() -> str:
    store = get_db()
    return render_template(
        "escalations.html", rows=escalated_alerts(store, limit=200), total=escalation_count(store)
    )


@bp.post("/alerts/<int:alert_id>/decide")
@role_required("operator")
def alert_decision(alert_id: int) -> Any:
    decision = request.form.get("decision", "")
    return _act(
        lambda: actions.decide_uncertain_alert(get_db(), alert_id, decision, actor=actor()),
        url_for("pages.escalations"),
    )


@bp.get("/audit")
@role_required("viewer")
def audit() -> str:
    after = request.args.get("after", 0, type=int)
    rows = read_models.page_by_id(
        get_db(),
        "SELECT id, at, actor, action, target, detail FROM audit_log WHERE 1 = 1",
        [],
        after=after,
        limit=100,
    )
    return render_template("audit.html", rows=rows)


@bp.get("/users")
@role_required("admin")
def users() -> str:
    from settleguard.collector.web.users import list_users

    return render_template("users.html", rows=list_users(get_db()))


@bp.get("/export/<name>.csv")
@role_required("viewer")
def export(name: str) -> Response:
    if name not in TABLES:
        abort(404)
    if name in ADMIN_ONLY and not can("admin"):
        abort(403)
    store = get_db()
    return Response(
        stream_with_context(export_csv(store, name)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
