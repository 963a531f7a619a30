"""Plain data for reconciliation: merchants, fees, account history, batches, credits, results.

Every class is a frozen, slotted dataclass; amounts are integers in minor units (fen, cent),
never floats. Datetimes are timezone-aware; ``closed_at`` and the account-history times are UTC.
Nothing here touches a database: the store adapter builds these objects and saves the results.
See ``docs/reconciliation.md`` for the rules these types carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Literal, NamedTuple, get_args

from settleguard.collector.reconcile.fees import FeeInterval, fee_interval

Cycle = Literal["T+1", "T0", "D+1", "D0", "S0"]
#: Every settlement cycle: T counts working days, D calendar days (holidays too); S0 (秒到) pays
#: each sale within minutes, so one batch arrives as many small credits.
CYCLES: tuple[str, ...] = get_args(Cycle)
#: Cycles that fall back to T+1 when the acquirer's same-day limit is used up (D0 额度不足).
FALLBACK_CYCLES: frozenset[str] = frozenset({"D0", "S0", "T0"})
ChangeStatus = Literal["requested", "under_review", "active", "rejected", "retired"]
CreditStatus = Literal["booked", "pending"]
PayoutStatus = Literal["paid", "failed", "returned", "held"]
MatchRule = Literal[
    "reference", "one_to_one", "aggregated", "per_sale", "subset_sum", "tolerance", "manual"
]
GapCategory = Literal[
    "NOT_DUE_YET",
    "PAID_TO_OLD_ACCOUNT",
    "CHANGE_PENDING",
    "RETURNED",
    "HELD",
    "MISSING",
    "SHORT_PAID",
    "AGGREGATED_UNRESOLVED",
    "DUPLICATE_CREDIT",
    "BATCH_NOT_UPLOADED",
    "STATEMENT_GAP",
]

#: Every gap category, in the order above: the one list the alerts, dashboard and API use.
GAP_CATEGORIES: tuple[str, ...] = get_args(GapCategory)

#: Categories that account for a batch's expected money (each batch is in at most one of these).
BATCH_CATEGORIES: frozenset[str] = frozenset(
    {
        "NOT_DUE_YET",
        "PAID_TO_OLD_ACCOUNT",
        "CHANGE_PENDING",
        "RETURNED",
        "HELD",
        "MISSING",
        "AGGREGATED_UNRESOLVED",
        "STATEMENT_GAP",
    }
)


class ReconcileInputError(ValueError):
    """An input object breaks a rule of the model; the message names the object and field."""


def _require(ok: bool, where: str, message: str) -> None:
    if not ok:
        raise ReconcileInputError(f"{where}: {message}")


def _require_aware(value: datetime, where: str) -> None:
    _require(value.tzinfo is not None and value.utcoffset() is not None, where, "naive datetime")


@dataclass(frozen=True, slots=True)
class FeeRule:
    """Merchant discount rate for one bucket (card type), charged per sale.

    Each sale pays ``min(cap, round_half_up(amount * rate_bp / 10000)) + fixed``; a bucket's fee
    is the sum over its sales (see :mod:`collector.reconcile.fees` for what bucket totals allow
    us to know of it). A bucket with nothing to charge on costs nothing (not even ``fixed``).
    """

    card_type: str
    rate_bp: int
    cap: int | None = None
    fixed: int = 0

    def __post_init__(self) -> None:
        where = f"FeeRule({self.card_type!r})"
        _require(0 <= self.rate_bp <= 10000, where, "rate_bp must be 0..10000")
        _require(self.cap is None or self.cap >= 0, where, "cap must be >= 0")
        _require(self.fixed >= 0, where, "fixed must be >= 0")

    def fee(self, base: int, count: int = 1) -> int:
        """Most likely fee of ``count`` sales totalling ``base`` minor units (exact for one)."""
        return fee_interval(base, count, self.rate_bp, self.cap, self.fixed).point

    def interval(self, base: int, count: int, sales: tuple[int, ...] = ()) -> FeeInterval:
        """The fee of ``count`` sales totalling ``base`` as an interval (exact with ``sales``)."""
        return fee_interval(base, count, self.rate_bp, self.cap, self.fixed, sales)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Fee rules per bucket, a default rule for any other bucket, and the refund rule.

    ``refund_fee_returned`` False (the default, and common practice since the 2016 fee reform):
    the fee is charged on ``sale - void`` and refunds do not give it back. True: the fee base is
    ``sale - void - refund`` (never below zero). ``per_payout`` is a fixed surcharge per payout
    (a D0 contract's 0.5 元 a transfer, for example), charged once per batch with a fee base.
    """

    rules: tuple[FeeRule, ...]
    default: FeeRule
    refund_fee_returned: bool = False
    per_payout: int = 0
    _by_type: dict[str, FeeRule] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        by_type = {rule.card_type: rule for rule in self.rules}
        _require(len(by_type) == len(self.rules), "FeeSchedule", "card_type listed twice")
        _require(self.per_payout >= 0, "FeeSchedule", "per_payout must be >= 0")
        object.__setattr__(self, "_by_type", by_type)

    def rule_for(self, card_type: str) -> FeeRule:
        """The rule for ``card_type``, or the default rule."""
        return self._by_type.get(card_type, self.default)

    def fee_base(self, bucket: Bucket) -> int:
        """What the fee is charged on: sales less voids (less refunds when they return fees)."""
        base = bucket.sale_amount - bucket.void_amount
        if self.refund_fee_returned:
            base -= bucket.refund_amount
        return base

    def bucket_interval(self, bucket: Bucket) -> FeeInterval:
        """Fee on one batch bucket by this schedule, as an interval."""
        rule = self._by_type.get(bucket.card_type, self.default)
        count = bucket.sale_count - bucket.void_count
        return rule.interval(self.fee_base(bucket), count, bucket.sales)

    def bucket_fee(self, bucket: Bucket) -> int:
        """Most likely fee on one batch bucket by this schedule."""
        return self.bucket_interval(bucket).point


