"""Expected credits: how much each batch should bring, to which account, by which day.

Theory of operation (docs/architecture.md §5 Reconciliation):

* Business date: the batch's close time in the merchant's timezone; a batch closed *after* the
  cut-off (strictly later than the cut-off wall-clock time) belongs to the next calendar day.
* Due date by cycle (:func:`cycle_due`): T counts working days, D calendar days. ``T+1`` is the
  first working day strictly after the business date; ``T0`` the business date when it is a
  working day, else the next one; ``D+1`` the next calendar day; ``D0`` and ``S0`` (秒到, paid
  per sale) the business date itself, holidays included. ``D0``, ``S0`` and ``T0`` payouts over
  the acquirer's same-day limit fall back to T+1 (D0 额度不足): that day is ``fallback_due``.
* Payout time: local midnight at the start of the due date; the settlement account in force at
  that instant is where the money should land. Only ``active`` (or since ``retired``) entries
  are ever in force: a change that is requested, under review or rejected leaves the previous
  account in force.
* Amount: the terminal's net amount minus the fees of each bucket by the merchant's schedule,
  charged per sale (:mod:`collector.reconcile.fees`): ``fees`` is the most likely fee and
  ``fees_low``..``fees_high`` the interval bucket totals allow; plus the per-payout surcharge.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from settleguard.collector.reconcile.calendar import WorkingCalendar
from settleguard.collector.reconcile.fees import fee_interval
from settleguard.collector.reconcile.model import (
    AccountChange,
    Batch,
    ExpectedCredit,
    Merchant,
    ReconcileConfig,
)

_ONE_DAY = timedelta(days=1)
_DAY_US = 86_400_000_000
_PENDING = ("requested", "under_review")
_IN_FORCE = ("active", "retired")


def account_in_force(history: Sequence[AccountChange], at: datetime) -> AccountChange | None:
    """The settlement account in force at ``at``: the latest active/retired entry already effective.

    :param history: the merchant's account changes, any order
    :param at: an aware datetime
    """
    best: AccountChange | None = None
    for change in history:
        effective = change.effective_at
        if change.status not in _IN_FORCE or effective is None or effective > at:
            continue
        if best is None or (effective, change.change_id) > (best.effective_at, best.change_id):
            best = change
    return best


def pending_change(
    history: Sequence[AccountChange], at: datetime, *, rejected_days: int = 30
) -> AccountChange | None:
    """The latest change the merchant asked for that was not in force at ``at``.

    That is a change requested before ``at`` which at ``at`` was still requested or under
    review, became effective only later, or was rejected less than ``rejected_days`` earlier.
    """
    best: AccountChange | None = None
    for change in history:
        if change.requested_at > at or not _was_pending(change, at, rejected_days):
            continue
        if best is None or (change.requested_at, change.change_id) > (
            best.requested_at,
            best.change_id,
        ):
            best = change
    return best


def _was_pending(change: AccountChange, at: datetime, rejected_days: int) -> bool:
    if change.status in _PENDING:
        return True
    if change.status in _IN_FORCE:
        return change.effective_at is not None and change.effective_at > at
    decided = change.status_changed_at
    if decided is None or decided > at:  # rejected, but at ``at`` still under review
        return True
    return at - decided <= timedelta(days=rejected_days)


def previous_account(
    history: Sequence[AccountChange], current: AccountChange, at: datetime, *, days: int = 30
) -> AccountChange | None:
    """The account ``current`` replaced, when the switch happened less than ``days`` before ``at``.

    Acquirers keep paying the old card for a while after a switch; a credit there is
    ``PAID_TO_OLD_ACCOUNT``, not an unexplained credit.
    """
    switched = current.effective_at
    if switched is None or at - switched > timedelta(days=days):
        return None
    earlier = [
        c
        for c in history
        if c.status in _IN_FORCE
        and c.effective_at is not None
        and c.effective_at < switched
        and c.account_key != current.account_key
    ]
    if not earlier:
        return None
    return max(earlier, key=lambda c: (c.effective_at, c.change_id))


def business_date(merchant: Merchant, closed_at: datetime) -> date:
    """The business day a batch belongs to (cut-off applied in the merchant's timezone)."""
    local = closed_at.astimezone(ZoneInfo(merchant.timezone))
    day = local.date()
    if local.time().replace(tzinfo=None) > merchant.cutoff:
        day += _ONE_DAY
    return day


def cycle_due(
    cycle: str, business_day: date, calendar: WorkingCalendar
) -> tuple[date, date | None]:
    """``(due date, fallback due date or None)`` of a business day under ``cycle``.

    :raises ValueError: for a cycle that is not one of :data:`~collector.reconcile.model.CYCLES`
    """
    if cycle == "T+1":
        return calendar.next_working_day(business_day), None
    if cycle == "D+1":
        return business_day + _ONE_DAY, None
    if cycle == "T0":
        due = calendar.on_or_after(business_day)
    elif cycle in ("D0", "S0"):
        due = business_day
    else:
        raise ValueError(f"unknown settlement cycle {cycle!r}")
    fallback = calendar.next_working_day(business_day)
    return due, (fallback if fallback != due else None)


def due_date(merchant: Merchant, business_day: date, calendar: WorkingCalendar) -> date:
    """The day the credit is due by the merchant's settlement cycle."""
    return cycle_due(merchant.cycle, business_day, calendar)[0]


def payout_instant(merchant: Merchant, due: date) -> datetime:
    """Local midnight at the start of ``due`` (the instant the account in force is read at)."""
    return datetime(due.year, due.month, due.day, tzinfo=ZoneInfo(merchant.timezone))


class LocalDates:
    """Business and due dates for one (timezone, cut-off, cycle) on one calendar, memoised.

    Equivalent to :func:`business_date` then :func:`due_date`, but without converting each close
    time: for a UTC day on which the zone's offset does not change, the local time is the UTC
    time plus that offset, so the business day is plain integer arithmetic on the UTC fields.
    The offset is looked up once per UTC day (by probing the zone every hour of it; tzdata has
    no zone that changes its offset twice within an hour). A day on which the offset changes
    (a DST switch), or a close time not in UTC, takes the ``astimezone`` path. One instance is
    shared by every merchant with the same settings (see :func:`local_dates`).
    """

    __slots__ = ("_calendar", "_cutoff", "_cutoff_us", "_cycle", "_dates", "_offsets", "_tz")

    def __init__(self, timezone: str, cutoff: time, cycle: str, calendar: WorkingCalendar) -> None:
        self._tz = ZoneInfo(timezone)
        self._cutoff = cutoff
        self._cutoff_us = _microseconds(cutoff)
        self._cycle = cycle
        self._calendar = calendar
        #: UTC day ordinal -> the zone's offset that whole day in microseconds, None if it changes
        self._offsets: dict[int, int | None] = {}
        #: business day ordinal -> (business date, due date, fallback due date)
        self._dates: dict[int, tuple[date, date, date | None]] = {}

    def dates(self, closed_at: datetime) -> tuple[date, date, date | None]:
        """``(business date, due date, fallback due date)`` of a batch closed at ``closed_at``."""
        ordinal = None
        if closed_at.tzinfo is UTC:
            day = closed_at.toordinal()
            offsets = self._offsets
            offset = offsets[day] if day in offsets else self._offset_of(day)
            if offset is not None:
                local = _microseconds(closed_at) + offset
                shift, time_of_day = divmod(local, _DAY_US)
                # strictly after the cut-off belongs to the next day (bool counts as 0 or 1)
                ordinal = day + shift + (time_of_day > self._cutoff_us)
        if ordinal is None:
            local_dt = closed_at.astimezone(self._tz)
            ordinal = local_dt.toordinal() + (local_dt.time() > self._cutoff)
        found = self._dates.get(ordinal)
        if found is None:
            business = date.fromordinal(ordinal)
            due, fallback = cycle_due(self._cycle, business, self._calendar)
            found = self._dates[ordinal] = (business, due, fallback)
        return found

    def _offset_of(self, day: int) -> int | None:
        start = datetime.fromordinal(day).replace(tzinfo=UTC)
        probes = [start + timedelta(hours=hour) for hour in range(24)]
        probes.append(start + _ONE_DAY - timedelta(microseconds=1))
        seen = {probe.astimezone(self._tz).utcoffset() for probe in probes}
        offset = None
        if len(seen) == 1:
            only = seen.pop()
            offset = None if only is None else only // timedelta(microseconds=1)
        self._offsets[day] = offset
        return offset


def local_dates(merchant: Merchant, calendar: WorkingCalendar) -> LocalDates:
    """The shared :class:`LocalDates` for ``merchant``'s timezone, cut-off and cycle."""
    key = ("local_dates", merchant.timezone, merchant.cutoff, merchant.cycle)
    found: LocalDates | None = calendar.memo.get(key)
    if found is None:
        found = calendar.memo[key] = LocalDates(
            merchant.timezone, merchant.cutoff, merchant.cycle, calendar
        )
    return found


def _microseconds(value: datetime | time) -> int:
    """Microseconds since midnight of the wall-clock fields of ``value``."""
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond


#: Builds an ExpectedCredit from a complete tuple of its fields without the generated
#: ``__new__`` (which re-applies the defaults): about half the cost on the hot path.
_new_expected = partial(tuple.__new__, ExpectedCredit)


class ExpectedBuilder:
    """Computes :class:`ExpectedCredit` for one merchant, memoising what repeats.

    Which accounts apply can only change at a few instants of the history (an account taking
    effect, a change requested or decided, a window running out), so the answer is computed
    once per interval between those instants rather than once per batch.
    """

    def __init__(
        self,
        merchant: Merchant,
        history: Sequence[AccountChange],
        calendar: WorkingCalendar,
        config: ReconcileConfig,
    ) -> None:
        self._merchant = merchant
        self._history = tuple(history)
        self._config = config
        self._tz = ZoneInfo(merchant.timezone)
        self._dates = local_dates(merchant, calendar).dates
        schedule = merchant.fee_schedule
        self._rule_for = schedule.rule_for
        self._rules: dict[str, tuple[int, int | None, int]] = {}  # card type -> rate, cap, fixed
        self._refund_fee_returned = schedule.refund_fee_returned
        self._per_payout = schedule.per_payout
        self._by_due: dict[date, _Accounts] = {}
        self._fields: dict[date, tuple[Any, ...]] = {}
        self._by_interval: dict[int, _Accounts] = {}
        self._edges: list[datetime] | None = None  # computed on first use
        self._after_edges: date | None = None
        self._final_fields: tuple[Any, ...] | None = None  # for due dates after _after_edges
        if len(self._history) == 1:
            only = self._history[0]
            effective = only.effective_at
            if only.status in _IN_FORCE and effective is not None:
                # The usual history: one account, in force since ``effective``. At any payout
                # instant from then on it is in force (account_in_force), it is not pending
                # (_was_pending: in force and effective), and nothing came before it
                # (previous_account). A due date after effective's local date has its payout
                # (local midnight) after ``effective``, so all such due dates share these
                # fields; earlier ones still take the general route in accounts_for.
                self._after_edges = effective.astimezone(self._tz).date()
                key = only.account_key
                self._final_fields = (key, only.account_masked, None, None, None, (key,))

    def accounts_for(self, due: date) -> _Accounts:
        """Accounts (in force, pending change, previous, candidates) at the payout of ``due``."""
        found = self._by_due.get(due)
        if found is None:
            if self._after_edges is None:
                # Local date of the last change point: later due dates are in the last interval
                # (usually every due date, so the sorted list of points is rarely needed).
                last = _last_change_point(self._history, self._config)
                self._after_edges = date.min if last is None else last.astimezone(self._tz).date()
            if due > self._after_edges:
                interval = -1  # past every change point: no datetime needed
                at = None
            else:
                if self._edges is None:
                    self._edges = _change_points(self._history, self._config)
                at = payout_instant(self._merchant, due)
                interval = bisect.bisect_right(self._edges, at)
            found = self._by_interval.get(interval)
            if found is None:
                at = at or payout_instant(self._merchant, due)
                found = self._by_interval[interval] = self._resolve(at)
            self._by_due[due] = found
        return found

    def _resolve(self, at: datetime) -> _Accounts:
        config = self._config
        current = account_in_force(self._history, at)
        pending = pending_change(self._history, at, rejected_days=config.rejected_change_days)
        if pending is not None and current is not None:
            if pending.account_key == current.account_key:
                pending = None
        previous = None
        if current is not None:
            previous = previous_account(
                self._history, current, at, days=config.previous_account_days
            )
        keys = (
            current.account_key if current else None,
            pending.account_key if pending else None,
            previous.account_key if previous else None,
        )
        candidates = tuple(dict.fromkeys(k for k in keys if k is not None))
        return _Accounts(current, pending, previous, candidates)

    def build(self, batch: Batch) -> ExpectedCredit:
        """The expected credit for ``batch``."""
        business, due, fallback = self._dates(batch.closed_at)
        fees = low = high = 0
        charged = False
        for bucket in batch.buckets:
            base = bucket.sale_amount - bucket.void_amount
            if self._refund_fee_returned:
                base -= bucket.refund_amount
            if base > 0:
                rule = self._rules.get(bucket.card_type)
                if rule is None:
                    found = self._rule_for(bucket.card_type)
                    rule = self._rules[bucket.card_type] = (found.rate_bp, found.cap, found.fixed)
                point, lo, hi = fee_interval(
                    base, bucket.sale_count - bucket.void_count, *rule, bucket.sales
                )
                fees += point
                low += lo
                high += hi
                charged = True
        if charged and self._per_payout:
            fees += self._per_payout
            low += self._per_payout
            high += self._per_payout
        if self._after_edges is None:
            self.accounts_for(due)  # sets _after_edges
        if due > self._after_edges:  # type: ignore[operator]
            # Every due date after the last change point of the history gets the same accounts
            # (see accounts_for), so one tuple serves them all without a per-date lookup.
            fields = self._final_fields
            if fields is None:
                fields = self._final_fields = _account_fields(self.accounts_for(due))
        else:
            fields = self._fields.get(due)
            if fields is None:
                fields = self._fields[due] = _account_fields(self.accounts_for(due))
        net = batch.net_amount
        return _new_expected(
            (
                batch.key,
                batch.merchant_id,
                batch.terminal_id,
                batch.batch_no,
                net,
                fees,
                net - fees,
                batch.currency,
                business,
                due,
                *fields[:5],
                batch.reference,
                fields[5],
                low,
                high,
                fallback,
            )
        )


def _account_fields(accounts: _Accounts) -> tuple[Any, ...]:
    """The ExpectedCredit fields that depend only on the accounts: account .. previous key."""
    current, pending, previous, candidates = accounts
    return (
        current.account_key if current else None,
        current.account_masked if current else None,
        pending.change_id if pending else None,
        pending.account_key if pending else None,
        previous.account_key if previous else None,
        candidates,
    )


class _Accounts(NamedTuple):
    current: AccountChange | None
    pending: AccountChange | None
    previous: AccountChange | None
    candidates: tuple[str, ...]


def _last_change_point(
    history: Sequence[AccountChange], config: ReconcileConfig
) -> datetime | None:
    """The latest of :func:`_change_points` (None for an empty history), without sorting."""
    last: datetime | None = None
    rejected = timedelta(days=config.rejected_change_days, microseconds=1)
    previous = timedelta(days=config.previous_account_days, microseconds=1)
    for change in history:
        point = change.requested_at
        if change.effective_at is not None:
            point = max(point, change.effective_at, change.effective_at + previous)
        if change.status_changed_at is not None:
            point = max(point, change.status_changed_at, change.status_changed_at + rejected)
        if last is None or point > last:
            last = point
    return last


def _change_points(history: Sequence[AccountChange], config: ReconcileConfig) -> list[datetime]:
    """Instants at which :meth:`ExpectedBuilder._resolve` may give a different answer."""
    points: set[datetime] = set()
    rejected = timedelta(days=config.rejected_change_days)
    previous = timedelta(days=config.previous_account_days)
    tick = timedelta(microseconds=1)  # windows are inclusive: the answer changes just after
    for change in history:
        points.add(change.requested_at)
        if change.effective_at is not None:
            points.update((change.effective_at, change.effective_at + previous + tick))
        if change.status_changed_at is not None:
            points.update((change.status_changed_at, change.status_changed_at + rejected + tick))
    return sorted(points)


def expected_credits(
    merchant: Merchant,
    history: Sequence[AccountChange],
    batches: Sequence[Batch],
    calendar: WorkingCalendar,
    config: ReconcileConfig | None = None,
) -> list[ExpectedCredit]:
    """Expected credits for ``batches`` of ``merchant``, in the order given.

    :param history: the merchant's settlement-account history
    :param calendar: working-day calendar for due dates
    """
    builder = ExpectedBuilder(merchant, history, calendar, config or ReconcileConfig())
    return [builder.build(batch) for batch in batches]
