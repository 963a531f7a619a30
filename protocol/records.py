"""The signed record types: what the agent tells the collector (DESIGN.md §3.2).

Theory of operation
-------------------
Every record is a frozen, slotted dataclass that validates itself on construction, so an
invalid record cannot exist in memory: a bad value raises :class:`RecordValueError` (a
:class:`~protocol.errors.LocalProtocolError`) naming the field. ``to_body()`` turns a record
into the JSON-ready ``body`` of an envelope (see :mod:`protocol.envelope` and
``docs/envelope.md``); :func:`record_from_body` is the strict inverse for bytes that came
from someone else and raises :class:`RecordError` (a
:class:`~protocol.errors.RemoteProtocolError`) naming the field, e.g. ``buckets[2].sale_amount``.

Rules shared by every record:

* amounts are integers in minor units (cent, fen), never floats, and ``bool`` is not an integer;
* times are strings: ``…Z`` is UTC (RFC 3339, seconds with an optional 1–6 digit fraction),
  ``terminal_local_time`` is the terminal's own wall clock without a zone;
* no full card number anywhere (DESIGN.md §6): a journal carries at most the first 6 and last
  4 digits of a PAN, a settlement account at most its last 4 digits; free-text fields that
  contain a Luhn-valid 13–19 digit number are refused;
* on the wire every field is present (``null`` where allowed); unknown fields are refused.

The collector validates every received record, so the valid case has shortcuts that decide
exactly as the full checks (``tests/protocol/test_records_fast.py``): ``__post_init__`` first
tests all fields in one expression (``_plainly_valid``) and runs the ``check_*`` functions,
which word the error, only when that says no; :func:`record_from_body` first builds from a
dict with exactly the expected keys (``_build_valid``) and only on any doubt walks the body
field by field to name the offending one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, ClassVar

from protocol import record_fields as _f
from protocol.canonical import MAX_SAFE_INT as _MAX
from protocol.errors import RemoteProtocolError
from protocol.record_fields import (
    RecordValueError,
    contains_pan,
    redact_pans,
    sanitize_free_text,
)

__all__ = [
    "RECORD_CLASSES",
    "RECORD_TYPES",
    "ZVT_BUCKETS",
    "BatchSummary",
    "Bucket",
    "CardChange",
    "Heartbeat",
    "JournalEntry",
    "Record",
    "RecordError",
    "RecordValueError",
    "TerminalReplaced",
    "TurnoverReading",
    "contains_pan",
    "record_from_body",
    "redact_pans",
    "sanitize_free_text",
]

#: ZVT bitmap 60 reports seven card-type totals in this order (PA00P015, bitmap 60).
ZVT_BUCKETS = ("girocard", "jcb", "eurocard", "amex", "visa", "diners", "other")
PROTOCOLS = ("zvt", "poslink")
JOURNAL_KINDS = ("sale", "refund", "void")
REVIEW_STATUSES = ("requested", "under_review", "active", "rejected")


class RecordError(RemoteProtocolError):
    """A received record body breaks the schema.

    :param message: what is wrong
    :param field: dotted path of the offending field, e.g. ``buckets[2].sale_amount``
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message if field is None else f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class Bucket:
    """Totals of one card type (bucket) within a batch or reading. Amounts in minor units."""

    name: str
    sale_count: int = 0
    sale_amount: int = 0
    refund_count: int = 0
    refund_amount: int = 0
    void_count: int = 0
    void_amount: int = 0

    def __post_init__(self) -> None:
        if not self._plainly_valid():
            self._check()

    def _plainly_valid(self) -> bool:
        # One expression for the valid case; True only where _check() passes (test_records_fast).
        return (
            type(self.name) is str
            and _f.is_card_type(self.name) is not None
            and type(self.sale_count) is int
            and 0 <= self.sale_count <= _MAX
            and type(self.sale_amount) is int
            and 0 <= self.sale_amount <= _MAX
            and type(self.refund_count) is int
            and 0 <= self.refund_count <= _MAX
            and type(self.refund_amount) is int
            and 0 <= self.refund_amount <= _MAX
            and type(self.void_count) is int
            and 0 <= self.void_count <= _MAX
            and type(self.void_amount) is int
            and 0 <= self.void_amount <= _MAX
        )

    def _check(self) -> None:
        _f.check_text("name", self.name, pattern=_f.CARD_TYPE_RE)
        for name in ("sale_count", "refund_count", "void_count"):
            _f.check_integer(name, getattr(self, name), minimum=0)
        for name in ("sale_amount", "refund_amount", "void_amount"):
            _f.check_integer(name, getattr(self, name), minimum=0)

    @property
    def net_amount(self) -> int:
        """``sale_amount − refund_amount − void_amount`` (see :attr:`BatchSummary.net_amount`)."""
        return self.sale_amount - self.refund_amount - self.void_amount

    def to_body(self) -> dict[str, Any]:
        """Return the JSON-ready object for this bucket."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One transaction of a batch journal (POSLink ``R03``); masked PAN only."""

    receipt_no: int
    kind: str
    amount: int
    masked_pan: str
    card_type: str
    time: str

    def __post_init__(self) -> None:
        if not self._plainly_valid():
            self._check()

    def _plainly_valid(self) -> bool:
        # One expression for the valid case; True only where _check() passes (test_records_fast).
        return (
            type(self.receipt_no) is int
            and 0 <= self.receipt_no <= _MAX
            and type(self.kind) is str
            and self.kind in JOURNAL_KINDS
            and type(self.amount) is int
            and 0 <= self.amount <= _MAX
            and type(self.masked_pan) is str
            and len(self.masked_pan) <= 19
            and _f.is_masked_pan(self.masked_pan) is not None
            and type(self.card_type) is str
            and _f.is_card_type(self.card_type) is not None
            and type(self.time) is str
            and (_f.is_utc_time(self.time) is not None or _f.is_local_time(self.time) is not None)
        )

    def _check(self) -> None:
        _f.check_integer("receipt_no", self.receipt_no, minimum=0)
        _f.check_choice("kind", self.kind, JOURNAL_KINDS)
        _f.check_integer("amount", self.amount, minimum=0)
        _f.check_masked_pan("masked_pan", self.masked_pan)
        _f.check_text("card_type", self.card_type, pattern=_f.CARD_TYPE_RE)
        _f.check_any_time("time", self.time)

    def to_body(self) -> dict[str, Any]:
        """Return the JSON-ready object for this journal entry."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _optional_identifier(value: Any) -> bool:
    """True only if ``check_identifier(…, optional=True)`` accepts."""
    return value is None or (type(value) is str and _f.is_identifier(value) is not None)


def _optional_local_time(value: Any) -> bool:
    """True only if ``check_local_time(…, optional=True)`` accepts."""
    return value is None or (type(value) is str and _f.is_local_time(value) is not None)


def _buckets_ok(protocol: Any, buckets: Any) -> bool:
    """True only if :func:`_check_buckets` accepts (the fast path of the valid case)."""
    if type(buckets) is not tuple:
        return False
    names = set()
    for bucket in buckets:
        if type(bucket) is not Bucket or (protocol == "zvt" and bucket.name not in ZVT_BUCKETS):
            return False
        names.add(bucket.name)
    return len(names) == len(buckets)


def _journal_ok(journal: Any) -> bool:
    """True only if ``check_tuple_of("journal", journal, JournalEntry)`` accepts."""
    if type(journal) is not tuple:
        return False
    for entry in journal:
        if type(entry) is not JournalEntry:
            return False
    return True


def _check_buckets(protocol: str, buckets: tuple[Bucket, ...]) -> None:
    _f.check_tuple_of("buckets", buckets, Bucket)
    names = [b.name for b in buckets]
    if len(set(names)) != len(names):
        raise RecordValueError("bucket names must be unique", "buckets")
    if protocol == "zvt":
        for i, name in enumerate(names):
            if name not in ZVT_BUCKETS:
                raise RecordValueError(
                    f"ZVT bucket must be one of {', '.join(ZVT_BUCKETS)}", f"buckets[{i}].name"
                )


def _receipts_ok(start: Any, end: Any) -> bool:
    """True only if :func:`_check_receipts` accepts."""
    if start is None:
        return end is None
    return type(start) is type(end) is int and 0 <= start <= _MAX and 0 <= end <= _MAX


def _check_receipts(start: int | None, end: int | None) -> None:
    _f.check_integer("receipt_start", start, minimum=0, optional=True)
    _f.check_integer("receipt_end", end, minimum=0, optional=True)
    # Both or neither; no order check because ZVT receipt numbers wrap at 9999.
    if (start is None) != (end is None):
        raise RecordValueError("receipt_start and receipt_end go together", "receipt_end")


class _Totals:
    """Properties shared by :class:`BatchSummary` and :class:`TurnoverReading`."""

    __slots__ = ()
    buckets: tuple[Bucket, ...]

    @property
    def net_amount(self) -> int:
        """Net of the batch in minor units: Σ sale_amount − Σ refund_amount − Σ void_amount.

        ``sale_*`` counts every approved sale, including ones voided later; ``void_*`` counts
        the voided ones; ``refund_*`` counts refunds (money returned to a cardholder). This is
        the gross amount the acquirer owes before fees; it can be negative.
        """
        return sum(b.net_amount for b in self.buckets)

    @property
    def total_count(self) -> int:
        """Number of transactions: Σ (sale_count + refund_count + void_count)."""
        return sum(b.sale_count + b.refund_count + b.void_count for b in self.buckets)


@dataclass(frozen=True, slots=True)
class BatchSummary(_Totals):
    """One closed batch (ZVT End-of-Day ``06 50``, POSLink BatchClose ``B00``)."""

    RECORD_TYPE: ClassVar[str] = "batch_summary"

    terminal_id: str
    merchant_id: str | None
    batch_no: int
    closed_at: str
    terminal_local_time: str | None
    currency: str | None
    buckets: tuple[Bucket, ...]
    receipt_start: int | None
    receipt_end: int | None
    host_reconciled: bool | None
    protocol: str
    journal: tuple[JournalEntry, ...] = ()

    def __post_init__(self) -> None:
        if not self._plainly_valid():
            self._check()

    def _plainly_valid(self) -> bool:
        # One expression for the valid case; True only where _check() passes (test_records_fast).
        return (
            type(self.terminal_id) is str
            and _f.is_identifier(self.terminal_id) is not None
            and (self.merchant_id is None or (
                type(self.merchant_id) is str and _f.is_identifier(self.merchant_id) is not None))
            and type(self.batch_no) is int
            and 0 <= self.batch_no <= _MAX
            and type(self.closed_at) is str
            and _f.is_utc_time(self.closed_at) is not None
            and (self.terminal_local_time is None or (
                type(self.terminal_local_time) is str
                and _f.is_local_time(self.terminal_local_time) is not None))
            and (self.currency is None or (
                type(self.currency) is str and _f.is_currency(self.currency) is not None))
            and type(self.protocol) is str
            and self.protocol in PROTOCOLS
            and _buckets_ok(self.protocol, self.buckets)
            and (self.receipt_start is self.receipt_end is None
                 or _receipts_ok(self.receipt_start, self.receipt_end))
            and (self.host_reconciled is None or type(self.host_reconciled) is bool)
            and _journal_ok(self.journal)
        )  # fmt: skip

    def _check(self) -> None:
        _f.check_identifier("terminal_id", self.terminal_id)
        _f.check_identifier("merchant_id", self.merchant_id, optional=True)
        _f.check_integer("batch_no", self.batch_no, minimum=0)
        _f.check_utc_time("closed_at", self.closed_at)
        _f.check_local_time("terminal_local_time", self.terminal_local_time, optional=True)
        _f.check_currency("currency", self.currency, optional=True)
        _f.check_choice("protocol", self.protocol, PROTOCOLS)
        _check_buckets(self.protocol, self.buckets)
        _check_receipts(self.receipt_start, self.receipt_end)
        _f.check_boolean("host_reconciled", self.host_reconciled, optional=True)
        _f.check_tuple_of("journal", self.journal, JournalEntry)

    def natural_key(self) -> tuple[str, int, str]:
        """``(terminal_id, batch_no, closed_at)``: the same batch from any agent or resend."""
        return (self.terminal_id, self.batch_no, self.closed_at)

    def to_body(self) -> dict[str, Any]:
        """Return the JSON-ready envelope body."""
        return _body(self)


@dataclass(frozen=True, slots=True)
class TurnoverReading(_Totals):
    """Totals read without closing the batch (ZVT ``06 10``, POSLink ``R00``)."""

    RECORD_TYPE: ClassVar[str] = "turnover_reading"

    terminal_id: str | None
    merchant_id: str | None
    read_at: str
    terminal_local_time: str | None
    currency: str | None
    buckets: tuple[Bucket, ...]
    receipt_start: int | None
    receipt_end: int | None
    protocol: str
    batch_no: int | None = None
    journal: tuple[JournalEntry, ...] = ()

    def __post_init__(self) -> None:
        if not self._plainly_valid():
            self._check()

    def _plainly_valid(self) -> bool:
        # One expression for the valid case; True only where _check() passes (test_records_fast).
        return (
            _optional_identifier(self.terminal_id)
            and _optional_identifier(self.merchant_id)
            and type(self.read_at) is str
            and _f.is_utc_time(self.read_at) is not None
            and _optional_local_time(self.terminal_local_time)
            and (self.currency is None or (
                type(self.currency) is str and _f.is_currency(self.currency) is not None))
            and type(self.protocol) is str
            and self.protocol in PROTOCOLS
            and _buckets_ok(self.protocol, self.buckets)
            and _receipts_ok(self.receipt_start, self.receipt_end)
            and (self.batch_no is None or (
                type(self.batch_no) is int and 0 <= self.batch_no <= _MAX))
            and _journal_ok(self.journal)
        )  # fmt: skip

    def _check(self) -> None:
        _f.check_identifier("terminal_id", self.terminal_id, optional=True)
        _f.check_identifier("merchant_id", self.merchant_id, optional=True)
        _f.check_utc_time("read_at", self.read_at)
        _f.check_local_time("terminal_local_time", self.terminal_local_time, optional=True)
        _f.check_currency("currency", self.currency, optional=True)
        _f.check_choice("protocol", self.protocol, PROTOCOLS)
        _check_buckets(self.protocol, self.buckets)
        _check_receipts(self.receipt_start, self.receipt_end)
        _f.check_integer("batch_no", self.batch_no, minimum=0, optional=True)
        _f.check_tuple_of("journal", self.journal, JournalEntry)

    def to_body(self) -> dict[str, Any]:
        """Return the JSON-ready envelope body."""
        return _body(self)


@dataclass(frozen=True, slots=True)
class CardChange:
    """A settlement-card change as the technician recorded it (DESIGN.md §1, §6).

    ``new_account_sealed`` is a :func:`protocol.sealed.seal` token of the full account number,
    sealed with ``context=protocol.sealed.card_change_context(change_id)``.
    """

    RECORD_TYPE: ClassVar[str] = "card_change"

    merchant_id: str | None
    change_id: str
    old_account_masked: str | None
    new_account_masked: str
    new_account_sealed: str
    holder_name: str
    bank: str
    requested_at: str
    effective_at: str | None
    review_status: str | None
    acquirer_ref: str | None

    def __post_init__(self) -> None:
        _f.check_identifier("merchant_id", self.merchant_id, optional=True)
        _f.check_identifier("change_id", self.change_id)
        _f.check_masked_account("old_account_masked", self.old_account_masked, optional=True)
        _f.check_masked_account("new_account_masked", self.new_account_masked)
        _f.check_sealed_token("new_account_sealed", self.new_account_sealed)
        _f.check_free_text("holder_name", self.holder_name, max_len=128)
        _f.check_free_text("bank", self.bank, max_len=128)
        _f.check_utc_time("requested_at", self.requested_at)
        _f.check_utc_time("effective_at", self.effective_at, optional=True)
        _f.check_choice("review_status", self.review_status, REVIEW_STATUSES, optional=True)
        _f.check_free_text("acquirer_ref", self.acquirer_ref, max_len=64, optional=True)

    def to_body(self) -> dict[str, Any]:
        """Return the JSON-ready envelope body."""
        return _body(self)


@dataclass(frozen=True, slots=True)
class TerminalReplaced:
    """Old terminal → new terminal for the same merchant, with the old one's final batch."""

    RECORD_TYPE: ClassVar[str] = "terminal_replaced"

    merchant_id: str | None
    old_terminal_id: str
    new_terminal_id: str
    replaced_at: str
    final_batch_no: int | None
    final_batch_closed_at: str | None

    def __post_init__(self) -> None:
        _f.check_identifier("merchant_id", self.merchant_id, optional=True)
        _f.check_identifier("old_terminal_id", self.old_terminal_id)
        _f.check_identifier("new_terminal_id", self.new_terminal_id)
        if self.old_terminal_id == self.new_terminal_id:
            raise RecordValueError("must differ from old_terminal_id", "new_terminal_id")
        _f.check_utc_time("replaced_at", self.replaced_at)
        _f.check_integer("final_batch_no", self.final_batch_no, minimum=0, optional=True)
        _f.check_utc_time("final_batch_closed_at", self.final_batch_closed_at, optional=True)
        if (self.final_batch_no is None) != (self.final_batch_closed_at is None):
            raise RecordValueError(
                "final_batch_no and final_batch_closed_at go together", "final_batch_closed_at"
            )

    def to_body(self) -> dict[str, Any]:
        """Return the JSON-ready envelope body."""
        return _body(self)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The agent's health: outbox depth, link state, versions, clock."""

    RECORD_TYPE: ClassVar[str] = "heartbeat"

    outbox_pending: int
    oldest_unacked_age_s: int | None
    link_state: str
    agent_version: str
    terminal_id: str | None
    agent_time: str
    disk_alarm: bool = False
    last_error: str | None = None

    def __post_init__(self) -> None:
        if not self._plainly_valid():
            self._check()

    def _plainly_valid(self) -> bool:
        # One expression for the valid case; True only where _check() passes (test_records_fast).
        # A last_error is free text (PAN scan and all): left to _check().
        return (
            type(self.outbox_pending) is int
            and 0 <= self.outbox_pending <= _MAX
            and (self.oldest_unacked_age_s is None or (
                type(self.oldest_unacked_age_s) is int
                and 0 <= self.oldest_unacked_age_s <= _MAX))
            and type(self.link_state) is str
            and _f.is_card_type(self.link_state) is not None
            and type(self.agent_version) is str
            and _f.is_version(self.agent_version) is not None
            and _optional_identifier(self.terminal_id)
            and type(self.agent_time) is str
            and _f.is_utc_time(self.agent_time) is not None
            and type(self.disk_alarm) is bool
            and self.last_error is None
        )  # fmt: skip

    def _check(self) -> None:
        _f.check_integer("outbox_pending", self.outbox_pending, minimum=0)
        _f.check_integer(
            "oldest_unacked_age_s", self.oldest_unacked_age_s, minimum=0, optional=True
        )
        _f.check_text("link_state", self.link_state, pattern=_f.CARD_TYPE_RE)
        _f.check_text("agent_version", self.agent_version, pattern=_f.VERSION_RE)
        _f.check_identifier("terminal_id", self.terminal_id, optional=True)
        _f.check_utc_time("agent_time", self.agent_time)
        _f.check_boolean("disk_alarm", self.disk_alarm)
        _f.check_free_text("last_error", self.last_error, max_len=500, optional=True)

    def to_body(self) -> dict[str, Any]:
        """Return the JSON-ready envelope body."""
        return _body(self)


