"""The agent's MIS-POS client: a short I/O loop around :class:`protocol.mispos.EcrConnection`.

One request, one reply, no link-level repeat (docs/mispos.md). Settlement (14) closes the
batch, so it is sent once only: when its reply is damaged or does not come, the client asks
for the reprint of the last settlement (19), which closes nothing, and says so. Link problems
become :mod:`agent.errors` with one line a technician can act on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import serial
from settleguard.agent.errors import NoAnswer, TerminalAborted, TerminalProtocolError, UsageError
from settleguard.protocol.errors import RemoteProtocolError
from settleguard.protocol.mispos import (
    PROBE_APP,
    TYPE_PROBE,
    TYPE_REPRINT_SETTLEMENT,
    TYPE_SETTLEMENT,
    EcrConnection,
    HostRelayRefused,
    Reply,
    ReplyReceived,
    Request,
    Settlement,
    SettlementRefused,
    SlipError,
    TimedOut,
    settlement_from_reply,
)
from settleguard.protocol.mispos.connection import REPLY_TIMEOUT
from settleguard.protocol.mispos.messages import TAG_TERMINAL_NO
from settleguard.protocol.mispos.settlement import EMPTY_BATCH
from settleguard.protocol.totals import TerminalTotals

Progress = Callable[[str], None]
Clock = Callable[[], float]
HINT = "check the cable, 9600 8N1, and that the terminal is in register-link mode (收银机联动)"
PROBE_TIMEOUT = 3.0
NO_TOTALS_QUERY = (
    "MIS-POS has no totals query that leaves the batch open: settlement (close) is the only "
    "way to get totals. Use `--last` to reprint the last closed batch (type 19), or "
    "`settleguard agent close --protocol mispos` to close the batch"
)
SAVE_RAW_HINT = (
    "run `settleguard agent read --protocol mispos --last --save-raw FILE` and send FILE"
)


class ReplyLost(Exception):
    """The reply was damaged or did not come; ``reason`` says which."""

    def __init__(self, reason: str, *, silent: bool) -> None:
        super().__init__(reason)
        self.reason, self.silent = reason, silent


class MisposClient:
    """Talks MIS-POS to one terminal on an open port.

    :param port: an open pyserial port (any URL: device, pty, socket)
    :param progress: called with a short message while waiting on the terminal
    :param timeout: overall wait for one reply, seconds
    :param clock: monotonic seconds; tests pass a simulated clock
    """

    def __init__(
        self,
        port: serial.SerialBase,
        *,
        progress: Progress | None = None,
        timeout: float = REPLY_TIMEOUT,
        clock: Clock = time.monotonic,
        app: str = "APP01",
    ) -> None:
        self._port = port
        self._progress = progress
        self._timeout = timeout
        self._clock = clock
        self._app = app
        #: Every byte received, in order: what ``--save-raw`` writes.
        self.raw = bytearray()
        #: True after a settlement whose figures came from the reprint (19).
        self.recovered = False

    def read_totals(self, *, password: str | None = None) -> TerminalTotals:
        """Refused: MIS-POS has no totals query (see :meth:`read_last`).

        :raises UsageError: always, explaining the alternatives
        """
        raise UsageError(NO_TOTALS_QUERY)

    def close_batch(self, *, password: str | None = None) -> TerminalTotals:
        """Settle (14) and return the closed batch; a lost reply is recovered with 19 only.

        :raises agent.errors.AgentError: no answer, refusal or a slip that cannot be read
        """
        try:
            reply = self._exchange(Request(TYPE_SETTLEMENT, self._app), self._timeout)
        except ReplyLost as lost:
            self._say(
                f"settlement reply {lost.reason}; NOT settling again (that would close the "
                "next batch): asking the terminal to reprint the last settlement (19)"
            )
            self.recovered = True
            if not lost.silent:
                self._drain_line()
            settlement = self._reprint(after_loss=lost)
            self._say(f"recovered batch {settlement.batch_no} from the reprint (19)")
            return settlement.to_totals()
        settlement = self._settlement(reply, closed=True)
        if settlement.result_code == EMPTY_BATCH:
            raise TerminalAborted(
                f"terminal answered {EMPTY_BATCH} {settlement.result_text}: the batch has no "
                "transactions, so nothing was closed and nothing is stored",
                EMPTY_BATCH,
            )
        return settlement.to_totals()

    def recover_batch(self) -> TerminalTotals:
        """The batch of a close whose reply was lost, from the reprint (19); settles nothing.

        :raises agent.errors.AgentError: as :meth:`close_batch`
        """
        self.recovered = True
        return self._reprint(after_loss=None).to_totals()

    def read_last(self) -> TerminalTotals:
        """The last closed batch again (reprint of the settlement slip, 19); closes nothing.

        :raises agent.errors.AgentError: as :meth:`close_batch`
        """
        return self._reprint(after_loss=None).to_totals()

    def probe(self) -> str | None:
        """Ask ``MANAGER`` 07 (the port search) and return the terminal number if given.

        :raises NoAnswer: nothing answered within 3 seconds
        :raises TerminalProtocolError: something answered, but not MIS-POS
        """
        try:
            reply = self._exchange(Request(TYPE_PROBE, PROBE_APP), PROBE_TIMEOUT)
        except ReplyLost as lost:
            if lost.silent:
                raise NoAnswer(f"no MIS-POS answer to the port probe; {HINT}") from None
            raise TerminalProtocolError(f"MIS-POS probe: reply {lost.reason}") from None
        return reply.text(TAG_TERMINAL_NO) or None

    # ------------------------------------------------------------------ helpers
    def _reprint(self, *, after_loss: ReplyLost | None) -> Settlement:
        try:
            reply = self._exchange(Request(TYPE_REPRINT_SETTLEMENT, self._app), self._timeout)
        except ReplyLost as lost:
            if after_loss is not None:
                raise NoAnswer(
                    f"the settlement reply {after_loss.reason} and the reprint (19) reply "
                    f"{lost.reason}: the batch is probably CLOSED on the terminal. Do not "
                    "close again; once the terminal answers, run `settleguard agent close "
                    f"--protocol mispos --recover` (it only asks for the reprint) ({HINT})"
                ) from None
            if lost.silent:
                raise NoAnswer(
                    f"no answer to the reprint (19) within {self._timeout:.0f} s; {HINT}"
                ) from None
            raise TerminalProtocolError(f"the reprint (19) reply {lost.reason}") from None
        return self._settlement(reply, closed=after_loss is not None)

    def _settlement(self, reply: Reply, *, closed: bool) -> Settlement:
        state = "the batch is CLOSED on the terminal, but " if closed else ""
        try:
            settlement = settlement_from_reply(reply)
        except SettlementRefused as exc:
            raise TerminalAborted(f"terminal refused: {exc.code} {exc.text}", exc.code) from None
        except HostRelayRefused as exc:
            raise TerminalProtocolError(exc.message) from None
        except SlipError as exc:
            raise TerminalProtocolError(
                f"{state}its settlement slip cannot be read with certainty ({exc.message}); "
                f"{SAVE_RAW_HINT}"
            ) from None
        except RemoteProtocolError as exc:
            raise TerminalProtocolError(
                f"{state}the settlement reply is malformed: {exc}"
            ) from None
        return settlement

    def _drain_line(self, quiet: float = 0.5, limit: float = 5.0) -> None:
        """Let the rest of a damaged reply pass (kept for ``--save-raw``) before asking again,
        so its tail cannot mix with the next reply: until ``quiet`` seconds without a byte."""
        started = last = self._clock()
        while True:
            data = self._port.read(max(1, getattr(self._port, "in_waiting", 0)))
            now = self._clock()
            if data:
                self.raw += data
                last = now
            if now - last >= quiet or now - started >= limit:
                return

    def _exchange(self, request: Request, timeout: float) -> Reply:
        conn = EcrConnection(timeout)
        reset = getattr(self._port, "reset_input_buffer", None)
        if reset is not None:
            reset()  # a late reply to an earlier request must not pass for this one
        self._port.write(conn.send(request))
        started = self._clock()
        conn.tick(started)
        next_note = started + 5.0
        while True:
            data = self._port.read(max(1, getattr(self._port, "in_waiting", 0)))
            if data:
                self.raw += data
                conn.receive_data(data)
            now = self._clock()
            conn.tick(now)
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                raise ReplyLost(f"was damaged ({exc})", silent=False) from None
            if isinstance(event, ReplyReceived):
                return event.reply
            if isinstance(event, TimedOut):
                silent = event.bytes_received == 0
                what = "did not come" if silent else "stopped part-way"
                raise ReplyLost(f"{what} within {event.seconds:.0f} s", silent=silent)
            if now >= next_note:
                self._say(f"waiting for the terminal ({now - started:.0f} s of {timeout:.0f})")
                next_note = now + 5.0

    def _say(self, message: str) -> None:
        if self._progress is not None:
            self._progress(message)