@dataclass(frozen=True, slots=True)
class Merchant:
    """A merchant as reconciliation needs it."""

    merchant_id: str
    name: str
    cycle: Cycle
    cutoff: time
    timezone: str
    fee_schedule: FeeSchedule
    locale: str = "zh-CN"
    phones: tuple[str, ...] = ()
    #: the acquirer's short name (``lakala``); its payers say which credits are payouts
    acquirer: str = ""
    #: payer names and account numbers (masked forms allowed) the acquirer pays from; empty:
    #: every credit on the settlement account may be a payout
    payers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"Merchant({self.merchant_id!r})"
        _require(self.cycle in CYCLES, where, f"cycle {self.cycle!r} is not one of {CYCLES}")
        _require(self.cutoff.tzinfo is None, where, "cutoff is a local wall-clock time")


@dataclass(frozen=True, slots=True, order=True)
class AccountChange:
    """One entry of a merchant's settlement-account history.

    ``account_key`` is the collector's keyed HMAC of the full number (never the number itself);
    ``effective_at`` is set once the account is (or was) in force.
    """

    requested_at: datetime
    change_id: str
    merchant_id: str
    account_key: str
    account_masked: str
    status: ChangeStatus
    effective_at: datetime | None = None
    status_changed_at: datetime | None = None

    def __post_init__(self) -> None:
        where = f"AccountChange({self.change_id!r})"
        _require_aware(self.requested_at, where + ".requested_at")
        if self.effective_at is not None:
            _require_aware(self.effective_at, where + ".effective_at")
        if self.status_changed_at is not None:
            _require_aware(self.status_changed_at, where + ".status_changed_at")
        _require(
            self.status not in ("active", "retired") or self.effective_at is not None,
            where,
            f"status {self.status} needs effective_at",
        )


