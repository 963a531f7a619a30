"""From the collector's gaps to queued SMS: at most one message per merchant per day.

Theory of operation (docs/alerts.md "From gaps to alerts"): reconciliation writes gaps with a
category, an amount, a due date and a status. Each planning pass reads only the gaps that can
still produce an alert:

- *unresolved* gaps (``open`` or ``acknowledged`` -- an operator looking at it does not bring
  the money) of a category the policy alerts on, whose last scheduled stage is not reached yet;
- gaps *resolved because the money arrived* (``resolution = 'matched'``) that were alerted
  and have no ``arrived`` stage yet. A gap resolved otherwise (superseded by a better
  explanation, or closed by an operator) gets no "money arrived" SMS: we do not know it did.

Per merchant, :func:`.policy.stage_due` says which gaps reach a stage now (day 1, 3, 7, or
``arrived``). Those stages travel in **one** SMS, keyed ``merchant|local day`` so a second pass,
or a second process, the same day queues nothing more:

- one open gap past its grace: that category's template (where the money is, what to do);
- several: the ``DIGEST`` template -- how many, the largest amount and its trading day, and the
  largest gap's reference for the hotline or the dashboard;
- only arrivals: ``ARRIVED`` with the count and the total.

Open-gap stages win the day; arrivals due the same day wait for the next. Each (gap, stage) the
message carries is recorded once ever (``alert_gaps``), so day 3 follows day 1 as before.

Inputs per gap: the merchant's first phone number, locale and time zone; the settlement card's
last four digits (the account in force from the gap's evidence, else the merchant's active
account -- only the masked form is read, never a full number); the trading day the money belongs
to (the evidence's business date, else the due date); the due date. A gap is due at the end of
its due date in the merchant's zone; the category's grace runs from there. A gap that cannot be
rendered (no phone, no card on file, an amount beyond the template's limit) is skipped with a
reason in the :class:`PlanReport`, and planned again on the next pass.

A gap whose lateness rests on a due date the working calendar does not cover (evidence
``calendar_covers: False``, a category in :data:`~collector.reconcile.gaps.LATE_BY_DUE_DATE`)
is held (``PlanReport.held``) and planned again on the next pass: its due date counted weekends
only, and a public holiday there would make the SMS a false alarm. The hold ends
:data:`CALENDAR_SLACK` (14 days) after the due day, when the money is late by any calendar;
the planner then sends the latest stage due, as after any pause.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from settleguard.collector.alerts.gateway import TemplateCall
from settleguard.collector.alerts.policy import ARRIVED as ARRIVED_STAGE
from settleguard.collector.alerts.policy import AlertPolicy, GapState, message_key, stage_due
from settleguard.collector.alerts.store import AlertStore, NewAlert, parse_time
from settleguard.collector.alerts.templates import (
    ARRIVED,
    DEFAULT_LOCALE,
    DIGEST,
    LOCALES,
    Rendered,
    TemplateError,
    default_catalog,
    format_amount,
    format_day,
    preview,
    render,
    signed,
)
from settleguard.collector.reconcile.gaps import LATE_BY_DUE_DATE
from settleguard.collector.store import Row, Store

__all__ = [
    "CALENDAR_SLACK",
    "DEFAULT_ACQUIRER",
    "DEFAULT_SIGN_NAME",
    "GapContext",
    "PlanReport",
    "PlannerError",
    "calendar_hold",
    "gap_context",
    "plan_alerts",
    "preview_gap",
    "sendable_templates",
]

OPEN_STATUSES = ("open", "acknowledged")
#: How long past its (weekends-only) due day a gap outside the working calendar waits: longer
#: than any public-holiday break with its weekend (the longest in ``cn.toml`` is 9 days).
CALENDAR_SLACK = timedelta(days=14)
DEFAULT_TZ = "Asia/Shanghai"
DEFAULT_SIGN_NAME = "结算守护"
DEFAULT_SIGN_NAME_EN = "SettleGuard"
#: Said where no acquirer brand is configured: what merchants call their card-payment provider.
DEFAULT_ACQUIRER = "收单机构"


class PlannerError(LookupError):
    """A gap cannot be turned into an alert; the message says which and why."""


@dataclass(slots=True)
class PlanReport:
    """What one :func:`plan_alerts` pass did."""

    queued: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    #: gaps held because their due date lies outside the working calendar (gap id -> why)
    held: dict[int, str] = field(default_factory=dict)
    considered: int = 0
    #: gaps with a stage due whose merchant already has today's message (gap id -> stage)
    waiting: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GapContext:
    """Everything needed to plan and render one gap's alerts."""

    gap: GapState
    amount_minor: int
    trading_day: date
    card_tail: str
    reference: str
    reason: str | None
    phone: str
    locale: str
    tz: str


