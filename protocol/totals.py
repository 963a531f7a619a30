"""Protocol-neutral batch totals, as a terminal reports them.

Every terminal family ends a totals query or batch close (MIS-POS settlement, ZVT Send
Turnover Totals / End-of-Day, PAX POSLink LocalTotalReport / BatchClose), and a typed
settlement slip says, the same shape of information: per card-type bucket counts and amounts,
a receipt range and, sometimes, a terminal id, merchant number, currency and batch number.
Bucket names are the protocol's own; :mod:`protocol.buckets` maps them to China's buckets. The
agent turns a :class:`TerminalTotals` into a signed record (:mod:`protocol.records`).

Amounts are integers in minor units (cent, fen). Never floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: ZVT bitmap 0x60 "individual totals" buckets, in wire order (PA00P015, bitmap 60).
ZVT_BUCKETS: tuple[str, ...] = ("girocard", "jcb", "eurocard", "amex", "visa", "diners", "other")

TotalsKind = Literal["turnover_totals", "end_of_day"]
ProtocolName = Literal["zvt", "poslink", "mispos", "slip"]


@dataclass(frozen=True, slots=True)
class BucketTotal:
    """Totals of one card-type bucket.

    ``count``/``amount`` are what the terminal reports as the bucket's total (for ZVT the
    net turnover of the bucket). The refund and void fields stay 0 where the protocol does
    not break them out.
    """

    name: str
    count: int
    amount: int
    refund_count: int = 0
    refund_amount: int = 0
    void_count: int = 0
    void_amount: int = 0

    def __post_init__(self) -> None:
        for label in (
            "count",
            "amount",
            "refund_count",
            "refund_amount",
            "void_count",
            "void_amount",
        ):
            value = getattr(self, label)
            if type(value) is not int or value < 0:
                raise ValueError(f"bucket {self.name!r}: {label} must be a non-negative int")


@dataclass(frozen=True, slots=True)
class TerminalTotals:
    """What one totals query or batch close returned, before it becomes a record."""

    protocol: ProtocolName
    kind: TotalsKind
    terminal_id: str | None
    currency: str | None  # ISO 4217 numeric, three digits, e.g. "978", "156"
    buckets: tuple[BucketTotal, ...]
    receipt_start: int | None = None
    receipt_end: int | None = None
    batch_no: int | None = None
    terminal_time: str | None = None  # terminal's local time, ISO 8601 without offset
    host_reconciled: bool | None = None
    total_amount_reported: int | None = None  # a grand total, when the terminal sends one
    print_lines: tuple[str, ...] = field(default=())
    merchant_id: str | None = None  # the merchant number, when the terminal reports it
    recovered: bool = False  # the figures came from a reprint after the close's reply was lost

    @property
    def total_amount(self) -> int:
        """The grand total: the terminal's own figure if it sent one, else the bucket sum."""
        if self.total_amount_reported is not None:
            return self.total_amount_reported
        return sum(bucket.amount for bucket in self.buckets)

    @property
    def total_count(self) -> int:
        """Number of transactions over all buckets."""
        return sum(bucket.count for bucket in self.buckets)
