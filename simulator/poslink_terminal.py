"""A simulated PAX terminal speaking POSLink: answers R00, R02 and B00 from a scenario.

It runs :class:`protocol.poslink.TerminalConnection` and injects the scenario's faults:
NAK the next N frames, ignore (never ACK) the next N frames, stall mid-frame, stay silent
after ACKing a BatchClose, refuse the next command with an error code, line noise and split
writes (the last three through :class:`simulator.transport.FaultyWriter`).

POSLink reports totals per EDC group, so scenario buckets named after card brands
(``girocard``, ``visa`` …) are booked as ``credit``; buckets already named ``debit``,
``ebt``, ``gift``, ``loyalty``, ``cash`` or ``check`` keep their group.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from settleguard.protocol.errors import RemoteProtocolError
from settleguard.protocol.poslink import (
    NEED_DATA,
    BatchCloseRequest,
    BatchCloseResponse,
    EdcTotal,
    HostInformation,
    JournalEntry,
    LocalDetailReportRequest,
    LocalDetailReportResponse,
    LocalTotalReportRequest,
    LocalTotalReportResponse,
    ResponseStatus,
    TerminalConnection,
)
from settleguard.protocol.poslink.fields import EDC_ORDER, RESPONSE_CODES
from settleguard.protocol.poslink.framing import NAK, Control, CorruptFrame, Frame, FrameDecoder
from settleguard.protocol.poslink.messages import Request, Response
from settleguard.simulator.scenario import Misbehaviour, Scenario
from settleguard.simulator.transport import FaultyWriter, Transport

#: ZVT-style abort codes in a scenario map to the nearest POSLink response code.
ZVT_ABORT_TO_POSLINK = {0x77: "100006", 0xF0: "100006", 0x6C: "100002"}


def edc_of(bucket_name: str) -> str:
    """The EDC group a scenario bucket is reported under."""
    return bucket_name if bucket_name in EDC_ORDER else "credit"


def scenario_totals(scenario: Scenario) -> tuple[EdcTotal, ...]:
    """The open batch of ``scenario`` grouped per EDC, in POSLink order."""
    sums: dict[str, list[int]] = {}
    for bucket in scenario.buckets:
        group = sums.setdefault(edc_of(bucket.name), [0, 0, 0, 0])
        for i, value in enumerate(
            (bucket.count, bucket.amount, bucket.refund_count, bucket.refund_amount)
        ):
            group[i] += value
    return tuple(EdcTotal(edc, *sums[edc]) for edc in EDC_ORDER if edc in sums and any(sums[edc]))


def scenario_journal(scenario: Scenario) -> list[JournalEntry]:
    """One synthetic journal record per transaction; amounts add up to the bucket totals."""
    entries: list[JournalEntry] = []
    for bucket in scenario.buckets:
        for kind, count, amount in (
            ("sale", bucket.count, bucket.amount),
            ("return", bucket.refund_count, bucket.refund_amount),
        ):
            for i in range(count):
                share = amount // count + (amount % count if i == count - 1 else 0)
                number = len(entries)
                entries.append(
                    JournalEntry(
                        record_number=number,
                        edc=edc_of(bucket.name),
                        transaction_type=kind,
                        amount=share,
                        masked_pan=f"{1000 + number % 9000:04d}",
                        card_type=bucket.name.upper()[:12],
                        entry_mode="4",
                        transaction_number=str(scenario.receipt_start + number),
                        reference_number=f"{scenario.batch_no:04d}{number:04d}",
                    )
                )
    return entries


def abort_status(code: int) -> ResponseStatus:
    """The POSLink refusal for a scenario ``abort_code`` (a POSLink code or a ZVT one)."""
    text = f"{code:06d}" if 100000 <= code <= 199999 else ZVT_ABORT_TO_POSLINK.get(code, "100002")
    known = RESPONSE_CODES.get(text)
    return ResponseStatus(text, (known.meaning if known else "ERROR").upper()[:32])


def answer(request: Request, scenario: Scenario) -> Response:
    """The terminal's response to ``request`` (B00 closes the scenario's batch)."""
    faults = scenario.misbehaviour
    if faults.abort_code is not None:
        status = abort_status(faults.abort_code)
        faults.abort_code = None
        if isinstance(request, BatchCloseRequest):
            return BatchCloseResponse(status)
        if isinstance(request, LocalTotalReportRequest):
            return LocalTotalReportResponse(status)
        return LocalDetailReportResponse(status)
    if isinstance(request, LocalTotalReportRequest):
        return LocalTotalReportResponse(totals=scenario_totals(scenario))
    if isinstance(request, LocalDetailReportRequest):
        journal = scenario_journal(scenario)
        index = request.record_number or 0
        if journal and index >= len(journal):
            return LocalDetailReportResponse(ResponseStatus("100023", "NOT FOUND"))
        entry = journal[index] if journal else None
        return LocalDetailReportResponse(
            total_records=len(journal), record_number=index, entry=entry
        )
    response = BatchCloseResponse(
        host=HostInformation("00", "OK", batch_number=str(scenario.batch_no)),
        totals=tuple(EdcTotal(t.edc, t.count, t.amount) for t in scenario_totals(scenario)),
        timestamp=datetime.now().strftime("%Y%m%d%H%M%S"),
        terminal_id=scenario.terminal_id,
        merchant_id=scenario.merchant_id,
    )
    scenario.close_batch()
    return response


def _screen(token: Frame, faults: Misbehaviour, writer: FaultyWriter) -> bool:
    """Apply the frame-level faults; True if the frame should reach the connection."""
    if faults.drop_acks > 0:
        faults.drop_acks -= 1  # swallow it: no ACK, no answer; the ECR must repeat
        return False
    if faults.nak_frames > 0:
        faults.nak_frames -= 1
        writer.write_raw(bytes([NAK]))
        return False
    return True


def serve_poslink(transport: Transport, scenario: Scenario, stop_event: threading.Event) -> None:
    """Serve POSLink on ``transport`` until ``stop_event`` is set."""
    faults = scenario.misbehaviour
    writer = FaultyWriter(transport, faults)
    splitter = FrameDecoder()
    conn = TerminalConnection()
    while not stop_event.is_set():
        data = transport.read(0.02)
        now = time.monotonic()
        splitter.feed(data)
        while (token := splitter.next_token()) is not None:
            if isinstance(token, Frame) and _screen(token, faults, writer):
                conn.receive_data(token.raw, now)
            elif isinstance(token, Control):
                conn.receive_data(bytes([token.byte]), now)
            elif isinstance(token, CorruptFrame):
                writer.write_raw(bytes([NAK]))
        conn.tick(now)
        if pending := conn.data_to_send():
            writer.write_raw(pending)
        _handle_events(conn, scenario, writer, stop_event)


def _handle_events(
    conn: TerminalConnection, scenario: Scenario, writer: FaultyWriter, stop_event: threading.Event
) -> None:
    while True:
        try:
            event = conn.next_event()
        except RemoteProtocolError:
            continue  # a malformed request: acknowledged at link level, otherwise ignored
        if event is NEED_DATA:
            return
        if isinstance(
            event, BatchCloseRequest | LocalTotalReportRequest | LocalDetailReportRequest
        ):
            if isinstance(event, BatchCloseRequest) and scenario.misbehaviour.eod_silence_s:
                # Host settlement takes time: stay silent (stop_event keeps shutdown prompt).
                stop_event.wait(scenario.misbehaviour.eod_silence_s)
                scenario.misbehaviour.eod_silence_s = 0.0
            writer.write_frame(conn.send(answer(event, scenario), time.monotonic()))