@dataclass(frozen=True, slots=True)
class Wording:
    """What the texts say that is not a gap's own data.

    :param sign_name: the registered signature (free-text gateways prefix it)
    :param acquirer: the acquirer's brand as merchants know it (at most 6 characters)
    :param sign_name_en: what English texts start with (GSM-7 letters keep them one SMS)
    :param templates_only: the gateway sends approved templates only, which are Chinese:
        every merchant gets the zh-CN text, whatever its locale
    """

    sign_name: str = DEFAULT_SIGN_NAME
    acquirer: str = DEFAULT_ACQUIRER
    sign_name_en: str = DEFAULT_SIGN_NAME_EN
    templates_only: bool = False

    def sign(self, rendered: Rendered) -> str:
        """*rendered* as a free-text gateway sends it, with the signature for its locale."""
        name = self.sign_name if rendered.locale == "zh-CN" else self.sign_name_en
        return signed(rendered.text, name, rendered.locale)


_GAP_COLUMNS = (
    "g.id, g.merchant_id, g.category, g.amount, g.currency, g.due_at, g.since, g.detected_at,"
    " g.status, g.resolution, g.resolved_at, g.evidence, g.reason,"
    " m.phones, m.locale, m.timezone"
)
_FROM = " FROM gaps g LEFT JOIN merchants m ON m.merchant_id = g.merchant_id"
# Plain words for the bank's return reasons (zh-CN, en); the first match wins.
_RETURN_REASONS = (
    (("name", "户名"), ("户名不符", "name mismatch")),
    (("frozen", "冻结"), ("账户冻结", "account frozen")),
    (("closed", "销户", "注销"), ("账户已注销", "account closed")),
)
_OTHER_REASON = ("账户异常", "account problem")


def reference_for(gap_id: int) -> str:
    """Our reference code for a gap, as the merchant quotes it (``SG-123``)."""
    return f"SG-{gap_id}"


def return_reason(raw: str | None, locale: str = DEFAULT_LOCALE) -> str:
    """The bank's return reason in plain words (zh-CN: at most 6 characters)."""
    text = (raw or "").lower()
    plain = next((p for words, p in _RETURN_REASONS if any(w in text for w in words)), None)
    zh, en = plain or _OTHER_REASON
    return zh if locale == "zh-CN" else en


def _zone(name: str | None) -> str:
    try:
        ZoneInfo(name or DEFAULT_TZ)
    except (ZoneInfoNotFoundError, ValueError):
        return DEFAULT_TZ
    return name or DEFAULT_TZ


def _due(row: Row, tz: str) -> tuple[datetime, date]:
    """When the gap's money was late (end of its due day, merchant time) and the due date."""
    text = row["due_at"] or row["since"] or row["detected_at"]
    if text and len(text) == 10:
        day = date.fromisoformat(text)
        local_end = datetime.combine(day + timedelta(days=1), time(0), ZoneInfo(tz))
        return local_end.astimezone(UTC), day
    moment = parse_time(text) or datetime.fromtimestamp(0, UTC)
    return moment, moment.astimezone(ZoneInfo(tz)).date()


def _evidence(row: Row) -> dict[str, Any]:
    """The gap's evidence object; ``{}`` when it is missing or not a JSON object."""
    try:
        evidence = json.loads(row["evidence"] or "{}")
    except ValueError:
        return {}
    return evidence if isinstance(evidence, dict) else {}


