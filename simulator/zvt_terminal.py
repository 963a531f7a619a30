"""A simulated ZVT payment terminal: the terminal role of :mod:`protocol.zvt` over a transport.

It answers Registration, Status Enquiry, Send Turnover Totals (the open batch, which stays
open) and End-of-Day (the batch's totals, then :meth:`Scenario.close_batch`), sending
Intermediate Status (when the ECR asked for it at registration, PA00P015 §2.1) and the
receipt as Print Lines (when the ECR took over administration receipts with Print Lines).
The faults in ``scenario.misbehaviour`` are injected at the points a real line or terminal
would produce them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque

from settleguard.protocol.errors import ProtocolError
from settleguard.protocol.totals import ZVT_BUCKETS
from settleguard.protocol.zvt.connection import (
    CommandReceived,
    PtState,
    TerminalConnection,
    TimedOut,
)
from settleguard.protocol.zvt.messages import (
    CONFIG_ECR_PRINT_LINES,
    CONFIG_ECR_PRINTS_ADMIN,
    CONFIG_INTERMEDIATE_STATUS,
    Abort,
    Completion,
    EndOfDay,
    IndividualTotals,
    IntermediateStatus,
    PrintLine,
    PtCommand,
    Registration,
    Response,
    StatusEnquiry,
    StatusInformation,
    TurnoverTotals,
)
from settleguard.protocol.zvt.result_codes import FUNCTION_NOT_POSSIBLE
from settleguard.protocol.zvt.transport import ApduReceived, SerialLink, TcpLink
from settleguard.simulator.scenario import Scenario
from settleguard.simulator.transport import FaultyWriter, SocketTransport, Transport

SOFTWARE_VERSION = "settleguard-sim 1.0"


class ZvtTerminal:
    """The terminal's application logic: what to answer and send for each ECR command."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.config_byte = 0
        self.currency_requested = False

    def plan(self, command: object) -> tuple[Response, list[PtCommand], float]:
        """Our answer to ``command``, the commands to send after it, and a pause before them."""
        faults = self.scenario.misbehaviour
        # the fault aborts the next real job; registration is only the preamble to it
        if faults.abort_code is not None and not isinstance(command, Registration):
            code, faults.abort_code = faults.abort_code, None
            return Response(), [Abort(code)], 0.0
        if isinstance(command, Registration):
            return self._registration(command)
        if isinstance(command, StatusEnquiry):
            return (
                Response(),
                [Completion(software_version=SOFTWARE_VERSION, terminal_status=0)],
                0.0,
            )
        if isinstance(command, TurnoverTotals | EndOfDay):
            if command.password != self.scenario.password:
                return Response(FUNCTION_NOT_POSSIBLE), [], 0.0
            return self._totals(end_of_day=isinstance(command, EndOfDay))
        return Response(FUNCTION_NOT_POSSIBLE), [], 0.0

    def _registration(self, command: Registration) -> tuple[Response, list[PtCommand], float]:
        if command.password != self.scenario.password:
            return Response(FUNCTION_NOT_POSSIBLE), [], 0.0
        self.config_byte = command.config_byte
        self.currency_requested = command.currency is not None
        currency = int(self.scenario.currency) if self.currency_requested else None
        completion = Completion(
            status_byte=0, terminal_id=self.scenario.terminal_id, currency=currency
        )
        return Response(), [completion], 0.0

    def _totals(self, *, end_of_day: bool) -> tuple[Response, list[PtCommand], float]:
        scenario = self.scenario
        messages: list[PtCommand] = []
        if self.config_byte & CONFIG_INTERMEDIATE_STATUS:
            messages.append(IntermediateStatus(0x04 if end_of_day else 0x17))
        status = self.status_information()
        messages.append(status)
        wants_lines = CONFIG_ECR_PRINTS_ADMIN | CONFIG_ECR_PRINT_LINES
        if self.config_byte & wants_lines == wants_lines:
            messages.extend(self._receipt(status, end_of_day))
        messages.append(Completion())
        pause = scenario.misbehaviour.eod_silence_s if end_of_day else 0.0
        if end_of_day:
            scenario.misbehaviour.eod_silence_s = 0.0
            scenario.close_batch()
        return Response(), messages, pause

    def status_information(self) -> StatusInformation:
        """Bitmaps 04, 60, 29, 0C/0D (and 49 if the ECR registered a currency) of the batch."""
        sums = {name: [0, 0] for name in ZVT_BUCKETS}
        for bucket in self.scenario.buckets:
            entry = sums[bucket.name if bucket.name in sums else "other"]
            entry[0] += bucket.count + bucket.refund_count
            entry[1] += bucket.amount - bucket.refund_amount
        buckets = tuple((count, amount) for count, amount in sums.values())
        now = time.localtime()
        return StatusInformation(
            result_code=0,
            amount=sum(amount for _, amount in buckets),
            totals=IndividualTotals(
                self.scenario.receipt_start % 10000, self.scenario.receipt_end % 10000, buckets
            ),
            time=time.strftime("%H%M%S", now),
            date=time.strftime("%m%d", now),
            terminal_id=self.scenario.terminal_id,
            currency=int(self.scenario.currency) if self.currency_requested else None,
        )

    def _receipt(self, status: StatusInformation, end_of_day: bool) -> list[PtCommand]:
        title = "KASSENSCHNITT" if end_of_day else "UMSATZ-SUMMEN"
        lines = [PrintLine(0x40, title), PrintLine(0x00, f"TID {self.scenario.terminal_id}")]
        for name, (count, amount) in zip(
            ZVT_BUCKETS, status.totals.buckets if status.totals else (), strict=False
        ):
            if count:
                lines.append(PrintLine(0x00, f"{name:<10}{count:>4} {amount / 100:>12.2f}"))
        lines.append(PrintLine(0x81, f"TOTAL {status.amount or 0:>20}"))
        return list(lines)


