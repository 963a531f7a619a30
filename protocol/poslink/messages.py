"""POSLink application messages we use, as frozen events, with their encoders and decoders.

Requests (cash register → terminal): B00 BatchClose, R00 LocalTotalReport, R02
LocalDetailReport. Responses (terminal → cash register): B01, R01, R03. Field positions come
from the one table in :mod:`protocol.poslink.fields`. Decoders raise
:class:`~protocol.errors.RemoteProtocolError` with the stream offset of the offending field;
encoders raise :class:`~protocol.errors.LocalProtocolError` for values that cannot be sent.

The journal (R03) never keeps a full card number: any run of 13 or more digits in a kept text
field is cut down to first 6 / last 4 before an event is built (docs/architecture.md §6). Card-holder name
and expiry date are dropped on decode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import LocalProtocolError, RemoteProtocolError
from . import fields as table
from .framing import GS, US, Frame, encode_frame, split_payload

DEFAULT_VERSION = "1.35"  # GP-SDK sends 1.35; terminals echo what they implement
_PAN_RUN = re.compile(r"\d{13,}")


@dataclass(frozen=True, slots=True)
class BatchCloseRequest:
    """B00: close the open batch and settle it with the host."""

    timestamp: str | None = None  # YYYYMMDDhhmmss, the ECR's clock

    def __post_init__(self) -> None:
        if self.timestamp is not None and not _is_digits(self.timestamp, 14, exact=True):
            raise LocalProtocolError("B00 timestamp must be 14 digits YYYYMMDDhhmmss")


@dataclass(frozen=True, slots=True)
class LocalTotalReportRequest:
    """R00: totals of the open batch, without closing it."""

    edc_type: str = "00"

    def __post_init__(self) -> None:
        if self.edc_type not in table.EDC_CODES:
            raise LocalProtocolError(f"R00 EDC type {self.edc_type!r} is not a known code")


@dataclass(frozen=True, slots=True)
class LocalDetailReportRequest:
    """R02: one record of the terminal's local transaction journal."""

    record_number: int | None = None
    edc_type: str = "00"

    def __post_init__(self) -> None:
        if self.record_number is not None and not 0 <= self.record_number <= 9999:
            raise LocalProtocolError("R02 record number must be 0..9999")
        if self.edc_type not in table.EDC_CODES:
            raise LocalProtocolError(f"R02 EDC type {self.edc_type!r} is not a known code")


@dataclass(frozen=True, slots=True)
class ResponseStatus:
    """The six-digit response code and message every response carries."""

    code: str = table.OK
    message: str = "OK"

    def __post_init__(self) -> None:
        if not _is_digits(self.code, 6, exact=True):
            raise LocalProtocolError(f"response code {self.code!r} must be six digits")

    @property
    def ok(self) -> bool:
        """True for 000000."""
        return self.code == table.OK

    @property
    def meaning(self) -> str:
        """What the code means (from :data:`protocol.poslink.fields.RESPONSE_CODES`)."""
        return table.describe_response(self.code)


@dataclass(frozen=True, slots=True)
class HostInformation:
    """Host-information group of B01/R03 (sub-fields split by US)."""

    host_code: str = ""
    host_message: str = ""
    auth_code: str = ""
    host_reference: str = ""
    trace_number: str = ""
    batch_number: str = ""


