"""Expected credits: how much each batch should bring, to which account, by which day.

Theory of operation (DESIGN.md §5 Reconciliation):

* Business date: the batch's close time in the merchant's timezone; a batch closed *after* the
  cut-off (strictly later than the cut-off wall-clock time) belongs to the next calendar day.
* Due date: ``T+1`` is the first working day strictly after the business date; ``D0`` is the
  business date itself when it is a working day, else the next working day.
* Payout time: local midnight at the start of the due date; the settlement account in force at
  that instant is where the money should land. Only ``active`` (or since ``retired``) entries
  are ever in force: a change that is requested, under review or rejected leaves the previous
  account in force.
* Amount: the terminal's net amount minus the fees of each bucket by the merchant's schedule
  (see :class:`~collector.reconcile.model.FeeSchedule` for rounding and refunds).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from collector.reconcile.calendar import WorkingCalendar
from collector.reconcile.model import (
    AccountChange,
    Batch,
    ExpectedCredit,
    Merchant,
    ReconcileConfig,
)

_ONE_DAY = timedelta(days=1)
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


def due_date(merchant: Merchant, business_day: date, calendar: WorkingCalendar) -> date:
    """The day the credit is due by the merchant's settlement cycle."""
    if merchant.cycle == "D0":
        return calendar.on_or_after(business_day)
    return calendar.next_working_day(business_day)


def payout_instant(merchant: Merchant, due: date) -> datetime:
    """Local midnight at the start of ``due`` (the instant the account in force is read at)."""
    return datetime(due.year, due.month, due.day, tzinfo=ZoneInfo(merchant.timezone))


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
        self._calendar = calendar
        self._config = config
        self._tz = ZoneInfo(merchant.timezone)
        self._cutoff = merchant.cutoff
        self._fee = merchant.fee_schedule.bucket_fee
        self._due: dict[date, date] = {}
        self._by_due: dict[date, _Accounts] = {}
        self._fields: dict[date, tuple[Any, ...]] = {}
        self._by_interval: dict[int, _Accounts] = {}
        self._edges: list[datetime] | None = None  # computed on first use
        self._after_edges: date | None = None

    def accounts_for(self, due: date) -> _Accounts:
        """Accounts (in force, pending change, previous, candidates) at the payout of ``due``."""
        found = self._by_due.get(due)
        if found is None:
            if self._edges is None:
                self._edges = _change_points(self._history, self._config)
                # Local date of the last change point: later due dates are in the last interval.
                if self._edges:
                    self._after_edges = self._edges[-1].astimezone(self._tz).date()
            if self._after_edges is not None and due > self._after_edges:
                interval = len(self._edges)  # past every change point: no datetime needed
                at = None
            else:
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
        local = batch.closed_at.astimezone(self._tz)
        business = local.date()
        if local.time() > self._cutoff:  # local.time() is naive, like the cut-off
            business += _ONE_DAY
        due = self._due.get(business)
        if due is None:
            due = self._due[business] = due_date(self._merchant, business, self._calendar)
        fees = 0
        for bucket in batch.buckets:
            fees += self._fee(bucket)
        fields = self._fields.get(due)
        if fields is None:
            fields = self._fields[due] = _account_fields(self.accounts_for(due))
        return ExpectedCredit(
            batch.key,
            batch.merchant_id,
            batch.terminal_id,
            batch.batch_no,
            batch.net_amount,
            fees,
            batch.net_amount - fees,
            batch.currency,
            business,
            due,
            fields[0],
            fields[1],
            fields[2],
            fields[3],
            fields[4],
            batch.reference,
            fields[5],
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
