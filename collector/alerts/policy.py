"""Alert policy: which gaps alert and when, the alert state machine, quiet hours, limits.

Plain functions over plain dataclasses; no database, no clock (``now`` is passed in, always an
aware UTC datetime).

Theory of operation (DESIGN.md §5 Alerts): a gap alerts once it is due and still unresolved
after a grace period that depends on its category (``NOT_DUE_YET``, ``STATEMENT_GAP`` and
``BATCH_NOT_UPLOADED`` never alert the merchant by default: the first is not late, the others are
holes in our data, not money known to be at risk -- the acquirer's host captured the sales). While it stays open
it re-alerts on schedule days 1, 3 and 7 counted from the first moment it became alertable; if
the dispatcher was down for days only the latest due stage is sent. When a gap that was alerted
resolves, one short "money arrived" stage follows. Each (merchant, gap, stage) is one alert row,
unique by :func:`dedupe_key`, moving through :data:`TRANSITIONS`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

ARRIVED = "arrived"


class AlertState(enum.Enum):
    """Life of one alert row."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"


# QUEUED -> SENDING is persisted before the gateway is called. SENDING -> QUEUED only when the
# gateway proves nothing left (GatewayUnavailable). SENT -> FAILED/EXPIRED/DELIVERED by receipt;
# a delivery receipt can beat the submit response, so SENDING -> DELIVERED etc. is not allowed:
# receipts are kept and applied once the row is SENT.
TRANSITIONS: dict[AlertState, frozenset[AlertState]] = {
    AlertState.QUEUED: frozenset({AlertState.SENDING, AlertState.EXPIRED}),
    AlertState.SENDING: frozenset({AlertState.SENT, AlertState.FAILED, AlertState.QUEUED}),
    AlertState.SENT: frozenset({AlertState.DELIVERED, AlertState.FAILED, AlertState.EXPIRED}),
    AlertState.DELIVERED: frozenset(),
    AlertState.FAILED: frozenset(),
    AlertState.EXPIRED: frozenset(),
}


class InvalidTransition(ValueError):
    """An alert was asked to move along an edge the state machine does not have."""


def transition(current: AlertState, new: AlertState) -> AlertState:
    """Return *new* if ``current -> new`` is allowed.

    :raises InvalidTransition: otherwise
    """
    if new not in TRANSITIONS[current]:
        raise InvalidTransition(f"alert cannot go from {current.value} to {new.value}")
    return new


DEFAULT_GRACE: dict[str, timedelta | None] = {
    "NOT_DUE_YET": None,
    "STATEMENT_GAP": None,
    "PAID_TO_OLD_ACCOUNT": timedelta(hours=4),
    "CHANGE_PENDING": timedelta(days=1),
    "RETURNED": timedelta(hours=4),
    "HELD": timedelta(days=1),
    "MISSING": timedelta(hours=12),
    "SHORT_PAID": timedelta(days=1),
    "AGGREGATED_UNRESOLVED": timedelta(days=2),
    "DUPLICATE_CREDIT": timedelta(days=1),
    "BATCH_NOT_UPLOADED": None,
}


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Tunable knobs; the defaults stay below the common 50-per-day notification cap."""

    grace: dict[str, timedelta | None] = field(default_factory=lambda: dict(DEFAULT_GRACE))
    schedule_days: tuple[int, ...] = (1, 3, 7)
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    per_number_daily: int = 10
    per_merchant_daily: int = 30
    receipt_timeout: timedelta = timedelta(hours=6)
    retry_after: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class GapState:
    """What the policy needs to know about one gap."""

    merchant_id: str
    gap_id: str
    category: str
    due_at: datetime
    resolved_at: datetime | None = None


def dedupe_key(merchant_id: str, gap_id: str, stage: str) -> str:
    """The unique key of one alert: one SMS per (merchant, gap, stage), ever."""
    for part in (merchant_id, gap_id, stage):
        if "|" in part:
            raise ValueError(f"'|' is not allowed in alert key parts: {part!r}")
    return f"{merchant_id}|{gap_id}|{stage}"


def stage_due(gap: GapState, now: datetime, policy: AlertPolicy, done: Iterable[str]) -> str | None:
    """The stage to enqueue for *gap* now, if any.

    :param done: stages already enqueued for this gap (any state)
    :returns: ``"day1"``/``"day3"``/… , ``"arrived"``, or None
    """
    done = set(done)
    if gap.resolved_at is not None:
        alerted = any(stage.startswith("day") for stage in done)
        return ARRIVED if alerted and ARRIVED not in done else None
    grace = policy.grace.get(gap.category)
    if grace is None:
        return None
    alertable_from = gap.due_at + grace
    due = [d for d in policy.schedule_days if now >= alertable_from + timedelta(days=d - 1)]
    if not due:
        return None
    latest = f"day{max(due)}"
    return None if latest in done else latest


def _local(now: datetime, tz: str) -> datetime:
    return now.astimezone(ZoneInfo(tz))


def in_quiet_hours(now: datetime, tz: str, policy: AlertPolicy) -> bool:
    """True if *now* falls in the merchant's quiet hours (which may span midnight)."""
    t = _local(now, tz).time()
    start, end = policy.quiet_start, policy.quiet_end
    return (start <= t or t < end) if start > end else (start <= t < end)


def next_allowed(now: datetime, tz: str, policy: AlertPolicy) -> datetime:
    """*now* itself, or the end of the quiet period it falls in (as UTC)."""
    if not in_quiet_hours(now, tz, policy):
        return now
    local = _local(now, tz)
    end = local.replace(
        hour=policy.quiet_end.hour, minute=policy.quiet_end.minute, second=0, microsecond=0
    )
    if end <= local:
        end = (local + timedelta(days=1)).replace(
            hour=policy.quiet_end.hour, minute=policy.quiet_end.minute, second=0, microsecond=0
        )
    return end.astimezone(UTC)


def local_day_start(now: datetime, tz: str) -> datetime:
    """Start of the merchant's local day containing *now*, as UTC (limits count per day)."""
    local = _local(now, tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def limit_deferral(
    now: datetime, tz: str, policy: AlertPolicy, sent_to_number: int, sent_to_merchant: int
) -> datetime | None:
    """When to retry if a daily limit is reached (the next local day, after quiet hours).

    :param sent_to_number: alerts sent to this number since :func:`local_day_start`
    :param sent_to_merchant: alerts sent for this merchant since then
    :returns: None if sending now is within the limits
    """
    if sent_to_number < policy.per_number_daily and sent_to_merchant < policy.per_merchant_daily:
        return None
    tomorrow = _local(local_day_start(now, tz), tz) + timedelta(days=1)
    return next_allowed(tomorrow.astimezone(UTC), tz, policy)


def escalation_reason(
    state: AlertState, sent_at: datetime | None, now: datetime, policy: AlertPolicy
) -> str | None:
    """Why an operator must look at this alert, or None.

    ``failed``/``expired`` always escalate; ``sent`` escalates when no final receipt came
    within ``receipt_timeout``. (``sending`` found at start-up is decided by the dispatcher.)
    """
    if state is AlertState.FAILED:
        return "delivery failed"
    if state is AlertState.EXPIRED:
        return "delivery expired"
    if state is AlertState.SENT and sent_at is not None and now - sent_at >= policy.receipt_timeout:
        return f"no delivery receipt within {policy.receipt_timeout}"
    return None