Record = BatchSummary | TurnoverReading | CardChange | TerminalReplaced | Heartbeat

_RECORD_CLASSES: dict[str, type[Record]] = {
    cls.RECORD_TYPE: cls
    for cls in (BatchSummary, TurnoverReading, CardChange, TerminalReplaced, Heartbeat)
}
#: Every record type name accepted in an envelope's ``type``.
RECORD_TYPES = tuple(_RECORD_CLASSES)
#: Record type name -> its class (read-only).
RECORD_CLASSES: Mapping[str, type[Record]] = MappingProxyType(_RECORD_CLASSES)


def _body(record: Record) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, tuple):
            value = [item.to_body() for item in value]
        body[f.name] = value
    return body


def _nested(cls: type[Any], name: str, value: Any) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise RecordError("must be a JSON array", name)
    items = []
    for i, item in enumerate(value):
        items.append(_build(cls, item, f"{name}[{i}]"))
    return tuple(items)


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:  # dataclasses.fields() is slow enough to show up in ingest profiles
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


_NESTED_TYPES: dict[str, type[Any]] = {"buckets": Bucket, "journal": JournalEntry}


def _shape(cls: type[Any]) -> tuple[frozenset[str], tuple[tuple[str, type[Any]], ...]]:
    names = _field_names(cls)
    nested = tuple((n, _NESTED_TYPES[n]) for n in names if n in _NESTED_TYPES)
    return frozenset(names), nested


