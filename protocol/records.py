"""The signed record types: what the agent tells the collector (docs/architecture.md §3.2).

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
* no full card number anywhere (docs/architecture.md §6): a journal carries at most the first 6 and last
  4 digits of a PAN, a settlement account at most its last 4 digits; free-text fields that
  contain a Luhn-valid 13–19 digit number are refused;
* on the wire every field is present (``null`` where allowed); unknown fields are refused.

:func:`record_from_body` checks a received body's keys, then converts it into the record class
with msgspec, which checks each value's JSON type and runs the same ``check_*`` functions
(``__post_init__``) as for a record built locally; an error names the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, ClassVar

import msgspec

from . import record_fields as _f
from .buckets import CHINA_BUCKETS
from .errors import RemoteProtocolError
from .record_fields import (
    RecordValueError,
    contains_pan,
    redact_pans,
    sanitize_free_text,
)

__all__ = [
    "CHINA_BUCKETS",
    "RECORD_CLASSES",
    "RECORD_TYPES",
    "SOURCES",
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
PROTOCOLS = ("zvt", "poslink", "mispos", "slip")
#: Where a batch's figures come from: a terminal link, or a settlement slip typed by hand.
SOURCES = ("terminal", "slip")
#: Fields added after the first records were published: a body that omits one is an older
#: agent's and reads as this default (docs/envelope.md §5).
ADDED_FIELDS: dict[str, object] = {
    "scheme": None,
    "source": "terminal",
    "account_kind": None,
    "account_class": None,
    "holder_declared_personal": None,
}
JOURNAL_KINDS = ("sale", "refund", "void")
REVIEW_STATUSES = ("requested", "under_review", "active", "rejected")
#: A new settlement account is a bank card (personal, Luhn-checked) or a corporate account
#: (对公账户: up to ~32 digits, no check digit).
ACCOUNT_KINDS = ("card", "corporate")
#: Personal accounts in China are Type I (一类户) or Type II (二类户, with daily inflow limits).
ACCOUNT_CLASSES = ("I", "II")
#: Of :data:`ADDED_FIELDS`, those a new body leaves out when they are None, so bodies written
#: before them (and their signatures) stay byte-identical.
_OMITTED_WHEN_NONE = frozenset({"account_kind", "account_class", "holder_declared_personal"})


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
    scheme: str | None = None  # the protocol's own bucket name (ZVT, POSLink), for the record

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        _f.check_text("name", self.name, pattern=_f.CARD_TYPE_RE)
        _f.check_text("scheme", self.scheme, pattern=_f.CARD_TYPE_RE, optional=True)
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
        self._check()

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


def _bucket_name_ok(protocol: Any, bucket: Bucket) -> bool:
    """China bucket names everywhere; only older ZVT records name a ZVT bucket, unmapped."""
    if bucket.name in CHINA_BUCKETS:
        return protocol != "zvt" or bucket.scheme is None or bucket.scheme in ZVT_BUCKETS
    return (
        protocol in ("zvt", "poslink")
        and bucket.scheme is None
        and (protocol != "zvt" or bucket.name in ZVT_BUCKETS)
    )


def _check_buckets(protocol: str, buckets: tuple[Bucket, ...]) -> None:
    _f.check_tuple_of("buckets", buckets, Bucket)
    keys = [(b.name, b.scheme) for b in buckets]
    if len(set(keys)) != len(keys):
        raise RecordValueError("bucket names (with their scheme) must be unique", "buckets")
    for i, bucket in enumerate(buckets):
        if not _bucket_name_ok(protocol, bucket):
            if bucket.name in CHINA_BUCKETS:
                raise RecordValueError(
                    f"ZVT scheme must be one of {', '.join(ZVT_BUCKETS)}", f"buckets[{i}].scheme"
                )
            raise RecordValueError(
                f"must be one of {', '.join(CHINA_BUCKETS)}", f"buckets[{i}].name"
            )


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
    """One closed batch (MIS-POS settlement 14, ZVT End-of-Day ``06 50``, POSLink BatchClose
    ``B00``) or a settlement slip typed by hand (``protocol`` and ``source`` ``slip``)."""

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
    source: str = "terminal"  # "slip": typed from the printed settlement slip

    def __post_init__(self) -> None:
        self._check()

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
        _f.check_choice("source", self.source, SOURCES)
        if (self.source == "slip") != (self.protocol == "slip"):
            raise RecordValueError("a typed slip has protocol and source 'slip'", "source")

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
        self._check()

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
    """A settlement-card change as the technician recorded it (docs/architecture.md §1, §6).

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
    #: ``card`` or ``corporate`` (None: not said, from an agent before these fields)
    account_kind: str | None = None
    #: ``I`` or ``II`` for personal accounts where the merchant knows it
    account_class: str | None = None
    #: True: the holder is a person; False: a company (对公); None: not said
    holder_declared_personal: bool | None = None

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
        _f.check_choice("account_kind", self.account_kind, ACCOUNT_KINDS, optional=True)
        _f.check_choice("account_class", self.account_class, ACCOUNT_CLASSES, optional=True)
        _f.check_boolean("holder_declared_personal", self.holder_declared_personal, optional=True)

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
        self._check()

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
        if value is None and f.name in _OMITTED_WHEN_NONE:
            continue
        if isinstance(value, tuple):
            value = [item.to_body() for item in value]
        body[f.name] = value
    return body


