"""Typed ZVT commands and responses for the flows settleguard uses, both directions.

Each class is a frozen, slotted dataclass with ``to_apdu()`` (encode) and ``from_apdu()``
(decode, raising :class:`RemoteProtocolError` with the offset inside the APDU data block).
Sections refer to PA00P015 (commands, bitmaps, result codes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ..totals import ZVT_BUCKETS, BucketTotal, TerminalTotals, TotalsKind
from .apdu import (
    Apdu,
    bcd_decode,
    bcd_digits,
    bcd_encode,
    decode_var,
    encode_bitmap,
    encode_var,
    password_bytes,
    read_bitmap,
)
from .tlv import TlvObject, decode_tlv, encode_tlv, text_lines

# Control fields (CLASS, INSTR)
REGISTRATION = (0x06, 0x00)
STATUS_ENQUIRY = (0x05, 0x01)
TURNOVER_TOTALS = (0x06, 0x10)
END_OF_DAY = (0x06, 0x50)
STATUS_INFORMATION = (0x04, 0x0F)
INTERMEDIATE_STATUS = (0x04, 0xFF)
PRINT_LINE = (0x06, 0xD1)
PRINT_TEXT_BLOCK = (0x06, 0xD3)
COMPLETION = (0x06, 0x0F)
ABORT = (0x06, 0x1E)

#: Registration config byte bits (PA00P015 §2.1, table 1).
CONFIG_ECR_PRINTS_PAYMENT = 0x02
CONFIG_ECR_PRINTS_ADMIN = 0x04
CONFIG_INTERMEDIATE_STATUS = 0x08
CONFIG_ECR_PRINT_LINES = 0x80


def _positive(apdu: Apdu) -> bool:
    """``80 00`` is positive; so is ``84 00`` (PA00P016 §5.2.3)."""
    return apdu.control in ((0x80, 0x00), (0x84, 0x00))


def is_response(apdu: Apdu) -> bool:
    """True for a response APDU (``80 xx`` / ``84 xx``) rather than a command."""
    return apdu.cls in (0x80, 0x84)


# -- ECR -> PT commands ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Registration:
    """Registration ``06 00`` (PA00P015 §2.1): password, config byte, optional currency."""

    password: str | None = None
    config_byte: int = CONFIG_INTERMEDIATE_STATUS
    currency: int | None = None  # ISO 4217 numeric, e.g. 978; PT then echoes it in 49

    def to_apdu(self) -> Apdu:
        """Encode; the currency is two BCD bytes without a bitmap number."""
        data = password_bytes(self.password) + bytes((self.config_byte & 0xFF,))
        if self.currency is not None:
            data += bcd_encode(self.currency, 2)
        return Apdu(*REGISTRATION, data)

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Registration:
        """Decode; trailing service byte / TLV container are accepted and ignored."""
        if len(apdu.data) < 4:
            raise RemoteProtocolError("registration needs password and config byte", len(apdu.data))
        currency = bcd_decode(apdu.data[4:6], 4) if len(apdu.data) >= 6 else None
        return cls(bcd_digits(apdu.data[:3]), apdu.data[3], currency)


@dataclass(frozen=True, slots=True)
class StatusEnquiry:
    """Status Enquiry ``05 01`` (PA00P015 §2.56), optionally with a password."""

    password: str | None = None

    def to_apdu(self) -> Apdu:
        """Encode (no data when there is no password)."""
        return Apdu(*STATUS_ENQUIRY, password_bytes(self.password) if self.password else b"")

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> StatusEnquiry:
        """Decode."""
        return cls(bcd_digits(apdu.data[:3]) if len(apdu.data) >= 3 else None)


@dataclass(frozen=True, slots=True)
class TurnoverTotals:
    """Send Turnover Totals ``06 10`` (PA00P015 §2.43): totals without closing the batch."""

    password: str | None = None

    def to_apdu(self) -> Apdu:
        """Encode: ``06 10 03 <password>``."""
        return Apdu(*TURNOVER_TOTALS, password_bytes(self.password))

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> TurnoverTotals:
        """Decode."""
        return cls(_password_field(apdu))


@dataclass(frozen=True, slots=True)
class EndOfDay:
    """End-of-Day ``06 50`` (PA00P015 §2.16): close the batch and send it to the host."""

    password: str | None = None

    def to_apdu(self) -> Apdu:
        """Encode: ``06 50 03 <password>``."""
        return Apdu(*END_OF_DAY, password_bytes(self.password))

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> EndOfDay:
        """Decode."""
        return cls(_password_field(apdu))


def _password_field(apdu: Apdu) -> str:
    if len(apdu.data) < 3:
        raise RemoteProtocolError("password (3 BCD bytes) missing", len(apdu.data))
    return bcd_digits(apdu.data[:3])


EcrCommand = Registration | StatusEnquiry | TurnoverTotals | EndOfDay

ECR_COMMANDS: dict[tuple[int, int], type[EcrCommand]] = {
    REGISTRATION: Registration,
    STATUS_ENQUIRY: StatusEnquiry,
    TURNOVER_TOTALS: TurnoverTotals,
    END_OF_DAY: EndOfDay,
}


# -- PT -> ECR commands ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndividualTotals:
    """Bitmap ``60`` (PA00P015 §3.1.3): receipt range and seven (count, amount) pairs."""

    receipt_start: int
    receipt_end: int
    buckets: tuple[tuple[int, int], ...]  # in ZVT_BUCKETS order

    SIZE = 4 + 7 * 7

    def encode(self) -> bytes:
        """The value of bitmap 60 (without its LLLVAR prefix)."""
        if len(self.buckets) != len(ZVT_BUCKETS):
            raise LocalProtocolError("bitmap 60 needs exactly seven buckets")
        out = bcd_encode(self.receipt_start, 2) + bcd_encode(self.receipt_end, 2)
        for count, amount in self.buckets:
            if not 0 <= count <= 0xFF:
                raise LocalProtocolError(f"bucket count {count} does not fit one byte")
            out += bytes((count,)) + bcd_encode(amount, 6)
        return out

    @classmethod
    def decode(cls, value: bytes, offset: int = 0) -> IndividualTotals:
        """Decode the value of bitmap 60; ``offset`` locates it for error messages."""
        if len(value) != cls.SIZE:
            raise RemoteProtocolError(f"bitmap 60 has {len(value)} bytes, expected 53", offset)
        buckets = []
        for index in range(7):
            start = 4 + index * 7
            amount = bcd_decode(value[start + 1 : start + 7], offset + start + 1)
            buckets.append((value[start], amount))
        return cls(
            bcd_decode(value[:2], offset), bcd_decode(value[2:4], offset + 2), tuple(buckets)
        )


@dataclass(frozen=True, slots=True)
class StatusInformation:
    """Status-Information ``04 0F`` after End-of-Day / Send Turnover Totals (§3.1.3)."""

    result_code: int | None = None
    amount: int | None = None  # 04, total of the batch
    totals: IndividualTotals | None = None  # 60
    trace: int | None = None  # 0B
    time: str | None = None  # 0C, HHMMSS
    date: str | None = None  # 0D, MMDD
    date_full: str | None = None  # AA, YYMMDD
    terminal_id: str | None = None  # 29, 8 digits
    currency: int | None = None  # 49
    receipt_no: int | None = None  # 87
    turnover_no: int | None = None  # 88
    tlv: tuple[TlvObject, ...] = ()

    def to_apdu(self) -> Apdu:
        """Encode the fields that are set, result code first."""
        parts = [
            (0x27, None if self.result_code is None else bytes((self.result_code,))),
            (0x04, None if self.amount is None else bcd_encode(self.amount, 6)),
            (0x60, None if self.totals is None else self.totals.encode()),
            (0x0B, None if self.trace is None else bcd_encode(self.trace, 3)),
            (0x0C, None if self.time is None else bytes.fromhex(self.time)),
            (0x0D, None if self.date is None else bytes.fromhex(self.date)),
            (0xAA, None if self.date_full is None else bytes.fromhex(self.date_full)),
            (0x29, None if self.terminal_id is None else _tid_bytes(self.terminal_id)),
            (0x49, None if self.currency is None else bcd_encode(self.currency, 2)),
            (0x87, None if self.receipt_no is None else bcd_encode(self.receipt_no, 2)),
            (0x88, None if self.turnover_no is None else bcd_encode(self.turnover_no, 3)),
            (0x06, encode_tlv(self.tlv) if self.tlv else None),
        ]
        try:
            data = b"".join(encode_bitmap(bmp, value) for bmp, value in parts if value is not None)
        except ValueError as exc:  # bytes.fromhex on a malformed date/time/TID string
            raise LocalProtocolError(f"status information field: {exc}") from exc
        return Apdu(*STATUS_INFORMATION, data)

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> StatusInformation:
        """Decode; bitmaps we do not use are skipped by their length class (PA00P015 §13)."""
        fields = bitmap_fields(apdu.data)

        def number(bmp: int) -> int | None:
            return bcd_decode(*fields[bmp]) if bmp in fields else None

        def digits(bmp: int) -> str | None:
            return bcd_digits(*fields[bmp]) if bmp in fields else None

        totals = IndividualTotals.decode(*fields[0x60]) if 0x60 in fields else None
        return cls(
            result_code=fields[0x27][0][0] if 0x27 in fields else None,
            amount=number(0x04),
            totals=totals,
            trace=number(0x0B),
            time=digits(0x0C),
            date=digits(0x0D),
            date_full=digits(0xAA),
            terminal_id=digits(0x29),
            currency=number(0x49),
            receipt_no=number(0x87),
            turnover_no=number(0x88),
            tlv=decode_tlv(fields[0x06][0]) if 0x06 in fields else (),
        )


def _looks_like_lllvar(data: bytes) -> bool:
    if len(data) < 4 or any(b & 0xF0 != 0xF0 or b & 0x0F > 9 for b in data[:3]):
        return False
    size = (data[0] & 0x0F) * 100 + (data[1] & 0x0F) * 10 + (data[2] & 0x0F)
    return 3 + size < len(data)


def _tid_bytes(terminal_id: str) -> bytes:
    """A terminal id of eight digits as four BCD bytes (bitmap 29)."""
    if len(terminal_id) != 8 or not terminal_id.isascii() or not terminal_id.isdigit():
        raise LocalProtocolError(f"terminal id must be eight digits, got {terminal_id!r}")
    return bytes.fromhex(terminal_id)


def bitmap_fields(data: bytes, start: int = 0) -> dict[int, tuple[bytes, int]]:
    """Bitmaps of a data block as ``{number: (value, offset_of_value)}`` (last one wins).

    :raises RemoteProtocolError: unknown bitmap or truncated value
    """
    fields: dict[int, tuple[bytes, int]] = {}
    offset = start
    while offset < len(data):
        bmp, value, end = read_bitmap(data, offset)
        fields[bmp] = (value, end - len(value))
        offset = end
    return fields


@dataclass(frozen=True, slots=True)
class IntermediateStatus:
    """Intermediate Status-Information ``04 FF`` (PA00P015 §3.7).

    ``timeout_minutes`` (one BCD byte) replaces T4 while the command runs; ``texts`` are the
    display lines of TLV tag 24.
    """

    status: int
    timeout_minutes: int | None = None
    texts: tuple[str, ...] = ()

    def to_apdu(self) -> Apdu:
        """Encode; a text container forces the timeout byte to be present (§3.7)."""
        data = bytes((self.status,))
        if self.timeout_minutes is not None or self.texts:
            data += bcd_encode(self.timeout_minutes or 0, 1)
        if self.texts:
            lines = tuple(TlvObject(0x07, t.encode("cp437", errors="replace")) for t in self.texts)
            data += encode_bitmap(0x06, encode_tlv([TlvObject(0x24, b"", lines)]))
        return Apdu(*INTERMEDIATE_STATUS, data)

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> IntermediateStatus:
        """Decode."""
        data = apdu.data
        if not data:
            raise RemoteProtocolError("intermediate status without its status byte", 0)
        timeout = bcd_decode(data[1:2], 1) if len(data) >= 2 else None
        texts: tuple[str, ...] = ()
        if len(data) > 2:
            fields = bitmap_fields(data, 2)
            if 0x06 in fields:
                texts = tuple(text_lines(decode_tlv(fields[0x06][0])))
        return cls(data[0], timeout, texts)


@dataclass(frozen=True, slots=True)
class PrintLine:
    """Print Line ``06 D1`` (PA00P015 §3.5): one attribute byte and the text (no CR LF)."""

    attribute: int
    text: str

    @property
    def last_line(self) -> bool:
        """Attribute ``1xxx xxxx`` other than ``80`` (and not ``FF`` linefeeds) ends a receipt."""
        return self.attribute & 0x80 != 0 and self.attribute not in (0x80, 0xFF)

    def to_apdu(self) -> Apdu:
        """Encode (text in the 8-bit ZVT character set, CP437)."""
        return Apdu(*PRINT_LINE, bytes((self.attribute,)) + self.text.encode("cp437", "replace"))

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> PrintLine:
        """Decode; an ``FF`` attribute carries a linefeed count, kept as an empty line."""
        if not apdu.data:
            raise RemoteProtocolError("print line without its attribute byte", 0)
        attribute = apdu.data[0]
        text = "" if attribute == 0xFF else apdu.data[1:].decode("cp437")
        return cls(attribute, text)


@dataclass(frozen=True, slots=True)
class PrintTextBlock:
    """Print Text-Block ``06 D3`` (PA00P015 §3.6): text lines in TLV tag 25."""

    lines: tuple[str, ...]
    last_block: bool = True

    def to_apdu(self) -> Apdu:
        """Encode; the last block of a receipt ends with attribute tag 09 = ``81`` (§3.6)."""
        items = [TlvObject(0x07, line.encode("cp437", "replace")) for line in self.lines]
        if self.last_block:
            items.append(TlvObject(0x09, b"\x81"))
        container = encode_tlv([TlvObject(0x25, b"", tuple(items))])
        return Apdu(*PRINT_TEXT_BLOCK, encode_bitmap(0x06, container))

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> PrintTextBlock:
        """Decode."""
        fields = bitmap_fields(apdu.data)
        if 0x06 not in fields:
            raise RemoteProtocolError("print text block without a TLV container", 0)
        objects = decode_tlv(fields[0x06][0])
        block = next((o for o in objects if o.tag == 0x25), None)
        attribute = block.find(0x09) if block else None
        last = bool(
            attribute and attribute.value[:1] not in (b"", b"\x80") and attribute.value[0] & 0x80
        )
        return cls(tuple(text_lines(objects)), last)


@dataclass(frozen=True, slots=True)
class Completion:
    """Completion ``06 0F`` (PA00P015 §3.2, §2.1, §2.56.5).

    After a Status Enquiry the data block is positional: ``[LLLVAR software version]
    <terminal status byte> [06 TLV]``; after every other command it is a bitmap list.
    """

    result_code: int | None = None
    status_byte: int | None = None  # 19, after Registration
    terminal_id: str | None = None  # 29
    currency: int | None = None  # 49
    software_version: str | None = None  # Status Enquiry only
    terminal_status: int | None = None  # Status Enquiry only

    def to_apdu(self) -> Apdu:
        """Encode (positional form when ``terminal_status`` is set)."""
        if self.terminal_status is not None:
            data = b""
            if self.software_version is not None:
                data += encode_var(self.software_version.encode("ascii", "replace"), 3)
            return Apdu(*COMPLETION, data + bytes((self.terminal_status,)))
        parts = [
            (0x27, None if self.result_code is None else bytes((self.result_code,))),
            (0x19, None if self.status_byte is None else bytes((self.status_byte,))),
            (0x29, None if self.terminal_id is None else _tid_bytes(self.terminal_id)),
            (0x49, None if self.currency is None else bcd_encode(self.currency, 2)),
        ]
        return Apdu(*COMPLETION, b"".join(encode_bitmap(b, v) for b, v in parts if v is not None))

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, after_status_enquiry: bool = False) -> Completion:
        """Decode."""
        data = apdu.data
        if after_status_enquiry and data:
            version: str | None = None
            offset = 0
            # status code F0 ("reconciliation required", §11) looks like an LLLVAR start:
            # only read a version when a whole LLLVAR plus the status byte is present
            if _looks_like_lllvar(data):
                raw, offset = decode_var(data, 0, 3)
                version = raw.decode("ascii", "replace")
            if offset >= len(data):
                raise RemoteProtocolError("status enquiry completion lacks the status code", offset)
            # anything after the status code is the optional TLV container: not needed here
            return cls(software_version=version, terminal_status=data[offset])
        fields = bitmap_fields(data)
        return cls(
            result_code=fields[0x27][0][0] if 0x27 in fields else None,
            status_byte=fields[0x19][0][0] if 0x19 in fields else None,
            terminal_id=bcd_digits(*fields[0x29]) if 0x29 in fields else None,
            currency=bcd_decode(*fields[0x49]) if 0x49 in fields else None,
        )


@dataclass(frozen=True, slots=True)
class Abort:
    """Abort ``06 1E`` (PA00P015 §3.3): the command failed with ``result_code``."""

    result_code: int

    def to_apdu(self) -> Apdu:
        """Encode."""
        return Apdu(*ABORT, bytes((self.result_code,)))

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Abort:
        """Decode (a trailing TLV container is ignored)."""
        if not apdu.data:
            raise RemoteProtocolError("abort without its result code", 0)
        return cls(apdu.data[0])


PtCommand = IntermediateStatus | StatusInformation | PrintLine | PrintTextBlock | Completion | Abort

PT_COMMANDS: dict[tuple[int, int], type[PtCommand]] = {
    INTERMEDIATE_STATUS: IntermediateStatus,
    STATUS_INFORMATION: StatusInformation,
    PRINT_LINE: PrintLine,
    PRINT_TEXT_BLOCK: PrintTextBlock,
    COMPLETION: Completion,
    ABORT: Abort,
}


@dataclass(frozen=True, slots=True)
class Response:
    """A response APDU ``80 00`` / ``84 xx`` (PA00P016 §5.2.3)."""

    result_code: int = 0
    data: bytes = field(default=b"")

    @property
    def positive(self) -> bool:
        """``80 00`` and ``84 00`` are positive."""
        return self.result_code == 0

    def to_apdu(self) -> Apdu:
        """Encode: ``80 00`` when positive, else ``84 <code>``."""
        return Apdu(0x80 if self.result_code == 0 else 0x84, self.result_code, self.data)

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Response:
        """Decode."""
        return cls(0 if _positive(apdu) else apdu.instr, apdu.data)


def totals_from_status(
    info: StatusInformation,
    kind: TotalsKind,
    *,
    year: int | None = None,
    print_lines: tuple[str, ...] = (),
) -> TerminalTotals:
    """Turn a totals Status-Information into protocol-neutral :class:`TerminalTotals`.

    :param year: the year to complete an ``MMDD`` date with (ZVT bitmap 0D has none)
    :raises RemoteProtocolError: the terminal reported a non-zero result code
    """
    if info.result_code not in (None, 0):
        raise RemoteProtocolError(f"status information carries result code {info.result_code:02X}")
    buckets: tuple[BucketTotal, ...] = ()
    if info.totals is not None:
        buckets = tuple(
            BucketTotal(name, count, amount)
            for name, (count, amount) in zip(ZVT_BUCKETS, info.totals.buckets, strict=True)
        )
    return TerminalTotals(
        protocol="zvt",
        kind=kind,
        terminal_id=info.terminal_id,
        currency=None if info.currency is None else f"{info.currency:03d}",
        buckets=buckets,
        receipt_start=info.totals.receipt_start if info.totals else None,
        receipt_end=info.totals.receipt_end if info.totals else None,
        terminal_time=_terminal_time(info, year),
        total_amount_reported=info.amount,
        print_lines=print_lines,
    )


def _terminal_time(info: StatusInformation, year: int | None) -> str | None:
    if info.date_full is not None:
        date = f"20{info.date_full[:2]}-{info.date_full[2:4]}-{info.date_full[4:6]}"
    elif info.date is not None and year is not None:
        date = f"{year:04d}-{info.date[:2]}-{info.date[2:4]}"
    else:
        return None
    if info.time is None:
        return date
    return f"{date}T{info.time[:2]}:{info.time[2:4]}:{info.time[4:6]}"


def decode_pt_command(apdu: Apdu, *, after_status_enquiry: bool = False) -> PtCommand | None:
    """Decode a terminal-to-ECR command we know, or ``None`` for any other control field.

    :raises RemoteProtocolError: a known command whose data is malformed
    """
    kind = PT_COMMANDS.get(apdu.control)
    if kind is None:
        return None
    try:
        if kind is Completion:
            return Completion.from_apdu(apdu, after_status_enquiry=after_status_enquiry)
        return kind.from_apdu(apdu)
    except ProtocolError:
        raise
    except (UnicodeDecodeError, IndexError, ValueError) as exc:  # defensive: say where
        raise RemoteProtocolError(f"malformed {apdu.cls:02X} {apdu.instr:02X}: {exc}", 0) from exc