@dataclass(frozen=True, slots=True, order=True)
class Bucket:
    """Totals of one card type in one batch (a ZVT bitmap-60 line, a POSLink total)."""

    card_type: str
    sale_amount: int
    refund_amount: int = 0
    void_amount: int = 0
    sale_count: int = 0
    refund_count: int = 0
    void_count: int = 0
    #: each sale's amount when the terminal sent its transaction journal (fees are then exact)
    sales: tuple[int, ...] = ()

    @property
    def net_amount(self) -> int:
        """Sales minus voids minus refunds."""
        return self.sale_amount - self.void_amount - self.refund_amount


@dataclass(frozen=True, slots=True, order=True)
class Batch:
    """One closed terminal batch. ``net_amount`` is what the terminal reported."""

    merchant_id: str
    terminal_id: str
    batch_no: int
    closed_at: datetime
    currency: str
    buckets: tuple[Bucket, ...]
    net_amount: int
    reference: str | None = None
    #: Stable identity: terminal, batch number and close time (UTC); computed once.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _require_aware(self.closed_at, f"Batch({self.terminal_id}#{self.batch_no}).closed_at")
        object.__setattr__(self, "key", batch_key(self.terminal_id, self.batch_no, self.closed_at))


def batch_key(terminal_id: str, batch_no: int, closed_at: datetime | None) -> str:
    """The string key of a batch; ``closed_at`` None gives the key of a batch never seen."""
    if closed_at is None:
        return f"{terminal_id}#{batch_no}"
    at = closed_at.astimezone(UTC)
    return (
        f"{terminal_id}#{batch_no}@{at.year:04d}{at.month:02d}{at.day:02d}"
        f"T{at.hour:02d}{at.minute:02d}{at.second:02d}Z"
    )


@dataclass(frozen=True, slots=True, order=True)
class TerminalReplacement:
    """Old terminal swapped for a new one; ``final_batch_no`` is the old one's last batch."""

    old_tid: str
    new_tid: str
    replaced_at: datetime
    final_batch_no: int | None = None


@dataclass(frozen=True, slots=True, order=True)
class Credit:
    """One bank statement entry crediting a settlement account."""

    credit_id: str
    account_key: str
    account_masked: str
    booking_date: date
    value_date: date | None
    amount: int
    currency: str
    reference: str = ""
    remittance: str = ""
    status: CreditStatus = "booked"
    reversal: bool = False
    import_id: str = ""
    #: who sent the money (对方户名) and from which account (对方账号), as the bank shows them
    payer_name: str = ""
    payer_account: str = ""


@dataclass(frozen=True, slots=True, order=True)
class PayoutRecord:
    """The acquirer's own view of one payout (from a payout / settlement-detail file)."""

    merchant_id: str
    settlement_date: date
    gross: int
    fees: int
    net: int
    target_account_masked: str
    status: PayoutStatus
    reason: str = ""
    reference: str = ""
    batch_refs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, order=True)
class StatementCoverage:
    """Dates ``start``..``end`` (inclusive) of an account covered by imported statements."""

    account_key: str
    start: date
    end: date
    balance_ok: bool = True


class ExpectedCredit(NamedTuple):
    """What the acquirer should pay for one batch, where and by when.

    ExpectedCredit, Match and CreditNote are made once per batch on the hot path, so they are
    immutable NamedTuples rather than frozen dataclasses, whose constructors set every field
    through ``object.__setattr__`` (figures: docs/decisions/0006-hot-path-figures.md).
    """

    batch_key: str
    merchant_id: str
    terminal_id: str
    batch_no: int
    gross: int
    fees: int
    amount: int
    currency: str
    business_date: date
    due_date: date
    account_key: str | None
    account_masked: str | None
    pending_change_id: str | None = None
    pending_account_key: str | None = None
    previous_account_key: str | None = None
    reference: str | None = None
    #: in force, pending, recently replaced: where this batch's money may land
    candidate_accounts: tuple[str, ...] = ()
    #: the fee as an interval (see :mod:`collector.reconcile.fees`); ``fees`` lies inside it
    fees_low: int = 0
    fees_high: int = 0
    #: D0/T0/S0 only: the T+1 day a payout over the same-day limit falls back to
    fallback_due: date | None = None