# The objects nested in a record body, by the field that holds their array.
_NESTED: dict[str, type[Any]] = {"buckets": Bucket, "journal": JournalEntry}
# Per class: every field name, and those a body must carry (all but ADDED_FIELDS).
_WIRE_KEYS: dict[type[Any], tuple[frozenset[str], frozenset[str]]] = {}


def _wire_keys(cls: type[Any]) -> tuple[frozenset[str], frozenset[str]]:
    keys = _WIRE_KEYS.get(cls)
    if keys is None:
        names = tuple(f.name for f in fields(cls))
        keys = _WIRE_KEYS[cls] = (
            frozenset(names),
            frozenset(name for name in names if name not in ADDED_FIELDS),
        )
    return keys


def _check_keys(cls: type[Any], body: dict[str, Any], path: str) -> None:
    """Every field present (but those of ADDED_FIELDS) and no other, in nested objects too.

    The values are msgspec's to check (below); it fills in defaults for absent fields and
    skips unknown ones, which the wire format allows only for ADDED_FIELDS.
    """
    allowed, required = _wire_keys(cls)
    keys = body.keys()
    if keys != allowed:
        prefix = f"{path}." if path else ""
        for key in sorted(keys - allowed):
            raise RecordError("unknown field", f"{prefix}{str(key)[:64]}")
        for f in fields(cls):
            if f.name in required and f.name not in keys:
                raise RecordError("missing field", f"{prefix}{f.name}")
    for name, item_cls in _NESTED.items():
        items = body.get(name)
        if type(items) is list:
            for i, item in enumerate(items):
                if type(item) is dict:
                    _check_keys(item_cls, item, f"{path}.{name}[{i}]" if path else f"{name}[{i}]")


# msgspec's location of a conversion error: "<message> - at `$.buckets[0].sale_amount`".
_AT_RE = re.compile(r"(.*) - at `\$\.?(.*)`\Z", re.DOTALL)


def _record_error(exc: msgspec.ValidationError) -> RecordError:
    match = _AT_RE.match(str(exc))
    message, path = match.groups() if match else (str(exc), "")
    cause = exc.__cause__
    if isinstance(cause, RecordValueError):  # raised by a record's own checks at ``path``
        return RecordError(cause.message, f"{path}.{cause.field}" if path else cause.field)
    return RecordError(message.replace("`", ""), path or None)


def record_from_body(record_type: str, body: Mapping[str, Any]) -> Record:
    """Build and validate a record from a received envelope body.

    The body's keys are checked first (:func:`_check_keys`), then msgspec converts it into the
    record class, checking each value's JSON type (an integer is no float and no boolean) and
    running the records' own checks (``__post_init__``).

    :param record_type: the envelope's ``type``, one of :data:`RECORD_TYPES`
    :param body: the decoded JSON object
    :raises RecordError: naming the first offending field
    """
    cls = _RECORD_CLASSES.get(record_type) if isinstance(record_type, str) else None
    if cls is None:
        raise RecordError(f"unknown record type {str(record_type)[:64]!r}", "type")
    if not isinstance(body, Mapping):
        raise RecordError("must be a JSON object")
    body = body if type(body) is dict else dict(body)
    _check_keys(cls, body, "")
    try:
        record: Record = msgspec.convert(body, cls)
    except msgspec.ValidationError as exc:
        raise _record_error(exc) from None
    return record
