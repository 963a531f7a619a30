"""Plain data produced by the statement and payout parsers (no database, no I/O).

Amounts are integer minor units of their currency (docs/architecture.md §5); statement entry amounts
are always positive and carry their direction separately, balances are signed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from settleguard.collector.statements.errors import safe_reason

Direction = Literal["credit", "debit"]
EntryStatus = Literal["booked", "pending", "info"]
PayoutStatus = Literal["paid", "failed", "returned", "held"]

#: ISO 20022 placeholder for a missing end-to-end id; many entries share it.
NOT_PROVIDED = "NOTPROVIDED"


@dataclass(frozen=True, slots=True)
class Balance:
    """A statement balance on a day; ``amount`` is signed minor units (negative = overdrawn)."""

    date: date
    amount: int


@dataclass(frozen=True, slots=True)
class Reject:
    """A well-formed row or entry that was not accepted, and why.

    ``line_or_element`` is ``"line 12"`` for text formats or an element path for XML.
    """

    line_or_element: str
    reason: str

    def __post_init__(self) -> None:
        # The reason may quote the row's cells; it is stored and shown like an error.
        object.__setattr__(self, "reason", safe_reason(self.reason))


@dataclass(frozen=True, slots=True)
class StatementEntry:
    """One movement on the account as the bank reported it."""

    line: int | None
    element: str | None
    booking_date: date
    value_date: date | None
    amount: int
    currency: str
    direction: Direction
    status: EntryStatus
    reversal: bool
    reference: str | None
    end_to_end_id: str | None
    remittance: str | None
    counterparty: str | None
    entry_id: str
    #: the payer (payee on a debit) as the bank printed the name, masked forms included
    payer_name: str | None = None
    #: the payer's account as printed when the bank masks it (``6228****1234``), else masked
    payer_account: str | None = None

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise ValueError("entry amounts are positive; the direction carries the sign")

    @property
    def end_to_end_unique(self) -> bool:
        """False when the end-to-end id is absent or the shared ``NOTPROVIDED`` placeholder."""
        return self.end_to_end_id is not None and self.end_to_end_id.upper() != NOT_PROVIDED

    @property
    def signed_amount(self) -> int:
        """The amount with its booking sign: credits positive, debits negative."""
        return self.amount if self.direction == "credit" else -self.amount


@dataclass(frozen=True, slots=True)
class ParsedStatement:
    """A bank statement (camt.053/054, MT940 or bank CSV) as parsed from one file.

    ``account_number`` is the full number and must stay in memory: store only
    :func:`collector.account_numbers.mask_account` and
    :func:`collector.account_numbers.account_hmac` of it.
    """

    format: str
    account_number: str | None
    currency: str | None
    opening_balance: Balance | None
    closing_balance: Balance | None
    entries: tuple[StatementEntry, ...]
    period_start: date | None
    period_end: date | None
    rejects: tuple[Reject, ...] = ()
    warnings: tuple[str, ...] = ()
    profile: str | None = None
    #: the account holder's name as the export prints it (often masked: ``张*明``)
    account_holder: str | None = None
    #: which sheet of a workbook the entries came from (None for text files)
    sheet: str | None = None

    @property
    def account_masked_by_bank(self) -> bool:
        """True when the export shows only part of the own account (``6217****0122``)."""
        return self.account_number is not None and "*" in self.account_number

    @property
    def balance_mismatch(self) -> bool:
        """True when opening + booked movements does not equal closing (a statement gap)."""
        return any(w.startswith("balance_mismatch") for w in self.warnings)


@dataclass(frozen=True, slots=True)
class PayoutRecord:
    """One line of an acquirer's payout / settlement-detail file: the acquirer's own view."""

    line: int
    merchant_id: str
    settlement_date: date
    gross: int
    fees: int
    net: int
    target_account_masked: str | None
    status: PayoutStatus
    reason: str | None
    reference: str | None
    batch_refs: tuple[str, ...]
    currency: str = "CNY"


@dataclass(frozen=True, slots=True)
class ParsedPayoutFile:
    """An acquirer payout file: records, rejected rows and warnings."""

    records: tuple[PayoutRecord, ...]
    rejects: tuple[Reject, ...] = ()
    warnings: tuple[str, ...] = ()
    profile: str | None = None
    format: str = "payout"
    currencies: tuple[str, ...] = field(default=())
