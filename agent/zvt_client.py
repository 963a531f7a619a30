"""The agent's ZVT client: a short I/O loop around :mod:`protocol.zvt` (cash-register role).

Each request registers first (PA00P015 §2.1, asking for Intermediate Status so the terminal
keeps T4 alive), then runs the command to its Completion or Abort. Failures become
:mod:`agent.errors` with a line a technician can act on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import serial
from settleguard.agent.errors import LinkFailure, NoAnswer, TerminalAborted, TerminalProtocolError
from settleguard.protocol.errors import ProtocolError
from settleguard.protocol.totals import TerminalTotals, TotalsKind
from settleguard.protocol.zvt.connection import (
    Aborted,
    CommandAccepted,
    CommandRefused,
    EcrConnection,
    EcrEvent,
    TimedOut,
    Timers,
)
from settleguard.protocol.zvt.messages import (
    CONFIG_INTERMEDIATE_STATUS,
    Completion,
    EcrCommand,
    EndOfDay,
    IntermediateStatus,
    PrintLine,
    PrintTextBlock,
    Registration,
    StatusEnquiry,
    StatusInformation,
    TurnoverTotals,
    totals_from_status,
)
from settleguard.protocol.zvt.result_codes import describe_intermediate
from settleguard.protocol.zvt.transport import (
    MAX_REPEATS,
    ApduReceived,
    FrameRepeated,
    SerialLink,
    TcpLink,
    TransmissionFailed,
)

Progress = Callable[[str], None]
HINT = "check cable, baud rate (9600 8N2), ECR interface enabled"
WRONG_CURRENCY = 0x6F
EURO = "978"  # ISO 4217 numeric; a ZVT amount without a currency code is in euro
# What a technician checks when the terminal refuses with these result codes (PA00P015 §10):
# a wrong password is reported as "function not possible", not as a password error.
REFUSAL_HINTS = {
    0x83: "; check --password (the terminal's merchant or service password)",
}


@dataclass(frozen=True, slots=True)
class ZvtTimers:
    """Link and application time-outs in seconds (PA00P016 §3.4, §5.2.5, §5.2.6)."""

    t1: float = 0.2
    t2: float = 5.0
    t3: float = 5.0
    t4: float = 180.0
    progress_every: float = 5.0
    repeats: int = MAX_REPEATS  # frame repeats after a NAK or a missing ACK (probe: 0)


class ZvtClient:
    """Talks ZVT to one terminal over an open port (serial, or TCP when ``network``)."""

    def __init__(
        self,
        port: serial.SerialBase,
        *,
        network: bool = False,
        progress: Progress | None = None,
        timers: ZvtTimers = ZvtTimers(),
        config_byte: int = CONFIG_INTERMEDIATE_STATUS,
        currency: int | None = None,
    ) -> None:
        self.port = port
        self.timers = timers
        self.config_byte = config_byte
        self.currency = currency
        self.fallback_currency: str | None = None  # set when the terminal refused ``currency``
        self.terminal_id: str | None = None
        self._progress = progress or (lambda message: None)
        self._link: SerialLink | TcpLink = (
            TcpLink()
            if network
            else SerialLink(t1=timers.t1, t2=timers.t2, max_repeats=timers.repeats)
        )
        self._ecr = EcrConnection(Timers(t3=timers.t3, t4=timers.t4))

    # -- public API ------------------------------------------------------------------------

    def read_totals(self, *, password: str | None = None) -> TerminalTotals:
        """Send Turnover Totals (``06 10``): the open batch's totals; the batch stays open."""
        return self._totals(TurnoverTotals(password), "turnover_totals", password)

    def close_batch(self, *, password: str | None = None) -> TerminalTotals:
        """End-of-Day (``06 50``): close the batch and return its totals."""
        return self._totals(EndOfDay(password), "end_of_day", password)

    def status_enquiry(self, *, password: str | None = None) -> str | None:
        """Status Enquiry (``05 01``); returns the terminal id if a registration told us."""
        self._register(password)
        self._run(StatusEnquiry(), "status enquiry")
        return self.terminal_id

    # -- flows -------------------------------------------------------------------------------

    def _totals(
        self, command: EcrCommand, kind: TotalsKind, password: str | None
    ) -> TerminalTotals:
        self._register(password)
        label = "End-of-Day" if kind == "end_of_day" else "turnover totals"
        events = self._run(command, label)
        status = next((e for e in events if isinstance(e, StatusInformation)), None)
        if status is None:
            raise TerminalProtocolError(f"terminal completed {label} without sending totals")
        lines: list[str] = []
        for event in events:
            if isinstance(event, PrintLine):
                lines.append(event.text)
            elif isinstance(event, PrintTextBlock):
                lines.extend(event.lines)
        try:
            totals = totals_from_status(
                status, kind, year=time.localtime().tm_year, print_lines=tuple(lines)
            )
        except ProtocolError as exc:
            raise TerminalAborted(f"{label}: {exc.message}", status.result_code) from exc
        if totals.terminal_id is None and self.terminal_id is not None:
            totals = replace(totals, terminal_id=self.terminal_id)
        if totals.currency is None and self.fallback_currency is not None:
            totals = replace(totals, currency=self.fallback_currency)
        return totals

    def _register(self, password: str | None) -> None:
        try:
            events = self._run(
                Registration(password, self.config_byte, self.currency), "registration"
            )
        except TerminalAborted as exc:
            if exc.result_code != WRONG_CURRENCY or self.currency is None:
                return  # some terminals refuse registration but still serve the command
            # A single-currency terminal refuses any other currency (PA00P015 §1.4); without
            # one it works in euro, so register again without it and report 978.
            self.currency, self.fallback_currency = None, EURO
            self._register(password)
            return
        completion = next((e for e in events if isinstance(e, Completion)), None)
        if completion and completion.terminal_id:
            self.terminal_id = completion.terminal_id

    # -- the I/O loop --------------------------------------------------------------------------

    def _run(self, command: EcrCommand, label: str) -> list[EcrEvent]:
        """Send ``command`` and drive the link until the terminal completes or fails."""
        self._ecr.send(command)
        events: list[EcrEvent] = []
        started = last_heard = last_progress = time.monotonic()
        heard_anything = False
        accepted = False
        while True:
            for apdu in self._ecr.apdus_to_send():
                self._link.send_apdu(apdu)
            self._write(self._link.data_to_send())
            if events and isinstance(events[-1], Completion | Aborted | CommandRefused):
                self._drain()
                break
            data = self._read()
            now = time.monotonic()
            if data:
                heard_anything, last_heard = True, now
            self._link.receive_data(data)
            self._link.tick(now)
            if self._link.idle:  # T3 counts once the command is delivered (see firmware notes)
                self._ecr.tick(now)
            self._pump_link(label, heard_anything, started)
            while (event := self._ecr.next_event()) is not None:
                events.append(event)
                accepted = accepted or isinstance(event, CommandAccepted)
                self._on_event(event, label, started, heard_anything)
            if accepted and now - max(last_heard, last_progress) >= self.timers.progress_every:
                last_progress = now
                self._progress(f"still waiting for the terminal ({label}, {now - started:.0f} s)…")
        last = events[-1]
        if isinstance(last, Aborted | CommandRefused):
            hint = REFUSAL_HINTS.get(last.result_code, "")
            raise TerminalAborted(
                f"terminal refused {label}: {last.meaning} (result code "
                f"{last.result_code:02X}){hint}",
                last.result_code,
            )
        return events

    def _pump_link(self, label: str, heard_anything: bool, started: float) -> None:
        while (event := self._link.next_event()) is not None:
            if isinstance(event, ApduReceived):
                try:
                    self._ecr.receive_apdu(event.apdu)
                except ProtocolError as exc:
                    raise TerminalProtocolError(f"terminal sent a bad message: {exc}") from exc
            elif isinstance(event, FrameRepeated):
                self._progress(f"link: repeating a frame ({event.reason})")
            elif isinstance(event, TransmissionFailed):
                if not heard_anything:
                    raise self._no_answer(time.monotonic() - started)
                raise LinkFailure(
                    f"serial link to the terminal on {self._name()} failed during {label}: "
                    f"{event.reason}; check the cable and line quality"
                )

    def _on_event(self, event: EcrEvent, label: str, started: float, heard: bool) -> None:
        if isinstance(event, CommandAccepted):
            self._progress(f"terminal accepted {label}")
        elif isinstance(event, IntermediateStatus):
            if label == "End-of-Day":
                self._progress("terminal is talking to its host (End-of-Day)…")
            else:
                self._progress(f"terminal: {describe_intermediate(event.status)}")
        elif isinstance(event, TimedOut):
            if event.timer == "T3" or not heard:
                raise self._no_answer(time.monotonic() - started)
            raise NoAnswer(
                f"the terminal on {self._name()} went silent for {event.seconds:.0f} s during "
                f"{label}; check its display and the host connection, then retry"
            )

    def _no_answer(self, elapsed: float) -> NoAnswer:
        return NoAnswer(
            f"no answer from the terminal on {self._name()} within {elapsed:.0f} s: {HINT}"
        )

    def _drain(self) -> None:
        """Deliver our last ``80 00`` (wait for its ACK, repeating as the link requires)."""
        deadline = time.monotonic() + self.timers.t2 * 3 + 1
        while not self._link.idle and time.monotonic() < deadline:
            self._link.receive_data(self._read())
            self._link.tick(time.monotonic())
            while (event := self._link.next_event()) is not None:
                if isinstance(event, ApduReceived):
                    self._ecr.receive_apdu(event.apdu)  # a repeat: answered, ignored
            for apdu in self._ecr.apdus_to_send():
                self._link.send_apdu(apdu)
            self._write(self._link.data_to_send())

    def _read(self) -> bytes:
        try:
            return bytes(self.port.read(max(1, int(getattr(self.port, "in_waiting", 0)))))
        except (serial.SerialException, OSError) as exc:
            raise LinkFailure(f"reading {self._name()} failed: {exc}") from exc

    def _write(self, data: bytes) -> None:
        if not data:
            return
        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkFailure(f"writing to {self._name()} failed: {exc}") from exc

    def _name(self) -> str:
        return str(getattr(self.port, "port", None) or getattr(self.port, "name", "the port"))