class Match(NamedTuple):
    """A decision tying batches to credits; ``covered`` is how much expected money it explains."""

    rule: MatchRule
    batch_keys: tuple[str, ...]
    credit_ids: tuple[str, ...]
    expected: int
    actual: int
    residual: int
    covered: int
    account_key: str


@dataclass(frozen=True, slots=True)
class Gap:
    """Money not accounted for, with its category and the evidence that decided it."""

    category: GapCategory
    merchant_id: str
    batch_keys: tuple[str, ...]
    amount_at_risk: int
    since: date
    due_date: date | None
    evidence: dict[str, Any] = field(hash=False)
    reason: str | None = None
    credit_ids: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Deterministic identity, stable across runs (for alert dedupe and storage)."""
        items = ",".join(self.batch_keys) or ",".join(self.credit_ids)
        return f"{self.merchant_id}:{self.category}:{items}"


class CreditNote(NamedTuple):
    """A credit that no batch explains (or that was not used: pending, reversal)."""

    credit_id: str
    account_key: str
    amount: int
    kind: Literal["unexplained", "overpaid", "pending", "reversal", "not_from_acquirer"]


@dataclass(frozen=True, slots=True)
class ReconcileConfig:
    """Tunable limits; the defaults are documented in ``docs/reconciliation.md``.

    :param tolerance_per_batch: minor units of fee-rounding difference accepted per batch
    :param window_before_days: calendar days a credit may be booked before the due date
    :param window_after_days: calendar days a credit may be booked after the due date
    :param subset_max_candidates: K, the batches one credit's subset-sum may look at
    :param subset_node_budget: search nodes one credit's subset-sum may visit
    :param max_fee_variance_bp: a credit this much below expected (basis points) is SHORT_PAID
    :param rejected_change_days: how long a rejected change still marks payouts to the old account
    :param previous_account_days: how long after a switch a credit on the old account counts
    :param max_batch_hole: larger jumps in batch numbers are counter resets, not holes
    """

    tolerance_per_batch: int = 1
    window_before_days: int = 1
    window_after_days: int = 7
    subset_max_candidates: int = 12
    subset_node_budget: int = 20000
    max_fee_variance_bp: int = 1000
    rejected_change_days: int = 30
    previous_account_days: int = 30
    max_batch_hole: int = 50


@dataclass(frozen=True, slots=True, order=True)
class HandMatch:
    """An operator's decision: these credits pay these batches. Rules never undo it."""

    match_id: str
    batch_keys: tuple[str, ...]
    credit_ids: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True, slots=True, order=True)
class CreditSplit:
    """An operator's split of one credit into parts ``<credit_id>/1``, ``/2``, … of ``amounts``."""

    credit_id: str
    amounts: tuple[int, ...]

    def __post_init__(self) -> None:
        where = f"CreditSplit({self.credit_id!r})"
        _require(len(self.amounts) >= 2, where, "a split has at least two parts")
        _require(all(a > 0 for a in self.amounts), where, "every part is positive")


def split_part_id(credit_id: str, index: int) -> str:
    """The id of part ``index`` (from 1) of a split credit."""
    return f"{credit_id}/{index}"


@dataclass(frozen=True, slots=True)
class MerchantInputs:
    """Everything known about one merchant; tuples in any order."""

    merchant: Merchant
    account_history: tuple[AccountChange, ...] = ()
    batches: tuple[Batch, ...] = ()
    replacements: tuple[TerminalReplacement, ...] = ()
    credits: tuple[Credit, ...] = ()
    payouts: tuple[PayoutRecord, ...] = ()
    coverage: tuple[StatementCoverage, ...] = ()
    hand_matches: tuple[HandMatch, ...] = ()
    splits: tuple[CreditSplit, ...] = ()


@dataclass(frozen=True, slots=True)
class MerchantResult:
    """Reconciliation of one merchant: every decision and every gap, in a stable order."""

    merchant_id: str
    expected: tuple[ExpectedCredit, ...]
    matches: tuple[Match, ...]
    gaps: tuple[Gap, ...]
    credit_notes: tuple[CreditNote, ...]