def serve_zvt(
    transport: Transport,
    scenario: Scenario,
    stop_event: threading.Event,
    *,
    link: SerialLink | TcpLink | None = None,
) -> None:
    """Serve ZVT until ``stop_event`` is set: the serial block protocol by default, bare APDUs
    when given a :class:`TcpLink` (NAK and dropped-ACK faults then have no meaning)."""
    faults = scenario.misbehaviour
    writer = FaultyWriter(transport, faults)
    link = link or SerialLink()
    serial = isinstance(link, SerialLink)
    pt = TerminalConnection()
    terminal = ZvtTerminal(scenario)
    pending: deque[PtCommand] = deque()
    send_after = 0.0
    while not stop_event.is_set():
        link.receive_data(transport.read(0.01))
        now = time.monotonic()
        link.tick(now)
        pt.tick(now)
        while (event := link.next_event()) is not None:
            if not isinstance(event, ApduReceived):
                continue
            if serial and faults.nak_frames > 0:
                faults.nak_frames -= 1
                link.reject_frame()  # type: ignore[union-attr]
            elif serial and faults.drop_acks > 0:
                faults.drop_acks -= 1
                link.withhold_ack()  # type: ignore[union-attr]  # as if the frame was lost on the line: the ECR repeats
            else:
                _receive(pt, event.apdu)
        while (pt_event := pt.next_event()) is not None:
            if isinstance(pt_event, CommandReceived):
                response, messages, pause = terminal.plan(pt_event.command)
                pt.send(response)
                pending = deque(messages) if response.positive else deque()
                send_after = now + pause
            elif isinstance(pt_event, TimedOut):
                pending.clear()
        if pending and pt.state is PtState.MASTER and now >= send_after:
            pt.send(pending.popleft())
        for apdu in pt.apdus_to_send():
            link.send_apdu(apdu)
        out = link.data_to_send()
        if not serial and out:
            writer.write_frame(out)
        elif len(out) > 2:
            writer.write_frame(out)
        elif out:
            writer.write_raw(out)


def _receive(pt: TerminalConnection, apdu: bytes) -> None:
    try:
        pt.receive_apdu(apdu)
    except ProtocolError:
        pass  # a malformed command is left unanswered; the ECR's T3 reports it


def serve_zvt_tcp(listener: socket.socket, scenario: Scenario, stop_event: threading.Event) -> None:
    """Serve ZVT over TCP/IP (PA00P016 §4) on a listening socket, one ECR at a time.

    :param listener: a bound, listening socket (the caller picks the address, e.g. port 20007)
    """
    listener.settimeout(0.05)
    while not stop_event.is_set():
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        transport = SocketTransport(connection)
        try:
            serve_zvt(transport, scenario, _until_closed(transport, stop_event), link=TcpLink())
        finally:
            transport.close()


def _until_closed(transport: SocketTransport, stop_event: threading.Event) -> threading.Event:
    """An event that fires when the server stops or the ECR hangs up."""
    done = threading.Event()

    def watch() -> None:
        while not (stop_event.is_set() or transport.closed):
            stop_event.wait(0.05)
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    return done
