"""ZVT application flows as state machines: the cash register (ECR) and the terminal (PT).

Theory of operation (PA00P016 §5, PA00P015 §2-§3)
-------------------------------------------------
The ECR is master (PA00P016 §5.1). It sends one command -- Registration ``06 00`` (§2.1),
Status Enquiry ``05 01`` (§2.56), Send Turnover Totals ``06 10`` (§2.43) or End-of-Day
``06 50`` (§2.16) -- and the terminal answers within T3 (5 s, PA00P016 §5.2.5) with ``80 00``
(accepted; ``84 00`` counts as accepted too) or ``84 xx`` (refused with result code xx). On
acceptance the terminal becomes master: it may send Intermediate Status ``04 FF`` (§3.7),
Status-Information ``04 0F`` (§3.1.3, the totals), Print Line ``06 D1`` (§3.5) and Print
Text-Block ``06 D3`` (§3.6); the ECR answers each with ``80 00``. The flow ends with Completion
``06 0F`` (§3.2) or Abort ``06 1E`` (§3.3), also answered with ``80 00``, and the master rights
return to the ECR. Between ``80 00`` and the end the ECR waits up to T4 (180 s, PA00P016
§5.2.6); every terminal command restarts T4 (§2.56.4), and ``04 FF`` may carry a new T4 in
minutes. End-of-Day can be silent for minutes while the terminal talks to its host, so the
ECR must wait on T4 there, never on T3.

Both classes work on whole APDUs; a :mod:`protocol.zvt.transport` link sits below them. Time
is an input: call ``tick(now)`` with a monotonic clock. A timer starts at the first tick after
the event that arms it, so a caller that ticks after every read measures from the moment the
bytes left or arrived.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from ..errors import LocalProtocolError, RemoteProtocolError
from .apdu import Apdu, decode_apdu
from .messages import (
    ECR_COMMANDS,
    STATUS_ENQUIRY,
    Abort,
    Completion,
    EcrCommand,
    IntermediateStatus,
    PrintLine,
    PrintTextBlock,
    PtCommand,
    Response,
    StatusInformation,
    decode_pt_command,
    is_response,
)
from .result_codes import FUNCTION_NOT_POSSIBLE, describe_result

T3 = 5.0
T4 = 180.0


@dataclass(frozen=True, slots=True)
class Timers:
    """Application time-outs in seconds (both adjustable per PA00P016 §5.2.5/§5.2.6)."""

    t3: float = T3
    t4: float = T4


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandAccepted:
    """The terminal answered ``80 00`` (or ``84 00``); it is master until Completion/Abort."""

    data: bytes = b""


@dataclass(frozen=True, slots=True)
class CommandRefused:
    """The terminal answered ``84 xx``: the command was not started."""

    result_code: int

    @property
    def meaning(self) -> str:
        """Words for the result code (PA00P015 §10)."""
        return describe_result(self.result_code)


@dataclass(frozen=True, slots=True)
class Aborted:
    """The terminal ended the command with Abort ``06 1E``."""

    result_code: int

    @property
    def meaning(self) -> str:
        """Words for the result code (PA00P015 §10)."""
        return describe_result(self.result_code)


@dataclass(frozen=True, slots=True)
class TimedOut:
    """``timer`` ("T3" or "T4") expired after ``seconds``; the command is given up."""

    timer: str
    seconds: float


@dataclass(frozen=True, slots=True)
class UnexpectedCommand:
    """The terminal sent a command we do not handle; we answered ``84 83``."""

    apdu: Apdu


@dataclass(frozen=True, slots=True)
class CommandReceived:
    """(Terminal role) the ECR sent ``command``; answer with :class:`Response`."""

    command: EcrCommand | Apdu


@dataclass(frozen=True, slots=True)
class EcrResponded:
    """(Terminal role) the ECR answered our last command."""

    response: Response


EcrEvent = (
    CommandAccepted
    | CommandRefused
    | IntermediateStatus
    | StatusInformation
    | PrintLine
    | PrintTextBlock
    | Completion
    | Aborted
    | TimedOut
    | UnexpectedCommand
)
PtEvent = CommandReceived | EcrResponded | TimedOut


# -- cash-register side --------------------------------------------------------------------


class EcrState(Enum):
    """States of :class:`EcrConnection`."""

    IDLE = "idle"  # ECR is master, nothing running
    AWAIT_RESPONSE = "await_response"  # command sent, T3 running
    TERMINAL_MASTER = "terminal_master"  # 80 00 received, T4 running


class EcrInput(Enum):
    """What can happen to an :class:`EcrConnection`."""

    SEND = "send"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    PT_COMMAND = "pt_command"  # 04 FF, 04 0F, 06 D1, 06 D3, unknown
    FINISHED = "finished"  # 06 0F or 06 1E
    TIMEOUT = "timeout"


S, E = EcrState, EcrInput
#: The one transition table of the ECR role. A terminal command while we still wait for the
#: response is taken as an implicit ``80 00`` (tolerance for terminals that skip it).
ECR_TRANSITIONS: dict[tuple[EcrState, EcrInput], EcrState] = {
    (S.IDLE, E.SEND): S.AWAIT_RESPONSE,
    (S.AWAIT_RESPONSE, E.ACCEPTED): S.TERMINAL_MASTER,
    (S.AWAIT_RESPONSE, E.REFUSED): S.IDLE,
    (S.AWAIT_RESPONSE, E.PT_COMMAND): S.TERMINAL_MASTER,
    (S.AWAIT_RESPONSE, E.FINISHED): S.IDLE,
    (S.AWAIT_RESPONSE, E.TIMEOUT): S.IDLE,
    (S.TERMINAL_MASTER, E.PT_COMMAND): S.TERMINAL_MASTER,
    (S.TERMINAL_MASTER, E.FINISHED): S.IDLE,
    (S.TERMINAL_MASTER, E.TIMEOUT): S.IDLE,
}


class EcrConnection:
    """The cash-register role: send commands, answer the terminal, watch T3/T4.

    Use: ``send(command)``; pass every received APDU to :meth:`receive_apdu`; write the
    APDUs from :meth:`apdus_to_send` (our ``80 00`` answers) through the link; read
    :meth:`next_event` until :class:`Completion`, :class:`Aborted`, :class:`CommandRefused`
    or :class:`TimedOut` says the command is over.
    """

    def __init__(self, timers: Timers = Timers()) -> None:
        self.timers = timers
        self.state = EcrState.IDLE
        self._events: deque[EcrEvent] = deque()
        self._outbox: deque[bytes] = deque()
        self._command: tuple[int, int] | None = None
        self._timer: str | None = None
        self._timer_seconds = 0.0
        self._deadline: float | None = None
        self._t4 = timers.t4

    def _move(self, event: EcrInput) -> None:
        key = (self.state, event)
        if key not in ECR_TRANSITIONS:
            raise LocalProtocolError(f"{event.value} not allowed in state {self.state.value}")
        self.state = ECR_TRANSITIONS[key]
        if self.state is EcrState.IDLE:
            self._command = None
            self._arm(None, 0.0)
            self._t4 = self.timers.t4  # an 04 FF override lasts one command (§2.56.5)

    def _arm(self, timer: str | None, seconds: float) -> None:
        self._timer, self._timer_seconds, self._deadline = timer, seconds, None

    def send(self, command: EcrCommand) -> None:
        """Queue ``command``; its APDU appears in :meth:`apdus_to_send`.

        :raises LocalProtocolError: another command is still running
        """
        apdu = command.to_apdu()
        self._move(EcrInput.SEND)
        self._command = apdu.control
        self._outbox.append(apdu.encode())
        self._arm("T3", self.timers.t3)

    def apdus_to_send(self) -> list[bytes]:
        """APDUs to hand to the link, in order; empties the queue."""
        out = list(self._outbox)
        self._outbox.clear()
        return out

    def next_event(self) -> EcrEvent | None:
        """The next event or ``None``."""
        return self._events.popleft() if self._events else None

    def tick(self, now: float) -> None:
        """Advance the clock; fires T3 or T4."""
        if self._timer is None:
            return
        if self._deadline is None:
            self._deadline = now + self._timer_seconds
        elif now >= self._deadline:
            event = TimedOut(self._timer, self._timer_seconds)
            self._move(EcrInput.TIMEOUT)
            self._events.append(event)

    def receive_apdu(self, raw: bytes) -> None:
        """Handle one APDU from the terminal.

        :raises RemoteProtocolError: the APDU or its data is malformed; nothing is answered,
            the caller decides whether to give up
        """
        apdu = decode_apdu(raw)
        if is_response(apdu):
            self._on_response(Response.from_apdu(apdu))
            return
        after_enquiry = self._command == STATUS_ENQUIRY
        message = decode_pt_command(apdu, after_status_enquiry=after_enquiry)
        if self.state is EcrState.IDLE:
            # a late repeat (e.g. our ACK was lost and the frame came again): answer, ignore
            self._reply(Response())
            return
        if message is None:
            self._reply(Response(FUNCTION_NOT_POSSIBLE))
            self._move(EcrInput.PT_COMMAND)
            self._events.append(UnexpectedCommand(apdu))
            self._arm("T4", self._t4)
            return
        self._reply(Response())
        self._on_pt_command(message)

    def _on_response(self, response: Response) -> None:
        if self.state is not EcrState.AWAIT_RESPONSE:
            return  # a response nobody waits for (late or repeated): nothing to do
        if response.positive:
            self._move(EcrInput.ACCEPTED)
            self._events.append(CommandAccepted(response.data))
            self._arm("T4", self._t4)
        else:
            self._move(EcrInput.REFUSED)
            self._events.append(CommandRefused(response.result_code))

    def _on_pt_command(self, message: PtCommand) -> None:
        if isinstance(message, Completion | Abort):
            self._move(EcrInput.FINISHED)
            self._events.append(
                Aborted(message.result_code) if isinstance(message, Abort) else message
            )
            return
        self._move(EcrInput.PT_COMMAND)
        if isinstance(message, IntermediateStatus) and message.timeout_minutes:
            self._t4 = message.timeout_minutes * 60.0
        self._arm("T4", self._t4)
        self._events.append(message)

    def _reply(self, response: Response) -> None:
        self._outbox.append(response.to_apdu().encode())


# -- terminal side -------------------------------------------------------------------------


class PtState(Enum):
    """States of :class:`TerminalConnection`."""

    IDLE = "idle"  # ECR is master; waiting for a command
    MUST_RESPOND = "must_respond"  # a command arrived; answer 80 00 or 84 xx
    MASTER = "master"  # we accepted; we may send our commands
    AWAIT_ECR = "await_ecr"  # we sent a command; waiting for the ECR's 80 00
    AWAIT_ECR_FINAL = "await_ecr_final"  # we sent Completion/Abort; then IDLE


class PtInput(Enum):
    """What can happen to a :class:`TerminalConnection`."""

    COMMAND = "command"
    ACCEPT = "accept"
    REFUSE = "refuse"
    SEND = "send"
    FINISH = "finish"
    ECR_RESPONSE = "ecr_response"
    TIMEOUT = "timeout"


P, J = PtState, PtInput
#: The one transition table of the terminal role.
PT_TRANSITIONS: dict[tuple[PtState, PtInput], PtState] = {
    (P.IDLE, J.COMMAND): P.MUST_RESPOND,
    (P.MUST_RESPOND, J.ACCEPT): P.MASTER,
    (P.MUST_RESPOND, J.REFUSE): P.IDLE,
    (P.MASTER, J.SEND): P.AWAIT_ECR,
    (P.MASTER, J.FINISH): P.AWAIT_ECR_FINAL,
    (P.AWAIT_ECR, J.ECR_RESPONSE): P.MASTER,
    (P.AWAIT_ECR_FINAL, J.ECR_RESPONSE): P.IDLE,
    (P.AWAIT_ECR, J.TIMEOUT): P.IDLE,
    (P.AWAIT_ECR_FINAL, J.TIMEOUT): P.IDLE,
}


class TerminalConnection:
    """The payment-terminal role (what the simulator runs).

    Read :class:`CommandReceived`, answer with ``send(Response())`` (accept) or
    ``send(Response(code))`` (refuse), then send terminal commands one at a time, each after
    the ECR's :class:`EcrResponded`, ending with :class:`Completion` or :class:`Abort`.
    """

    def __init__(self, timers: Timers = Timers()) -> None:
        self.timers = timers
        self.state = PtState.IDLE
        self._events: deque[PtEvent] = deque()
        self._outbox: deque[bytes] = deque()
        self._deadline: float | None = None
        self._waiting = False
        self.command: EcrCommand | Apdu | None = None

    def _move(self, event: PtInput) -> None:
        key = (self.state, event)
        if key not in PT_TRANSITIONS:
            raise LocalProtocolError(f"{event.value} not allowed in state {self.state.value}")
        self.state = PT_TRANSITIONS[key]
        self._waiting = self.state in (PtState.AWAIT_ECR, PtState.AWAIT_ECR_FINAL)
        self._deadline = None

    def send(self, message: Response | PtCommand) -> None:
        """Queue our answer or command.

        :raises LocalProtocolError: not allowed in the current state
        """
        if isinstance(message, Response):
            self._move(PtInput.ACCEPT if message.positive else PtInput.REFUSE)
        elif isinstance(message, Completion | Abort):
            self._move(PtInput.FINISH)
        else:
            self._move(PtInput.SEND)
        self._outbox.append(message.to_apdu().encode())

    def apdus_to_send(self) -> list[bytes]:
        """APDUs to hand to the link, in order; empties the queue."""
        out = list(self._outbox)
        self._outbox.clear()
        return out

    def next_event(self) -> PtEvent | None:
        """The next event or ``None``."""
        return self._events.popleft() if self._events else None

    def tick(self, now: float) -> None:
        """Advance the clock; T3 guards the ECR's answer to each of our commands."""
        if not self._waiting:
            return
        if self._deadline is None:
            self._deadline = now + self.timers.t3
        elif now >= self._deadline:
            self._move(PtInput.TIMEOUT)
            self._events.append(TimedOut("T3", self.timers.t3))

    def receive_apdu(self, raw: bytes) -> None:
        """Handle one APDU from the ECR.

        :raises RemoteProtocolError: malformed APDU, or a command while we are master
        """
        apdu = decode_apdu(raw)
        if is_response(apdu):
            if self._waiting:
                self._move(PtInput.ECR_RESPONSE)
                self._events.append(EcrResponded(Response.from_apdu(apdu)))
            return  # a response nobody waits for: ignore
        if self.state is not PtState.IDLE:
            raise RemoteProtocolError(f"ECR sent {apdu!r} while the terminal is master", 0)
        kind = ECR_COMMANDS.get(apdu.control)
        command: EcrCommand | Apdu = apdu
        if kind is not None:
            command = kind.from_apdu(apdu)
        self.command = command
        self._move(PtInput.COMMAND)
        self._events.append(CommandReceived(command))