@dataclass(frozen=True, slots=True)
class EdcTotal:
    """Totals of one EDC group (credit, debit, …); amounts in cents."""

    edc: str
    count: int = 0
    amount: int = 0
    refund_count: int = 0
    refund_amount: int = 0

    def __post_init__(self) -> None:
        if self.edc not in table.EDC_ORDER:
            raise LocalProtocolError(f"unknown EDC group {self.edc!r}")
        for name in ("count", "amount", "refund_count", "refund_amount"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise LocalProtocolError(f"{self.edc}.{name} must be a non-negative int")


@dataclass(frozen=True, slots=True)
class BatchCloseResponse:
    """B01: what the terminal settled. Totals are per EDC group (count/amount only)."""

    status: ResponseStatus = field(default_factory=ResponseStatus)
    host: HostInformation = field(default_factory=HostInformation)
    totals: tuple[EdcTotal, ...] = ()
    timestamp: str = ""
    terminal_id: str = ""
    merchant_id: str = ""


@dataclass(frozen=True, slots=True)
class LocalTotalReportResponse:
    """R01: running totals of the open batch per EDC group, with returns broken out."""

    status: ResponseStatus = field(default_factory=ResponseStatus)
    edc_type: str = "00"
    totals: tuple[EdcTotal, ...] = ()


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One transaction of the local journal. ``masked_pan`` never holds a full card number."""

    record_number: int
    edc: str
    transaction_type: str
    amount: int  # approved amount, cents
    masked_pan: str = ""
    card_type: str = ""
    entry_mode: str = ""
    transaction_number: str = ""
    reference_number: str = ""
    timestamp: str = ""
    pan_masked_by_decoder: bool = False

    def __post_init__(self) -> None:
        for name in ("masked_pan", "card_type", "transaction_number", "reference_number"):
            if _PAN_RUN.search(getattr(self, name)):
                raise LocalProtocolError(f"journal {name} looks like a full card number")


@dataclass(frozen=True, slots=True)
class LocalDetailReportResponse:
    """R03: one journal record and how many there are."""

    status: ResponseStatus = field(default_factory=ResponseStatus)
    total_records: int = 0
    record_number: int = 0
    entry: JournalEntry | None = None


Request = BatchCloseRequest | LocalTotalReportRequest | LocalDetailReportRequest
Response = BatchCloseResponse | LocalTotalReportResponse | LocalDetailReportResponse

REQUEST_COMMANDS: dict[type[object], str] = {
    BatchCloseRequest: "B00",
    LocalTotalReportRequest: "R00",
    LocalDetailReportRequest: "R02",
}
RESPONSE_COMMANDS: dict[type[object], str] = {
    BatchCloseResponse: "B01",
    LocalTotalReportResponse: "R01",
    LocalDetailReportResponse: "R03",
}
RESPONSE_FOR: dict[str, str] = {"B00": "B01", "R00": "R01", "R02": "R03"}


# --------------------------------------------------------------------------- helpers


def _is_digits(text: str, length: int, *, exact: bool = False) -> bool:
    if not text.isascii() or not text.isdigit():
        return False
    return len(text) == length if exact else len(text) <= length


def mask_pan(text: str) -> tuple[str, bool]:
    """Cut every run of 13+ digits in ``text`` down to first 6 / last 4.

    :returns: the safe text and whether anything had to be masked
    """
    masked = _PAN_RUN.sub(
        lambda m: m.group()[:6] + "*" * (len(m.group()) - 10) + m.group()[-4:], text
    )
    return masked, masked != text


class _Fields:
    """FS fields of one received frame, with offsets, for decoding with good errors."""

    def __init__(self, frame: Frame, header: int) -> None:
        raw, offsets = split_payload(frame.payload)
        self.base = frame.offset
        self.values = raw[header:]
        self.offsets = offsets[header:]
        self.header = raw[:header]
        self.header_offsets = offsets[:header]

    def offset(self, index: int) -> int:
        if index < len(self.offsets):
            return self.base + self.offsets[index]
        return self.base + (self.offsets[-1] if self.offsets else 0)

    def text(self, index: int) -> str:
        if index >= len(self.values):
            return ""
        return _text(self.values[index], self.offset(index))

    def subfields(self, index: int) -> list[str]:
        return self.text(index).split(chr(US))

    def number(self, index: int, name: str, *, sub: int | None = None, width: int = 12) -> int:
        text = self.text(index) if sub is None else _pick(self.subfields(index), sub)
        return _number(text, name, self.offset(index), width)


def _text(raw: bytes, offset: int) -> str:
    for index, byte in enumerate(raw):
        if byte < 0x20 and byte not in (US, GS):
            raise RemoteProtocolError(f"control byte 0x{byte:02X} inside a field", offset + index)
    return raw.decode("latin-1")


def _pick(items: list[str], index: int) -> str:
    return items[index] if index < len(items) else ""


def _number(text: str, name: str, offset: int, width: int = 12) -> int:
    if text == "":
        return 0
    if not _is_digits(text, width):
        raise RemoteProtocolError(
            f"{name} must be at most {width} digits, got {text[:20]!r}", offset
        )
    return int(text)


def _encode_text(value: str, name: str) -> bytes:
    try:
        data = value.encode("ascii")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"{name} must be ASCII") from exc
    if any(b < 0x20 for b in data):
        raise LocalProtocolError(f"{name} must not contain control characters")
    return data


def _join(values: list[str], separator: int) -> bytes:
    return bytes([separator]).join(_encode_text(v, "sub-field") for v in values)


# --------------------------------------------------------------------------- requests


def encode_request(request: Request, version: str = DEFAULT_VERSION) -> bytes:
    """The complete frame (``STX … ETX LRC``) for ``request``."""
    command = REQUEST_COMMANDS[type(request)]
    body: list[bytes]
    if isinstance(request, BatchCloseRequest):
        body = [_encode_text(request.timestamp or "", "timestamp")]
    elif isinstance(request, LocalTotalReportRequest):
        body = [request.edc_type.encode()]
    else:
        record = "" if request.record_number is None else str(request.record_number)
        body = [request.edc_type.encode(), b"", b"", record.encode(), b"", b"", b""]
    return encode_frame([command.encode(), _encode_text(version, "version"), *body])


def decode_request(frame: Frame) -> Request:
    """Decode a request frame (terminal side).

    :raises RemoteProtocolError: unknown command or a malformed field
    """
    fields = _Fields(frame, header=2)
    command = _text(fields.header[0], frame.offset + 1)
    if len(fields.header) < 2 or not fields.header[1]:
        raise RemoteProtocolError(
            f"{command or 'request'}: version field missing", frame.offset + 1
        )
    if command == "B00":
        stamp = fields.text(table.position("B00", "timestamp"))
        if stamp and not _is_digits(stamp, 14, exact=True):
            raise RemoteProtocolError("B00 timestamp must be 14 digits", fields.offset(0))
        return BatchCloseRequest(stamp or None)
    if command == "R00":
        return LocalTotalReportRequest(_edc_code(fields, table.position("R00", "edc_type")))
    if command == "R02":
        index = table.position("R02", "record_number")
        record = fields.text(index)
        number = _number(record, "R02 record number", fields.offset(index), 4) if record else None
        return LocalDetailReportRequest(
            number, _edc_code(fields, table.position("R02", "edc_type"))
        )
    raise RemoteProtocolError(f"unsupported request command {command[:8]!r}", frame.offset + 1)


def _edc_code(fields: _Fields, index: int) -> str:
    code = fields.text(index) or "00"
    if code not in table.EDC_CODES:
        raise RemoteProtocolError(f"unknown EDC type {code[:8]!r}", fields.offset(index))
    return code
