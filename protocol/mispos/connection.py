"""MIS-POS exchanges as state machines: the register (ECR) and the terminal.

Theory of operation (docs/mispos.md §Exchange)
----------------------------------------------
The register writes one request frame; the terminal answers with one reply frame. There is
no ACK/NAK, no retransmission and no sequence number, and the reply may arrive in many pieces
after seconds of silence (settlement talks to the host first), so the register waits up to one
overall timeout (60 s in the reference client) for a whole frame, with no inter-character
limit. A damaged reply cannot be asked for again: the exchange is over, and for settlement the
caller must ask for the reprint (19), never settle (14) again, which would close the next
batch. Public Allinpay-style client code, gsccs/mispos-client, serial service.

Time is an input: call ``tick(now)`` with a monotonic clock. The timeout starts at the first
tick after :meth:`EcrConnection.send`, so a caller that ticks after every write and read
measures from the moment the request left.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from ..errors import LocalProtocolError, RemoteProtocolError
from .framing import FrameDecoder, encode_frame
from .messages import Reply, Request

#: Overall wait for a whole reply, in seconds (reference client ``TIMEOUT=60``).
REPLY_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    """(Register role) the terminal's reply; ``frame`` is the raw frame as received."""

    reply: Reply
    frame: bytes


@dataclass(frozen=True, slots=True)
class TimedOut:
    """(Register role) no whole reply within ``seconds``; the exchange is given up."""

    seconds: float
    bytes_received: int


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """(Terminal role) the register's request; answer with :meth:`TerminalConnection.send`."""

    request: Request


EcrEvent = ReplyReceived | TimedOut


class EcrState(Enum):
    """States of :class:`EcrConnection`."""

    IDLE = "idle"
    AWAIT_REPLY = "await_reply"


class EcrInput(Enum):
    """What can happen to an :class:`EcrConnection`."""

    SEND = "send"
    REPLY = "reply"
    BAD_REPLY = "bad_reply"
    TIMEOUT = "timeout"


S, E = EcrState, EcrInput
#: The one transition table of the register role.
ECR_TRANSITIONS: dict[tuple[EcrState, EcrInput], EcrState] = {
    (S.IDLE, E.SEND): S.AWAIT_REPLY,
    (S.AWAIT_REPLY, E.REPLY): S.IDLE,
    (S.AWAIT_REPLY, E.BAD_REPLY): S.IDLE,
    (S.AWAIT_REPLY, E.TIMEOUT): S.IDLE,
}


class EcrConnection:
    """The register role: send one request, collect one reply, watch the overall timeout.

    ``send(request)`` returns the bytes to write; feed everything read to
    :meth:`receive_data`, call :meth:`tick` and read :meth:`next_event` until it gives
    :class:`ReplyReceived` or :class:`TimedOut`. A damaged reply raises
    :class:`RemoteProtocolError` from :meth:`next_event` and ends the exchange.
    """

    def __init__(self, timeout: float = REPLY_TIMEOUT) -> None:
        self.timeout = timeout
        self.state = EcrState.IDLE
        self._decoder = FrameDecoder()
        self._events: deque[EcrEvent] = deque()
        self._deadline: float | None = None
        self._received = 0

    def _move(self, event: EcrInput) -> None:
        key = (self.state, event)
        if key not in ECR_TRANSITIONS:
            raise LocalProtocolError(f"{event.value} not allowed in state {self.state.value}")
        self.state = ECR_TRANSITIONS[key]
        self._deadline = None

    def send(self, request: Request) -> bytes:
        """Start an exchange; returns the request frame to write.

        :raises LocalProtocolError: an exchange is still running
        """
        frame = encode_frame(request.encode_body())
        self._move(EcrInput.SEND)
        self._decoder.reset()
        self._received = 0
        return frame

    def receive_data(self, data: bytes) -> None:
        """Bytes from the terminal; outside an exchange they are dropped (late noise)."""
        if self.state is EcrState.AWAIT_REPLY:
            self._received += len(data)
            self._decoder.feed(data)

    def tick(self, now: float) -> None:
        """Advance the clock; fires the overall reply timeout."""
        if self.state is not EcrState.AWAIT_REPLY:
            return
        if self._deadline is None:
            self._deadline = now + self.timeout
        elif now >= self._deadline:
            self._move(EcrInput.TIMEOUT)
            self._events.append(TimedOut(self.timeout, self._received))

    def next_event(self) -> EcrEvent | None:
        """The next event, or ``None`` while the reply is incomplete.

        :raises RemoteProtocolError: the reply frame or its TLV body is damaged; the
            exchange is over (nothing can be re-requested)
        """
        if self._events:
            return self._events.popleft()
        if self.state is not EcrState.AWAIT_REPLY:
            return None
        try:
            frame = self._decoder.next_frame()
            if frame is None:
                return None
            reply = Reply.decode_body(frame.body)
        except RemoteProtocolError:
            self._move(EcrInput.BAD_REPLY)
            raise
        self._move(EcrInput.REPLY)
        return ReplyReceived(reply, frame.raw)


class TerminalState(Enum):
    """States of :class:`TerminalConnection`."""

    IDLE = "idle"
    MUST_REPLY = "must_reply"


class TerminalInput(Enum):
    """What can happen to a :class:`TerminalConnection`."""

    REQUEST = "request"
    REPLY = "reply"


T, J = TerminalState, TerminalInput
#: The one transition table of the terminal role.
TERMINAL_TRANSITIONS: dict[tuple[TerminalState, TerminalInput], TerminalState] = {
    (T.IDLE, J.REQUEST): T.MUST_REPLY,
    (T.MUST_REPLY, J.REPLY): T.IDLE,
}


class TerminalConnection:
    """The terminal role (what the simulator runs): read a request, answer it once."""

    def __init__(self) -> None:
        self.state = TerminalState.IDLE
        self._decoder = FrameDecoder()
        self.request: Request | None = None

    def _move(self, event: TerminalInput) -> None:
        key = (self.state, event)
        if key not in TERMINAL_TRANSITIONS:
            raise LocalProtocolError(f"{event.value} not allowed in state {self.state.value}")
        self.state = TERMINAL_TRANSITIONS[key]

    def receive_data(self, data: bytes) -> None:
        """Bytes from the register."""
        self._decoder.feed(data)

    def next_event(self) -> RequestReceived | None:
        """The next request, or ``None``. A request that arrives before we answered the last
        one waits in the buffer.

        :raises RemoteProtocolError: a damaged frame or body (the terminal stays idle)
        """
        if self.state is not TerminalState.IDLE:
            return None
        frame = self._decoder.next_frame()
        if frame is None:
            return None
        request = Request.decode_body(frame.body)
        self.request = request
        self._move(TerminalInput.REQUEST)
        return RequestReceived(request)

    def send(self, reply: Reply) -> bytes:
        """Answer the pending request; returns the reply frame to write.

        :raises LocalProtocolError: no request is waiting for an answer
        """
        frame = encode_frame(reply.encode_body())
        self._move(TerminalInput.REPLY)
        return frame