def calendar_hold(row: Row, now: datetime) -> str | None:
    """Why an unresolved gap's alert waits for the working calendar, or ``None``.

    The wait ends :data:`CALENDAR_SLACK` after the end of the (weekends-only) due day: by then
    the money is late whatever public holidays the calendar lacks.
    """
    if row["status"] not in OPEN_STATUSES or row["category"] not in LATE_BY_DUE_DATE:
        return None
    evidence = _evidence(row)
    if evidence.get("calendar_covers") is not False:
        return None
    until = _due(row, _zone(row["timezone"]))[0] + CALENDAR_SLACK
    if now >= until:
        return None
    return (
        f"gap {row['id']}: due date {evidence.get('due_date') or row['due_at']} lies outside the"
        f" working calendar ({evidence.get('calendar_valid', 'unknown range')}); held until the"
        f" calendar is extended and the merchant reconciled again, or until"
        f" {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    )


def _card_tail(store: Store, row: Row) -> str | None:
    """Last 4 digits of the settlement card the gap is about (masked data only)."""
    masked = _evidence(row).get("account_in_force")
    if not isinstance(masked, str) or not re.search(r"[0-9]{4}$", masked):
        account = store.query_one(
            "SELECT account_masked FROM settlement_accounts WHERE merchant_id = ?"
            " AND status = 'active' ORDER BY COALESCE(effective_at, created_at) DESC, id DESC",
            (row["merchant_id"],),
        )
        masked = account["account_masked"] if account else None
    if not isinstance(masked, str):
        return None
    found = re.search(r"([0-9]{4})$", masked.strip())
    return found.group(1) if found else None


def _trading_day(row: Row, due_day: date) -> date:
    """The business day the money belongs to (what a merchant remembers), else the due day."""
    text = _evidence(row).get("business_date")
    try:
        return date.fromisoformat(text) if isinstance(text, str) else due_day
    except ValueError:
        return due_day


def _context(store: Store, row: Row, locale: str | None = None) -> GapContext:
    gap_id = int(row["id"])
    try:
        phones = json.loads(row["phones"] or "[]")
    except ValueError:
        phones = []
    phone = next((p for p in phones if isinstance(p, str) and p.strip()), None)
    if phone is None:
        raise PlannerError(f"gap {gap_id}: merchant {row['merchant_id']} has no phone number")
    tail = _card_tail(store, row)
    if tail is None:
        raise PlannerError(f"gap {gap_id}: no settlement card on file for {row['merchant_id']}")
    tz = _zone(row["timezone"])
    locale = locale or row["locale"] or DEFAULT_LOCALE
    if locale not in LOCALES:
        locale = DEFAULT_LOCALE
    due_at, due_day = _due(row, tz)
    resolved = None
    if row["status"] == "resolved":
        resolved = parse_time(row["resolved_at"]) or due_at
    return GapContext(
        GapState(row["merchant_id"], str(gap_id), row["category"], due_at, resolved),
        int(row["amount"]),
        _trading_day(row, due_day),
        tail,
        reference_for(gap_id),
        row["reason"],
        phone.strip(),
        locale,
        tz,
    )


def gap_context(store: Store, gap_id: int, locale: str | None = None) -> GapContext:
    """The planning inputs for one gap.

    :raises PlannerError: no such gap, no phone or no card on file
    """
    return _context(store, _gap_row(store, gap_id), locale)


def _gap_row(store: Store, gap_id: int) -> Row:
    row = store.query_one(f"SELECT {_GAP_COLUMNS}{_FROM} WHERE g.id = ?", (gap_id,))
    if row is None:
        raise PlannerError(f"no gap with id {gap_id}")
    return row


def gap_message(ctx: GapContext, wording: Wording) -> Rendered:
    """One open gap's own template, filled in.

    :raises TemplateError: the category has no template, or a value does not fit it
    """
    if ctx.gap.category not in default_catalog().templates:
        raise TemplateError(
            f"{ctx.gap.category} gaps send the merchant nothing (docs/operator.md): no template"
        )
    values = {
        "date": format_day(ctx.trading_day, ctx.locale),
        "amount": format_amount(ctx.amount_minor),
        "card_tail": ctx.card_tail,
        "acquirer": wording.acquirer,
        "reference": ctx.reference,
        "reason": return_reason(ctx.reason, ctx.locale),
    }
    return render(ctx.gap.category, values, ctx.locale)


def digest_message(open_gaps: list[GapContext]) -> Rendered:
    """Several open gaps of one merchant: how many, and the largest with its reference."""
    largest = _largest(open_gaps)
    values = {
        "count": str(len(open_gaps)),
        "date": format_day(largest.trading_day, largest.locale),
        "amount": format_amount(largest.amount_minor),
        "reference": largest.reference,
    }
    return render(DIGEST, values, largest.locale)


def arrived_message(arrived: list[GapContext]) -> Rendered:
    """Gaps we told the merchant about whose money came: how many and how much."""
    largest = _largest(arrived)
    values = {
        "count": str(len(arrived)),
        "amount": format_amount(sum(c.amount_minor for c in arrived)),
        "reference": largest.reference,
    }
    return render(ARRIVED, values, largest.locale)


def sendable_templates(policy: AlertPolicy) -> set[str]:
    """Every template the policy can send: each alerting category, the digest and arrivals."""
    return {c for c, grace in policy.grace.items() if grace is not None} | {DIGEST, ARRIVED}


def _candidates(store: Store, policy: AlertPolicy) -> list[Row]:
    alerting = sorted(c for c, grace in policy.grace.items() if grace is not None)
    day_stages = [f"day{d}" for d in policy.schedule_days]
    if not alerting or not day_stages:
        return []
    cats = ", ".join("?" for _ in alerting)
    days = ", ".join("?" for _ in day_stages)
    statuses = ", ".join("?" for _ in OPEN_STATUSES)
    # Only "?" placeholders and our own column lists are formatted in. A merchant's open gaps
    # are read when one of them still has a stage ahead: the digest counts all of them.
    pending = (
        f"SELECT p.merchant_id FROM gaps p WHERE p.status IN ({statuses})"  # noqa: S608
        f" AND p.category IN ({cats}) AND NOT EXISTS (SELECT 1 FROM alert_gaps c"
        " WHERE c.gap_id = p.id AND c.stage = ?)"
    )
    open_sql = (
        f"SELECT {_GAP_COLUMNS}{_FROM} WHERE g.status IN ({statuses}) AND g.category IN ({cats})"
        f" AND g.merchant_id IN ({pending})"
    )
    arrived_sql = (
        f"SELECT {_GAP_COLUMNS}{_FROM} WHERE g.status = 'resolved' AND g.resolution = 'matched'"  # noqa: S608
        f" AND EXISTS (SELECT 1 FROM alert_gaps c WHERE c.gap_id = g.id AND c.stage IN ({days}))"
        " AND NOT EXISTS (SELECT 1 FROM alert_gaps c WHERE c.gap_id = g.id AND c.stage = ?)"
    )
    last = f"day{max(policy.schedule_days)}"
    rows = store.query(open_sql, (*OPEN_STATUSES, *alerting, *OPEN_STATUSES, *alerting, last))
    rows += store.query(arrived_sql, (*day_stages, ARRIVED_STAGE))
    return sorted(rows, key=lambda r: (r["merchant_id"] or "", int(r["id"])))


@dataclass(slots=True)
class _MerchantDay:
    """One merchant's gaps in one pass: what is due now, and what stays open."""

    open_gaps: list[GapContext] = field(default_factory=list)
    due: list[tuple[GapContext, str]] = field(default_factory=list)
    arrived: list[tuple[GapContext, str]] = field(default_factory=list)


def _sort_merchant(
    store: Store,
    rows: list[Row],
    alerts: AlertStore,
    now: datetime,
    policy: AlertPolicy,
    wording: Wording,
    report: PlanReport,
) -> _MerchantDay:
    day = _MerchantDay()
    stages = alerts.stages_by_gap(rows[0]["merchant_id"]) if rows else {}
    for row in rows:
        report.considered += 1
        gap_id = int(row["id"])
        held = calendar_hold(row, now)
        if held is not None:
            report.held[gap_id] = held
            continue
        try:
            ctx = _context(store, row, DEFAULT_LOCALE if wording.templates_only else None)
        except PlannerError as exc:
            report.skipped[gap_id] = str(exc)
            continue
        if ctx.gap.resolved_at is None and ctx.gap.category in default_catalog().templates:
            try:  # a gap its own template cannot say is left out, not the merchant's digest
                gap_message(ctx, wording)
            except TemplateError as exc:
                report.skipped[gap_id] = str(exc)
                continue
        done = stages.get(str(gap_id), set())
        stage = stage_due(ctx.gap, now, policy, done)
        if ctx.gap.resolved_at is None:
            grace = policy.grace.get(ctx.gap.category)
            if grace is not None and now >= ctx.gap.due_at + grace:
                day.open_gaps.append(ctx)
            if stage is not None:
                day.due.append((ctx, stage))
        elif stage is not None:
            day.arrived.append((ctx, stage))
    return day


def _largest(gaps: list[GapContext]) -> GapContext:
    return max(gaps, key=lambda c: (c.amount_minor, int(c.gap.gap_id)))


def _compose(
    day: _MerchantDay, wording: Wording
) -> tuple[Rendered, list[tuple[GapContext, str]], GapContext]:
    """The day's one message, the (gap, stage) pairs it carries and the gap it names."""
    if day.due:
        open_gaps = day.open_gaps or [ctx for ctx, _ in day.due]
        if len(open_gaps) == 1:
            return gap_message(open_gaps[0], wording), day.due, open_gaps[0]
        return digest_message(open_gaps), day.due, _largest(open_gaps)
    arrived = [ctx for ctx, _ in day.arrived]
    return arrived_message(arrived), day.arrived, _largest(arrived)


def _plan_merchant(
    day: _MerchantDay, alerts: AlertStore, now: datetime, wording: Wording, report: PlanReport
) -> None:
    if not day.due and not day.arrived:
        return
    try:
        rendered, carried, head = _compose(day, wording)
    except TemplateError as exc:
        for ctx, _ in day.due or day.arrived:
            report.skipped[int(ctx.gap.gap_id)] = str(exc)
        return
    local_day = now.astimezone(ZoneInfo(head.tz)).date()
    alert_id = alerts.enqueue(
        NewAlert(
            message_key(head.gap.merchant_id, local_day),
            head.gap.merchant_id,
            head.gap.gap_id,
            carried[0][1] if len({s for _, s in carried}) == 1 else "digest",
            head.phone,
            wording.sign(rendered),
            head.tz,
            covers=tuple((c.gap.gap_id, s) for c, s in carried),
            template=TemplateCall(rendered.template, rendered.params),
            locale=rendered.locale,
        ),
        now,
    )
    if alert_id is None:
        report.waiting.update({int(c.gap.gap_id): s for c, s in carried})
    else:
        report.queued.append(alert_id)


def plan_alerts(
    store: Store,
    now: datetime,
    policy: AlertPolicy | None = None,
    *,
    alert_store: AlertStore | None = None,
    wording: Wording | None = None,
) -> PlanReport:
    """Queue today's one SMS for every merchant with a stage due; safe to repeat.

    :param now: aware UTC time (passed in so tests and replays control the clock)
    """
    policy = policy or AlertPolicy()
    alerts = alert_store or AlertStore(store)
    wording = wording or Wording()
    report = PlanReport()
    for _, group in groupby(_candidates(store, policy), key=lambda r: r["merchant_id"]):
        day = _sort_merchant(store, list(group), alerts, now, policy, wording, report)
        _plan_merchant(day, alerts, now, wording, report)
    return report


def preview_gap(
    store: Store,
    gap_id: int,
    locale: str | None = None,
    now: datetime | None = None,
    policy: AlertPolicy | None = None,
    wording: Wording | None = None,
) -> dict[str, Any]:
    """What ``alerts preview --gap ID`` shows: this gap's own message as it would be sent.

    :raises PlannerError: no such gap, no phone or no card on file
    :raises TemplateError: the gap cannot be rendered (a category that sends nothing, an
        amount too large)
    """
    row = _gap_row(store, gap_id)
    ctx = _context(store, row, locale)
    now = now or datetime.now(UTC)
    policy = policy or AlertPolicy()
    wording = wording or Wording()
    done = AlertStore(store).stages_for(ctx.gap.merchant_id, ctx.gap.gap_id)
    if ctx.gap.resolved_at is not None:
        rendered = arrived_message([ctx])
    else:
        rendered = gap_message(ctx, wording)
    return {
        "gap_id": gap_id,
        "merchant_id": ctx.gap.merchant_id,
        "category": ctx.gap.category,
        "locale": ctx.locale,
        "to": "*" * max(0, len(ctx.phone) - 4) + ctx.phone[-4:],
        "reference": ctx.reference,
        "stages_queued": sorted(done),
        "stage_due_now": stage_due(ctx.gap, now, policy, done),
        "held": calendar_hold(row, now),
        **preview(
            rendered, wording.sign_name if rendered.locale == "zh-CN" else wording.sign_name_en
        ),
    }
