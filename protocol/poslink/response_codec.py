"""Encoding and decoding of the POSLink responses B01, R01 and R03.

A response frame is ``status FS cmd FS version FS code FS message FS fields…``. When the code
is not 000000 the terminal may stop after the message, so the decoders only read the body of
successful responses. Positions come from :data:`protocol.poslink.fields.FIELDS`.
"""

from __future__ import annotations

from ..errors import LocalProtocolError, RemoteProtocolError
from . import fields as table
from .framing import US, Frame, encode_frame
from .messages import (
    DEFAULT_VERSION,
    RESPONSE_COMMANDS,
    BatchCloseResponse,
    EdcTotal,
    HostInformation,
    JournalEntry,
    LocalDetailReportResponse,
    LocalTotalReportResponse,
    Response,
    ResponseStatus,
    _encode_text,
    _Fields,
    _join,
    _number,
    _pick,
    _text,
    mask_pan,
)

_HEADER = 5  # status, command, version, code, message


# --------------------------------------------------------------------------- encode


def encode_response(response: Response, version: str = DEFAULT_VERSION) -> bytes:
    """The complete frame for ``response`` (terminal side)."""
    command = RESPONSE_COMMANDS[type(response)]
    status = response.status
    header = [
        b"0",
        command.encode(),
        _encode_text(version, "version"),
        status.code.encode(),
        _encode_text(status.message, "response message"),
    ]
    if not status.ok:
        return encode_frame(header)
    if isinstance(response, BatchCloseResponse):
        body = _encode_b01(response)
    elif isinstance(response, LocalTotalReportResponse):
        body = _encode_r01(response)
    else:
        body = _encode_r03(response)
    return encode_frame(header + body)


def _host(host: HostInformation) -> bytes:
    return _join([getattr(host, name) for name in table.HOST_SUBFIELDS], US)


def _by_edc(totals: tuple[EdcTotal, ...]) -> dict[str, EdcTotal]:
    found: dict[str, EdcTotal] = {}
    for total in totals:
        if total.edc in found:
            raise LocalProtocolError(f"EDC group {total.edc} listed twice")
        found[total.edc] = total
    return found


def _encode_b01(response: BatchCloseResponse) -> list[bytes]:
    groups = _by_edc(response.totals)
    counts = "=".join(str(groups[e].count if e in groups else 0) for e in table.EDC_ORDER)
    amounts = "=".join(str(groups[e].amount if e in groups else 0) for e in table.EDC_ORDER)
    return [
        _host(response.host),
        counts.encode(),
        amounts.encode(),
        _encode_text(response.timestamp, "timestamp"),
        _encode_text(response.terminal_id, "terminal id"),
        _encode_text(response.merchant_id, "merchant id"),
    ]


def _encode_r01(response: LocalTotalReportResponse) -> list[bytes]:
    groups = _by_edc(response.totals)
    body = [response.edc_type.encode()]
    for edc in table.EDC_ORDER:
        values = ["0"] * table.R01_WIDTH[edc]
        total = groups.get(edc, EdcTotal(edc))
        sale_count, sale_amount, return_count, return_amount = table.R01_LAYOUT[edc]
        values[sale_count], values[sale_amount] = str(total.count), str(total.amount)
        values[return_count] = str(total.refund_count)
        values[return_amount] = str(total.refund_amount)
        body.append(_join(values, US))
    return body


def _encode_r03(response: LocalDetailReportResponse) -> list[bytes]:
    entry = response.entry
    head = [
        _host(HostInformation()),
        str(response.total_records).encode(),
        str(response.record_number).encode(),
    ]
    if entry is None:
        return head
    edc_code = table.EDC_BY_NAME.get(entry.edc, "00")
    txn_code = next(
        (c for c, n in table.TRANSACTION_TYPES.items() if n == entry.transaction_type), "00"
    )
    amount = _join([str(entry.amount), "0", "0", "0", "0", "0", "", ""], US)
    account = _join([entry.masked_pan, entry.entry_mode, "", "", "", "", entry.card_type, ""], US)
    trace = _join([entry.transaction_number, entry.reference_number, entry.timestamp], US)
    return [*head, edc_code.encode(), txn_code.encode(), b"", amount, account, trace]


# --------------------------------------------------------------------------- decode


def decode_response(frame: Frame, expected: str | None = None) -> Response:
    """Decode a response frame (cash-register side).

    :param expected: the command we are waiting for (``B01``, ``R01``, ``R03``), if any
    :raises RemoteProtocolError: unknown or unexpected command, or a malformed field
    """
    fields = _Fields(frame, header=_HEADER)
    if len(fields.header) < _HEADER:
        raise RemoteProtocolError(
            f"response header has {len(fields.header)} fields, expected 5", frame.offset + 1
        )
    command = _text(fields.header[1], frame.offset + fields.header_offsets[1])
    if expected is not None and command != expected:
        raise RemoteProtocolError(
            f"expected {expected}, got {command[:8]!r}", frame.offset + fields.header_offsets[1]
        )
    status = _status(fields, frame)
    if command == "B01":
        return _decode_b01(fields, status) if status.ok else BatchCloseResponse(status)
    if command == "R01":
        return _decode_r01(fields, status) if status.ok else LocalTotalReportResponse(status)
    if command == "R03":
        return _decode_r03(fields, status) if status.ok else LocalDetailReportResponse(status)
    raise RemoteProtocolError(f"unsupported response command {command[:8]!r}", frame.offset + 1)


