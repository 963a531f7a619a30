"""The outside world of the demo: an acquirer that pays T+1 with fees, and two banks.

Given the batches the agents really closed and the settlement-card timeline, it decides what
the acquirer pays to which card on which day, then applies each shop's fault: paying the old
card, returning, holding, losing or short-paying a payout, booking one twice, or paying several
batches as one credit without a reference. What it writes is what a real acquirer and bank
would send: a payout file and statements (see :mod:`settleguard.demo.files`).

It also counts what it injected, per gap category, so the demo can compare that with what
the reconciliation finds on its own.

Beside the faults it lays traps that must *not* become gaps, or must be explained right
(:func:`trap_findings` counts how the reconciliation did):

* the clean control shop settles D0 (same calendar day) under a contract whose debit-card fee is
  capped per sale; the acquirer charges each sale, so a batch with several large debit sales
  costs several caps (no false SHORT_PAID);
* one of its D0 payouts runs out of same-day quota (D0 额度不足) and is paid on T+1 instead (no
  false gap), and its last one is moved to T+1 and not paid yet (NOT_DUE_YET, not RETURNED);
* the missing-payout shop receives, on the day the payout should have come, a personal transfer
  of exactly that amount (not a match: MISSING, with the transfer "not from the acquirer");
* the name-mismatch return after a card change carries its reason (name_mismatch).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from settleguard.collector.reconcile.calendar import WorkingCalendar
from settleguard.collector.reconcile.fees import sale_fee
from settleguard.collector.reconcile.model import Bucket as FeeBucket
from settleguard.collector.reconcile.model import FeeRule, FeeSchedule
from settleguard.demo.files import BankCredit, PayoutLine
from settleguard.demo.world import TZ, Shop
from settleguard.protocol.records import BatchSummary

SHORT_PAID_RATE_BP = 78  # the replacement device's contract, higher than the merchant's 60
#: The control shop's debit-card cap per sale, in fen: small, so the demo's small sales reach it
DEBIT_CAP = 100
#: Debit-card buckets as the demo terminals name them (ZVT girocard, POSLink and China names)
DEBIT_BUCKETS = ("domestic_debit", "debit", "girocard")
ACQUIRER = "chinaums"  # its profile names the payer on every payout: 银联商务股份有限公司
PERSONAL_PAYER = "张小红"
PERSONAL_ACCOUNT = "6222021234567894"
QUOTA_REASON = "D0额度不足，转T+1"
SalesOf = Callable[[Shop, date], list[tuple[str, int]]]


def control_shop(shops: Iterable[Shop]) -> Shop | None:
    """The shop without a fault: it settles D0 under a capped-debit contract."""
    return next((shop for shop in shops if shop.fault is None), None)


def contract(shop: Shop, control: Shop | None) -> tuple[str, str]:
    """(cycle, fees cell of the merchants file) of ``shop``'s contract."""
    if shop is control:
        capped = ";".join(f"{name}={shop.rate_bp}/{DEBIT_CAP}" for name in DEBIT_BUCKETS)
        return "D0", f"{capped};*={shop.rate_bp}"
    return "T+1", f"*={shop.rate_bp}"


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
    #: the merchant id of the control shop (D0, capped debit), if there is one
    control: str | None = None


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
    sales: SalesOf | None = None,
) -> BankOutcome:
    """Pay every batch due by ``today`` as the acquirer and the banks would, faults included.

    :param batches: per merchant, every batch the terminals closed (uploaded or not)
    :param timelines: per merchant with a card change, its request and decision
    :param sales: each day's sales of a shop (for the control shop's per-sale fees)
    """
    out = BankOutcome()
    control = control_shop(shops)
    out.control = control.merchant_id if control else None
    for shop in shops:
        if shop is control:
            _settle_d0(out, shop, batches.get(shop.merchant_id, []), calendar, today, sales)
            continue
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
    if category == "RETURNED":
        out.injected["returned_name_mismatch"] += count
    if category == "MISSING" and net > 0:
        # A friend's transfer of exactly the missing amount, the same day: not the payout.
        out.credits[account].append(
            BankCredit(
                due,
                net,
                f"P{due:%Y%m%d}{shop.merchant_id[1:]}",
                "转账",
                payer=PERSONAL_PAYER,
                payer_account=PERSONAL_ACCOUNT,
            )
        )
        out.injected["personal_transfer"] += 1
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


