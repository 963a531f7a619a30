"""The outside world of the demo: an acquirer that pays T+1 with fees, and two banks.

Given the batches the agents really closed and the settlement-card timeline, it decides what
the acquirer pays to which card on which day, then applies each shop's fault: paying the old
card, returning, holding, losing or short-paying a payout, booking one twice, or paying several
batches as one credit without a reference. What it writes is what a real acquirer and bank
would send: a payout file and statements (see :mod:`settleguard.demo.files`).

It also counts what it injected, per gap category, so the demo can compare that with what
the reconciliation finds on its own.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from collector.reconcile.calendar import WorkingCalendar
from collector.reconcile.model import Bucket as FeeBucket
from collector.reconcile.model import FeeRule, FeeSchedule
from protocol.records import BatchSummary
from settleguard.demo.files import BankCredit, PayoutLine
from settleguard.demo.world import TZ, Shop

SHORT_PAID_RATE_BP = 78  # the replacement device's contract, higher than the merchant's 60


@dataclass(frozen=True, slots=True)
class CardTimeline:
    """When the shop asked for its new card, and what became of the request."""

    requested_at: datetime
    decision: str  # "under_review" | "rejected" | "active"
    decided_at: datetime | None = None


@dataclass
class BankOutcome:
    """Everything the outside world produced."""

    payouts: list[PayoutLine] = field(default_factory=list)
    credits: dict[str, list[BankCredit]] = field(default_factory=lambda: defaultdict(list))
    injected: Counter[str] = field(default_factory=Counter)
    #: (merchant_id, category) -> number of batches the fault affects
    expected: Counter[tuple[str, str]] = field(default_factory=Counter)
    aggregated_payouts: int = 0


def net_of_fees(batch: BatchSummary, rate_bp: int) -> tuple[int, int]:
    """(gross, fees) of a batch at ``rate_bp`` on every card type."""
    schedule = FeeSchedule(rules=(), default=FeeRule("*", rate_bp))
    gross = batch.net_amount
    fees = sum(
        schedule.bucket_fee(FeeBucket(b.name, b.sale_amount, b.refund_amount, b.void_amount))
        for b in batch.buckets
    )
    return gross, fees


def business_day(batch: BatchSummary) -> date:
    """The batch's local business date (all demo closes are before the cut-off)."""
    closed = datetime.fromisoformat(batch.closed_at.replace("Z", "+00:00"))
    return closed.astimezone(TZ).date()


def settle(
    shops: list[Shop],
    batches: dict[str, list[BatchSummary]],
    timelines: dict[str, CardTimeline],
    calendar: WorkingCalendar,
    today: date,
) -> BankOutcome:
    """Pay every batch due by ``today`` as the acquirer and the banks would, faults included.

    :param batches: per merchant, every batch the terminals closed (uploaded or not)
    :param timelines: per merchant with a card change, its request and decision
    """
    out = BankOutcome()
    for shop in shops:
        due_groups: dict[date, list[BatchSummary]] = defaultdict(list)
        for batch in batches.get(shop.merchant_id, []):
            due = calendar.next_working_day(business_day(batch))
            if due > today:
                out.injected["NOT_DUE_YET"] += 1
                out.expected[(shop.merchant_id, "NOT_DUE_YET")] += 1
                continue
            due_groups[due].append(batch)
            fired: set[str] = set()  # one-off faults (missing, duplicate) that already happened
        for due in sorted(due_groups):
            group = sorted(due_groups[due], key=lambda b: (b.terminal_id, b.batch_no))
            _pay(out, shop, due, group, timelines.get(shop.merchant_id), fired, today)
    return out


def _payout_instant(due: date) -> datetime:
    return datetime.combine(due, datetime.min.time(), TZ)


def _pay(
    out: BankOutcome,
    shop: Shop,
    due: date,
    group: list[BatchSummary],
    timeline: CardTimeline | None,
    fired: set[str],
    today: date,
) -> None:
    """Pay one merchant's batches due on one day, applying the shop's fault."""
    fault = shop.fault
    instant = _payout_instant(due)
    after_request = timeline is not None and timeline.requested_at <= instant
    new_card_active = (
        timeline is not None
        and timeline.decision == "active"
        and timeline.decided_at is not None
        and timeline.decided_at <= instant
    )
    rate = (
        SHORT_PAID_RATE_BP if fault == "short_paid" and _from_fault_day(shop, due) else shop.rate_bp
    )
    gross = fees = 0
    for batch in group:
        batch_gross, batch_fees = net_of_fees(batch, rate)
        gross += batch_gross
        fees += batch_fees
    net = gross - fees
    reference = f"STL{due:%Y%m%d}{shop.merchant_id}"
    refs = [f"{b.terminal_id}#{b.batch_no}" for b in group]
    account = shop.new_account if new_card_active else shop.account
    status, reason = "已付款", ""
    pay = True
    count = len(group)
    category: str | None = None
    if fault == "change_pending_unpaid" and after_request:
        # The acquirer processes nothing while it reviews: no payout line, no credit. On the
        # due date itself the money may still come, so that day's batches are not due yet.
        category = "NOT_DUE_YET" if due == today else "CHANGE_PENDING"
        pay, status = False, None
    elif after_request and not new_card_active:
        # Any change not (yet) in force: the acquirer rightly pays the old card, and the
        # merchant, watching the new one, sees nothing.
        category = "PAID_TO_OLD_ACCOUNT"
    elif fault == "returned_name_mismatch" and new_card_active:
        category, pay, status, reason = "RETURNED", False, "退票", "户名不符"
    elif fault == "held" and _from_fault_day(shop, due):
        category, pay, status, reason = "HELD", False, "暂缓出款", "风控审核"
    elif fault == "missing" and _from_fault_day(shop, due) and "missing" not in fired:
        fired.add("missing")
        category, pay = "MISSING", False
    elif fault == "short_paid" and _from_fault_day(shop, due):
        category = "SHORT_PAID"
    if category is not None:
        out.injected[category] += count
        out.expected[(shop.merchant_id, category)] += count
    if status is not None:
        out.payouts.append(
            PayoutLine(
                merchant_id=shop.merchant_id,
                merchant_name=shop.name,
                settlement_date=due,
                gross=gross,
                fees=fees,
                net=net,
                target_account="****" + account[-4:],
                status=status,
                reason=reason,
                reference=reference,
                batch_refs=refs,
            )
        )
    if not pay or net <= 0:
        return
    aggregated = fault == "aggregated"
    if aggregated and count > 1:
        out.aggregated_payouts += 1
        out.injected["aggregated_credit"] += 1
    credit = BankCredit(
        booking_date=due,
        amount=net,
        reference=f"B{due:%Y%m%d}{shop.merchant_id[1:]}{len(out.credits[account]):03d}",
        # A bank that strips the acquirer's reference leaves only "POS结算" (合并到账 shops).
        remittance="POS结算" if aggregated else f"POS结算 {reference}",
    )
    out.credits[account].append(credit)
    if fault == "duplicate_credit" and _from_fault_day(shop, due) and "dup" not in fired:
        fired.add("dup")
        twin = BankCredit(due, net, credit.reference + "D", credit.remittance)
        out.credits[account].append(twin)
        out.injected["DUPLICATE_CREDIT"] += 1
        out.expected[(shop.merchant_id, "DUPLICATE_CREDIT")] += 1


def _from_fault_day(shop: Shop, due: date) -> bool:
    """Payouts of batches from the fault's trading day on (they fall due after it)."""
    return shop.fault_date is not None and due > shop.fault_date
