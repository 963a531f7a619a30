"""From the collector's gaps to queued alerts: who to tell, what to say, which stage is due.

Theory of operation (DESIGN.md §5 Alerts, docs/alerts.md "From gaps to alerts"): reconciliation
(issue 5) writes gaps with a category, an amount, a due date and a status. Each planning pass
reads only the gaps that can still produce an alert:

- *unresolved* gaps (``open`` or ``acknowledged`` -- an operator looking at it does not bring
  the money) of a category the policy alerts on, whose last scheduled stage is not queued yet;
- gaps *resolved because the money arrived* (``resolution = 'matched'``) that were alerted
  and have no ``arrived`` message yet. A gap resolved otherwise (superseded by a better
  explanation, or closed by an operator) gets no "money arrived" SMS: we do not know it did.

For each, :func:`collector.alerts.outbox.plan_alert` decides the stage
(:func:`.policy.stage_due`) and enqueues it under the unique key ``merchant|gap|stage``, so a
pass can be repeated or run by two processes at once without a second row per stage.

Inputs per gap: the merchant's first phone number, locale and time zone; the settlement card's
last four digits (the account in force from the gap's evidence, else the merchant's active
account -- only the masked form is read, never a full number); the due date. A gap is due at
the end of its due date in the merchant's zone; the category's grace runs from there. A gap
that cannot be rendered (no phone, no card on file, an amount beyond the checked templates) is
skipped with a reason in the :class:`PlanReport`, and planned again on the next pass.

A gap whose lateness rests on a due date the working calendar does not cover (evidence
``calendar_covers: False``, a category in :data:`~collector.reconcile.gaps.LATE_BY_DUE_DATE`)
is held (``PlanReport.held``) and planned again on the next pass: its due date counted weekends
only, and a public holiday there would make the SMS a false alarm. The hold ends
:data:`CALENDAR_SLACK` (14 days) after the due day, when the money is late by any calendar;
the planner then sends the latest stage due, as after any pause.
Once the calendar is extended and the merchants reconciled again (``reconcile --all``), the
evidence loses the mark and the gap is planned as usual.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.reconcile.gaps import LATE_BY_DUE_DATE
from collector.store import Row, Store

from .collector_store import CollectorAlertStore, parse_time
from .outbox import plan_alert
from .policy import ARRIVED, AlertPolicy, GapState, stage_due
from .templates import DEFAULT_LOCALE, LOCALES, GapInfo, Kind, TemplateError, preview

__all__ = [
    "CALENDAR_SLACK",
    "GapContext",
    "PlanReport",
    "PlannerError",
    "calendar_hold",
    "gap_context",
    "plan_alerts",
    "preview_gap",
]

OPEN_STATUSES = ("open", "acknowledged")
#: How long past its (weekends-only) due day a gap outside the working calendar waits: longer
#: than any public-holiday break with its weekend (the longest in ``cn.toml`` is 9 days).
CALENDAR_SLACK = timedelta(days=14)
DEFAULT_TZ = "Asia/Shanghai"


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


@dataclass(frozen=True, slots=True)
class GapContext:
    """Everything needed to plan and render one gap's alerts."""

    gap: GapState
    info: GapInfo
    phone: str
    locale: str
    tz: str


_GAP_COLUMNS = (
    "g.id, g.merchant_id, g.category, g.amount, g.currency, g.due_at, g.since, g.detected_at,"
    " g.status, g.resolution, g.resolved_at, g.evidence,"
    " m.phones, m.locale, m.timezone"
)
_FROM = " FROM gaps g LEFT JOIN merchants m ON m.merchant_id = g.merchant_id"
_CURRENCY_CODES = {"156": "CNY", "978": "EUR", "840": "USD"}


def reference_for(gap_id: int) -> str:
    """Our reference code for a gap, as the merchant quotes it (``SG-123``)."""
    return f"SG-{gap_id}"


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