def _settle_d0(
    out: BankOutcome,
    shop: Shop,
    batches: list[BatchSummary],
    calendar: WorkingCalendar,
    today: date,
    sales: SalesOf | None,
) -> None:
    """The control shop: D0 payouts with per-sale debit caps; one falls back to T+1 on quota."""
    ordered = sorted(batches, key=lambda b: (business_day(b), b.terminal_id, b.batch_no))
    middle = len(ordered) // 2
    for index, batch in enumerate(ordered):
        day = business_day(batch)
        gross, fees = gross_and_fees(shop, batch, sales)
        net = gross - fees
        reference = f"STL{day:%Y%m%d}{shop.merchant_id}{batch.batch_no}"
        status, reason, paid_on = "已付款", "", day
        if index in (middle, len(ordered) - 1):
            status, reason = "已付款", QUOTA_REASON
            paid_on = calendar.next_working_day(day)
            if paid_on >= today:  # moved to T+1 and not booked yet: the bank has nothing
                status = "失败"
                out.injected["NOT_DUE_YET"] += 1
                out.expected[(shop.merchant_id, "NOT_DUE_YET")] += 1
            out.injected["d0_fallback"] += 1
        if paid_on > today:
            continue
        if _has_capped_sales(shop, batch, sales):
            out.injected["capped_debit_batches"] += 1
        out.payouts.append(
            PayoutLine(
                shop.merchant_id,
                shop.name,
                paid_on,
                gross,
                fees,
                net,
                "****" + shop.account[-4:],
                status,
                reason,
                reference,
                [f"{batch.terminal_id}#{batch.batch_no}"],
            )
        )
        if status == "已付款" and net > 0:
            out.credits[shop.account].append(
                BankCredit(
                    paid_on,
                    net,
                    f"B{paid_on:%Y%m%d}{shop.merchant_id[1:]}{index:03d}",
                    f"POS结算 {reference}",
                )
            )


def gross_and_fees(shop: Shop, batch: BatchSummary, sales: SalesOf | None) -> tuple[int, int]:
    """What the acquirer charges the control shop: each sale, debit sales capped.

    The day's sales are those of the batch when their totals agree bucket by bucket; otherwise
    (a batch that is not one whole day) each bucket is charged as if its sales were equal.
    """
    gross = batch.net_amount
    rules = {name: DEBIT_CAP for name in DEBIT_BUCKETS}
    day_sales = _sales_of(shop, batch, sales)
    fees = 0
    for bucket in batch.buckets:
        cap = rules.get(bucket.name)
        amounts = day_sales.get(bucket.name) if day_sales else None
        if amounts is None:
            count = max(1, bucket.sale_count - bucket.void_count)
            base = bucket.sale_amount - bucket.void_amount
            share, extra = divmod(base, count)
            amounts = [share + (1 if n < extra else 0) for n in range(count)]
        fees += sum(sale_fee(a, shop.rate_bp, cap, 0) for a in amounts)
    return gross, fees


def _sales_of(
    shop: Shop, batch: BatchSummary, sales: SalesOf | None
) -> dict[str, list[int]] | None:
    if sales is None:
        return None
    found: dict[str, list[int]] = defaultdict(list)
    for name, amount in sales(shop, business_day(batch)):
        found[name].append(amount)
    totals = {b.name: b.sale_amount for b in batch.buckets if b.sale_amount}
    if {name: sum(amounts) for name, amounts in found.items()} != totals:
        return None
    return found


def _has_capped_sales(shop: Shop, batch: BatchSummary, sales: SalesOf | None) -> bool:
    """True when two or more debit sales of the batch each reach the cap."""
    day_sales = _sales_of(shop, batch, sales) or {}
    threshold = DEBIT_CAP * 10000 // shop.rate_bp
    capped = [a for name in DEBIT_BUCKETS for a in day_sales.get(name, ()) if a > threshold]
    return len(capped) >= 2


def trap_findings(
    gaps: Iterable[dict[str, Any]], outcome: BankOutcome
) -> dict[str, tuple[int, int]]:
    """Per trap: (laid, handled) from the stored open gaps (``merchant_id``, ``category``,
    ``evidence`` as a dict, ``batch_ids`` as a list).

    * ``personal_transfer``: MISSING gaps whose evidence names a credit not from the acquirer;
    * ``returned_name_mismatch``: RETURNED batches whose reason is ``name_mismatch``;
    * ``d0_fallback`` and ``capped_debit_batches``: laid on the control shop, handled when
      none of its gaps is anything but NOT_DUE_YET (no false gap, no false SHORT_PAID).
    """
    rows = list(gaps)
    transfers = sum(
        1 for g in rows if g["category"] == "MISSING" and g["evidence"].get("not_from_acquirer")
    )
    named = sum(
        max(1, len(g["batch_ids"]))
        for g in rows
        if g["category"] == "RETURNED" and g["evidence"].get("return_reason") == "name_mismatch"
    )
    control_ok = outcome.control is not None and not any(
        g["category"] != "NOT_DUE_YET" and g["merchant_id"] == outcome.control for g in rows
    )
    laid = outcome.injected
    result = {
        "personal_transfer": (laid["personal_transfer"], transfers),
        "returned_name_mismatch": (laid["returned_name_mismatch"], named),
        "d0_fallback": (laid["d0_fallback"], laid["d0_fallback"] if control_ok else 0),
        "capped_debit_batches": (
            laid["capped_debit_batches"],
            laid["capped_debit_batches"] if control_ok else 0,
        ),
    }
    return {name: pair for name, pair in result.items() if pair[0]}
