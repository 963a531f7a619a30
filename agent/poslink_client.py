"""The agent's POSLink client: a short I/O loop around :class:`protocol.poslink.EcrConnection`.

Every command is one request/response exchange (the journal is one R02 per record). Link
problems become :mod:`agent.errors` with one-line messages a technician can act on.

POSLink's public field lists show no ECR password for B00/R00, so ``password`` is accepted
for the common interface and ignored (a terminal that protects batch close asks on its own
screen).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import serial
from settleguard.agent.errors import LinkFailure, NoAnswer, TerminalAborted, TerminalProtocolError
from settleguard.protocol.errors import RemoteProtocolError
from settleguard.protocol.poslink import (
    NEED_DATA,
    BatchCloseRequest,
    BatchCloseResponse,
    EcrConnection,
    FrameRejected,
    JournalEntry,
    LinkFailed,
    LocalDetailReportRequest,
    LocalDetailReportResponse,
    LocalTotalReportRequest,
    LocalTotalReportResponse,
    PeerGaveUp,
    PosLinkTimers,
    ResponseTimedOut,
    Retransmitted,
    State,
    totals_from_batch_close,
    totals_from_report,
)
from settleguard.protocol.poslink.messages import REQUEST_COMMANDS, Request, Response
from settleguard.protocol.totals import TerminalTotals

Progress = Callable[[str], None]
CABLE_HINT = "check the cable, the baud rate (POSLink default 9600 8N1) and that ECR mode is on"
MAX_JOURNAL = 10000

__all__ = ["PosLinkClient", "PosLinkProbe", "PosLinkTimers"]


@dataclass(frozen=True, slots=True)
class PosLinkProbe:
    """What a probe learned: the terminal answered R00 with this code."""

    protocol: str
    response_code: str
    meaning: str


class PosLinkClient:
    """Talks POSLink to one terminal on an open port.

    :param port: an open pyserial port (any URL: device, pty, socket)
    :param progress: called with a short message while waiting on the terminal
    :param timers: link timers (tests pass short ones)
    """

    def __init__(
        self,
        port: serial.SerialBase,
        *,
        progress: Progress | None = None,
        timers: PosLinkTimers | None = None,
    ) -> None:
        self._port = port
        self._progress = progress
        self._timers = timers or PosLinkTimers()
        self._conn = EcrConnection(self._timers, time.monotonic())
        self._heard_anything = False

    def read_totals(self, *, password: str | None = None) -> TerminalTotals:
        """Running totals without closing the batch (R00 LocalTotalReport).

        :raises agent.errors.AgentError: no answer, link failure, refusal or garbage
        """
        response = self._exchange(LocalTotalReportRequest())
        assert isinstance(response, LocalTotalReportResponse)
        return totals_from_report(response)

    def close_batch(self, *, password: str | None = None) -> TerminalTotals:
        """Close the batch (B00 BatchClose) and return what the terminal settled.

        :raises agent.errors.AgentError: no answer, link failure, refusal or garbage
        """
        stamp = time.strftime("%Y%m%d%H%M%S")
        response = self._exchange(BatchCloseRequest(stamp))
        assert isinstance(response, BatchCloseResponse)
        return totals_from_batch_close(response)

    def read_journal(self) -> tuple[JournalEntry, ...]:
        """Every record of the local journal (R02/R03, one record per exchange; masked PANs).

        :raises agent.errors.AgentError: as :meth:`read_totals`
        """
        entries: list[JournalEntry] = []
        record, total = 0, 1
        while record < min(total, MAX_JOURNAL):
            response = self._exchange(LocalDetailReportRequest(record))
            assert isinstance(response, LocalDetailReportResponse)
            total = response.total_records
            if response.entry is None:
                break
            entries.append(response.entry)
            record += 1
            if total > 1:
                self._say(f"journal: {record} of {total} records")
        return tuple(entries)

    def probe(self) -> PosLinkProbe:
        """Ask for the local totals (harmless) to see whether a POSLink terminal answers.

        A refusal still proves a POSLink terminal is there, so it is returned, not raised.

        :raises agent.errors.NoAnswer: nothing answered
        :raises agent.errors.LinkFailure: something answered but the link failed
        """
        try:
            response = self._exchange(LocalTotalReportRequest())
        except TerminalAborted as exc:
            code = str(exc.result_code)
            return PosLinkProbe("poslink", code, exc.message)
        return PosLinkProbe("poslink", response.status.code, response.status.meaning)

    # ------------------------------------------------------------------ the loop
    def _exchange(self, request: Request) -> Response:
        command = REQUEST_COMMANDS[type(request)]
        conn = self._conn
        if conn.state is not State.IDLE:
            conn.reset()
        started = time.monotonic()
        self._heard_anything = False
        self._port.write(conn.send(request, started))
        next_note = started + 2.0
        while True:
            data = self._port.read(max(1, getattr(self._port, "in_waiting", 0)))
            now = time.monotonic()
            if data:
                self._heard_anything = True
                conn.receive_data(data, now)
            conn.tick(now)
            if out := conn.data_to_send():
                self._port.write(out)
            response = self._drain(command)
            if response is not None:
                return self._check(command, response)
            if now >= next_note and conn.state is State.AWAIT_RESPONSE:
                self._say(f"waiting for the terminal ({command}, {now - started:.0f} s)…")
                next_note = now + 2.0

    def _drain(self, command: str) -> Response | None:
        while True:
            try:
                event = self._conn.next_event()
            except RemoteProtocolError as exc:
                raise TerminalProtocolError(
                    f"terminal sent an invalid {command} answer: {exc}"
                ) from exc
            if event is NEED_DATA:
                return None
            if isinstance(event, Retransmitted):
                self._say(f"repeating {command} (attempt {event.attempt}: {event.reason})")
            elif isinstance(event, FrameRejected):
                self._say(f"damaged frame from the terminal, asked for a repeat ({event.reason})")
            elif isinstance(event, LinkFailed):
                raise self._link_failed(command, event.reason)
            elif isinstance(event, ResponseTimedOut):
                raise NoAnswer(
                    f"terminal acknowledged {command} but gave no answer within "
                    f"{event.waited:.0f} s; check its screen and the host connection"
                )
            elif isinstance(event, PeerGaveUp):
                raise LinkFailure(f"terminal ended the {command} exchange (EOT); try again")
            elif isinstance(
                event, LocalTotalReportResponse | BatchCloseResponse | LocalDetailReportResponse
            ):
                return event

    def _link_failed(self, command: str, reason: str) -> Exception:
        if not self._heard_anything:
            return NoAnswer(f"no answer to POSLink {command}; {CABLE_HINT}")
        return LinkFailure(f"POSLink link failed on {command}: {reason}; check cable and noise")

    def _check(self, command: str, response: Response) -> Response:
        status = response.status
        if not status.ok:
            raise TerminalAborted(
                f"terminal refused {command}: {status.code} {status.meaning} ({status.message})",
                status.code,
            )
        return response

    def _say(self, message: str) -> None:
        if self._progress is not None:
            self._progress(message)