def _status(fields: _Fields, frame: Frame) -> ResponseStatus:
    offset = frame.offset + fields.header_offsets[3]
    code = _text(fields.header[3], offset)
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        raise RemoteProtocolError(f"response code must be six digits, got {code[:12]!r}", offset)
    message, _ = mask_pan(_text(fields.header[4], frame.offset + fields.header_offsets[4]))
    return ResponseStatus(code, message)


def _host_info(fields: _Fields, index: int) -> HostInformation:
    parts = fields.subfields(index)
    values = [mask_pan(_pick(parts, i))[0] for i in range(len(table.HOST_SUBFIELDS))]
    return HostInformation(*values)


def _decode_b01(fields: _Fields, status: ResponseStatus) -> BatchCloseResponse:
    count_at = table.position("B01", "total_count")
    amount_at = table.position("B01", "total_amount")
    counts = fields.text(count_at).split("=")
    amounts = fields.text(amount_at).split("=")
    totals = []
    for i, edc in enumerate(table.EDC_ORDER):
        count = _number(_pick(counts, i), f"B01 {edc} count", fields.offset(count_at))
        amount = _number(_pick(amounts, i), f"B01 {edc} amount", fields.offset(amount_at))
        if count or amount:
            totals.append(EdcTotal(edc, count, amount))
    return BatchCloseResponse(
        status=status,
        host=_host_info(fields, table.position("B01", "host_information")),
        totals=tuple(totals),
        timestamp=_timestamp(
            fields.text(table.position("B01", "timestamp")),
            fields.offset(table.position("B01", "timestamp")),
        ),
        terminal_id=mask_pan(fields.text(table.position("B01", "terminal_id")))[0],
        merchant_id=mask_pan(fields.text(table.position("B01", "merchant_id")))[0],
    )


def _decode_r01(fields: _Fields, status: ResponseStatus) -> LocalTotalReportResponse:
    edc_at = table.position("R01", "edc_type")
    edc_type = fields.text(edc_at) or "00"
    if edc_type not in table.EDC_CODES:
        raise RemoteProtocolError(f"unknown EDC type {edc_type[:8]!r}", fields.offset(edc_at))
    totals = []
    for edc in table.EDC_ORDER:
        index = table.position("R01", f"{edc}_totals")
        parts = fields.subfields(index)
        where = fields.offset(index)
        values = [
            _number(_pick(parts, p), f"R01 {edc} totals", where) for p in table.R01_LAYOUT[edc]
        ]
        if any(values):
            totals.append(EdcTotal(edc, *values))
    return LocalTotalReportResponse(status, edc_type, tuple(totals))


def _decode_r03(fields: _Fields, status: ResponseStatus) -> LocalDetailReportResponse:
    def at(name: str) -> int:
        return table.position("R03", name)

    total = fields.number(at("total_records"), "R03 total records", width=4)
    record = fields.number(at("record_number"), "R03 record number", width=4)
    if total == 0 or len(fields.values) <= at("edc_type"):
        return LocalDetailReportResponse(status, total, record, None)
    edc_code = fields.text(at("edc_type"))
    txn_code = fields.text(at("transaction_type"))
    account = fields.subfields(at("account_information"))
    masked_pan, masked = mask_pan(_pick(account, 0))
    trace = fields.subfields(at("trace_information"))
    entry = JournalEntry(
        record_number=record,
        edc=table.EDC_CODES.get(edc_code, f"edc_{edc_code[:4]}"),
        transaction_type=table.TRANSACTION_TYPES.get(txn_code, f"type_{txn_code[:4]}"),
        amount=fields.number(at("amount_information"), "R03 approved amount", sub=0),
        masked_pan=masked_pan,
        card_type=mask_pan(_pick(account, 6))[0],
        entry_mode=mask_pan(_pick(account, 1))[0],
        transaction_number=mask_pan(_pick(trace, 0))[0],
        reference_number=mask_pan(_pick(trace, 1))[0],
        timestamp=_timestamp(_pick(trace, 2), fields.offset(at("trace_information"))),
        pan_masked_by_decoder=masked,
    )
    return LocalDetailReportResponse(status, total, record, entry)


def _timestamp(text: str, offset: int) -> str:
    """A YYYYMMDDhhmmss stamp, checked as a date so that no other digit run hides here."""
    if text == "":
        return ""
    ok = text.isascii() and text.isdigit() and len(text) == 14
    if ok:
        month, day = int(text[4:6]), int(text[6:8])
        hour, minute, second = int(text[8:10]), int(text[10:12]), int(text[12:14])
        ok = 1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61
    if not ok:
        raise RemoteProtocolError(f"timestamp must be YYYYMMDDhhmmss, got {text[:20]!r}", offset)
    return text