def _evidence(row: Row) -> dict[str, Any]:
    """The gap's evidence object; ``{}`` when it is missing or not a JSON object."""
    try:
        evidence = json.loads(row["evidence"] or "{}")
    except ValueError:
        return {}
    return evidence if isinstance(evidence, dict) else {}


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
    currency = row["currency"] or "CNY"
    return GapContext(
        GapState(row["merchant_id"], str(gap_id), row["category"], due_at, resolved),
        GapInfo(
            str(gap_id),
            row["category"],
            int(row["amount"]),
            due_day,
            tail,
            reference_for(gap_id),
            _CURRENCY_CODES.get(currency, currency),
        ),
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


def _candidates(store: Store, policy: AlertPolicy) -> list[Row]:
    alerting = sorted(c for c, grace in policy.grace.items() if grace is not None)
    day_stages = [f"day{d}" for d in policy.schedule_days]
    if not alerting or not day_stages:
        return []
    cats = ", ".join("?" for _ in alerting)
    days = ", ".join("?" for _ in day_stages)
    statuses = ", ".join("?" for _ in OPEN_STATUSES)
    # Only "?" placeholders and our own column lists are formatted in.
    open_sql = (
        f"SELECT {_GAP_COLUMNS}{_FROM} WHERE g.status IN ({statuses}) AND g.category IN ({cats})"  # noqa: S608
        " AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.gap_id = g.id AND a.stage = ?)"
    )
    arrived_sql = (
        f"SELECT {_GAP_COLUMNS}{_FROM} WHERE g.status = 'resolved' AND g.resolution = 'matched'"  # noqa: S608
        f" AND EXISTS (SELECT 1 FROM alerts a WHERE a.gap_id = g.id AND a.stage IN ({days}))"
        " AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.gap_id = g.id AND a.stage = ?)"
    )
    rows = store.query(
        f"{open_sql} ORDER BY g.id", (*OPEN_STATUSES, *alerting, f"day{max(policy.schedule_days)}")
    )
    rows += store.query(f"{arrived_sql} ORDER BY g.id", (*day_stages, ARRIVED))
    return rows


def plan_alerts(
    store: Store,
    now: datetime,
    policy: AlertPolicy | None = None,
    *,
    alert_store: CollectorAlertStore | None = None,
) -> PlanReport:
    """Queue every alert stage that is due now; safe to repeat (one row per stage, ever).

    :param now: aware UTC time (passed in so tests and replays control the clock)
    """
    policy = policy or AlertPolicy()
    alerts = alert_store or CollectorAlertStore(store)
    report = PlanReport()
    for row in _candidates(store, policy):
        report.considered += 1
        gap_id = int(row["id"])
        held = calendar_hold(row, now)
        if held is not None:
            report.held[gap_id] = held
            continue
        try:
            ctx = _context(store, row)
            alert_id = plan_alert(
                alerts, ctx.gap, ctx.info, ctx.phone, now, policy, tz=ctx.tz, locale=ctx.locale
            )
        except (PlannerError, TemplateError) as exc:
            report.skipped[gap_id] = str(exc)
            continue
        if alert_id is not None:
            report.queued.append(alert_id)
    return report


def preview_gap(
    store: Store,
    gap_id: int,
    locale: str | None = None,
    now: datetime | None = None,
    policy: AlertPolicy | None = None,
) -> dict[str, Any]:
    """What ``alerts preview --gap ID`` shows: the text as it would be sent, and its parts.

    :raises PlannerError: no such gap, no phone or no card on file
    :raises TemplateError: the gap cannot be rendered (unknown category, amount too large)
    """
    row = _gap_row(store, gap_id)
    ctx = _context(store, row, locale)
    now = now or datetime.now(UTC)
    policy = policy or AlertPolicy()
    done = CollectorAlertStore(store).stages_for(ctx.gap.merchant_id, ctx.gap.gap_id)
    kind: Kind = "arrived" if ctx.gap.resolved_at is not None else "gap"
    shown = preview(ctx.info, ctx.locale, kind)
    return {
        "gap_id": gap_id,
        "merchant_id": ctx.gap.merchant_id,
        "category": ctx.gap.category,
        "locale": ctx.locale,
        "to": "*" * max(0, len(ctx.phone) - 4) + ctx.phone[-4:],
        "reference": ctx.info.reference,
        "kind": kind,
        "stages_queued": sorted(done),
        "stage_due_now": stage_due(ctx.gap, now, policy, done),
        "held": calendar_hold(row, now),
        **shown,
    }