# Per class: its field names as a set, and its nested list fields (field name, item class).
_SHAPES = {cls: _shape(cls) for cls in (Bucket, JournalEntry, *_RECORD_CLASSES.values())}


def _build_valid(cls: type[Any], body: Any) -> Any:
    """:func:`_build` for the valid case: the same record, or ``None`` if anything is off.

    A dict with exactly the expected keys has no unknown and no missing field; nested lists
    are built the same way (their items have no nested lists of their own); the constructor
    validates as always. On ``None`` the caller runs :func:`_build`, which finds the same
    problem and names its field.
    """
    names, nested = _SHAPES[cls]
    if type(body) is not dict or body.keys() != names:
        return None
    try:
        if nested:
            body = dict(body)
            for name, item_cls in nested:
                items = body[name]
                if type(items) is not list:
                    return None
                item_names = _SHAPES[item_cls][0]
                built = []
                for item in items:
                    if type(item) is not dict or item.keys() != item_names:
                        return None
                    built.append(item_cls(**item))
                body[name] = tuple(built)
        return cls(**body)
    except RecordValueError:
        return None


def _build(cls: type[Any], body: Any, path: str) -> Any:
    prefix = f"{path}." if path else ""
    if not isinstance(body, Mapping):
        raise RecordError("must be a JSON object", path or None)
    expected = _field_names(cls)
    for key in body:
        if key not in expected:
            raise RecordError("unknown field", f"{prefix}{str(key)[:64]}")
    kwargs: dict[str, Any] = {}
    for name in expected:
        if name not in body:
            raise RecordError("missing field", f"{prefix}{name}")
        value = body[name]
        if name == "buckets":
            value = _nested(Bucket, f"{prefix}{name}", value)
        elif name == "journal":
            value = _nested(JournalEntry, f"{prefix}{name}", value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except RecordValueError as exc:
        raise RecordError(exc.message, f"{prefix}{exc.field}") from None


def record_from_body(record_type: str, body: Mapping[str, Any]) -> Record:
    """Build and validate a record from a received envelope body.

    :param record_type: the envelope's ``type``, one of :data:`RECORD_TYPES`
    :param body: the decoded JSON object
    :raises RecordError: naming the first offending field
    """
    cls = _RECORD_CLASSES.get(record_type) if isinstance(record_type, str) else None
    if cls is None:
        raise RecordError(f"unknown record type {str(record_type)[:64]!r}", "type")
    record: Record | None = _build_valid(cls, body)
    if record is None:
        record = _build(cls, body, "")
    return record
