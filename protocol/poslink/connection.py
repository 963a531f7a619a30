"""POSLink link layer as two sans-I/O state machines: the cash register and the terminal.

Theory of operation (POSLink serial link, as documented by the public PAX SDKs and the
"PAX Interface Between PC and Terminal" control-character table quoted on the IS4C wiki; see
``firmware_notes/pax-poslink.md``):

1. The cash register (ECR) sends a request frame ``STX … ETX LRC``.
2. The receiver of any frame checks the LRC and answers ACK (0x06) if good, NAK (0x15) if
   not. On NAK, or when no ACK arrives within the ACK timeout, the sender repeats the frame.
   After the third failure it sends EOT (0x04) and gives up.
3. The terminal works on the request (a BatchClose talks to the host and can be silent for
   minutes), then sends its response frame the same way; the ECR ACKs it.
4. A frame that stalls longer than the inter-byte timeout is abandoned and NAKed.

Timers are inputs: call :meth:`tick` with a monotonic ``now``; nothing here sleeps or reads a
clock. Bytes the machine must write (ACK, NAK, EOT, repeats) accumulate in
:meth:`data_to_send`; :meth:`send` returns the bytes of an application frame directly.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from ..errors import LocalProtocolError, RemoteProtocolError
from .framing import ACK, EOT, NAK, Control, CorruptFrame, Frame, FrameDecoder
from .messages import (
    REQUEST_COMMANDS,
    RESPONSE_COMMANDS,
    RESPONSE_FOR,
    BatchCloseRequest,
    Request,
    Response,
    decode_request,
    encode_request,
)
from .response_codec import decode_response, encode_response


@dataclass(frozen=True, slots=True)
class PosLinkTimers:
    """Link timers in seconds. The public sources give no numbers; these are our defaults.

    ``batch_close_timeout`` is long because B00 waits for the host settlement.
    """

    ack_timeout: float = 2.0
    inter_byte_timeout: float = 1.0
    response_timeout: float = 30.0
    batch_close_timeout: float = 300.0
    max_attempts: int = 3  # NAKs or ACK timeouts before EOT


class State(enum.Enum):
    """Where one side of the link is."""

    IDLE = "idle"
    AWAIT_ACK = "await_ack"  # our frame is out, waiting for ACK/NAK
    AWAIT_RESPONSE = "await_response"  # ECR: request ACKed, terminal is working
    PROCESSING = "processing"  # terminal: request received, response not yet sent
    FAILED = "failed"  # ECR: link gave up or timed out; call reset()


class Trigger(enum.Enum):
    """What moves a state machine."""

    SEND_REQUEST = "send_request"
    SEND_RESPONSE = "send_response"
    ACKED = "acked"
    RETRY = "retry"
    GIVE_UP = "give_up"
    FRAME = "frame"
    TIMEOUT = "timeout"
    PEER_EOT = "peer_eot"
    RESET = "reset"


S, T = State, Trigger
#: The one transition table. Missing pairs are protocol violations (LocalProtocolError for our
#: own sends) or are ignored (stray ACK/NAK while idle).
TRANSITIONS: dict[str, dict[tuple[State, Trigger], State]] = {
    "ecr": {
        (S.IDLE, T.SEND_REQUEST): S.AWAIT_ACK,
        (S.AWAIT_ACK, T.ACKED): S.AWAIT_RESPONSE,
        (S.AWAIT_ACK, T.RETRY): S.AWAIT_ACK,
        (S.AWAIT_ACK, T.GIVE_UP): S.FAILED,
        (S.AWAIT_ACK, T.FRAME): S.IDLE,  # response before ACK: the ACK was lost; accept
        (S.AWAIT_ACK, T.PEER_EOT): S.FAILED,
        (S.AWAIT_RESPONSE, T.FRAME): S.IDLE,
        (S.AWAIT_RESPONSE, T.TIMEOUT): S.FAILED,
        (S.AWAIT_RESPONSE, T.PEER_EOT): S.FAILED,
        (S.FAILED, T.RESET): S.IDLE,
        (S.IDLE, T.RESET): S.IDLE,
    },
    "terminal": {
        (S.IDLE, T.FRAME): S.PROCESSING,
        (S.PROCESSING, T.SEND_RESPONSE): S.AWAIT_ACK,
        (S.AWAIT_ACK, T.ACKED): S.IDLE,
        (S.AWAIT_ACK, T.RETRY): S.AWAIT_ACK,
        (S.AWAIT_ACK, T.GIVE_UP): S.IDLE,  # a terminal never dies; it waits for the next ECR
        (S.AWAIT_ACK, T.PEER_EOT): S.IDLE,
        (S.AWAIT_ACK, T.FRAME): S.PROCESSING,  # a new request: our response's ACK was lost
        (S.PROCESSING, T.RESET): S.IDLE,
        (S.IDLE, T.RESET): S.IDLE,
    },
}


class NeedData(enum.Enum):
    """Sentinel type: no complete event yet."""

    NEED_DATA = "need_data"


NEED_DATA = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """The peer ACKed our frame."""


@dataclass(frozen=True, slots=True)
class Retransmitted:
    """We repeated our frame (after a NAK or an ACK timeout)."""

    attempt: int
    reason: str


@dataclass(frozen=True, slots=True)
class LinkFailed:
    """We gave up on the frame after ``max_attempts`` failures and sent EOT."""

    reason: str


@dataclass(frozen=True, slots=True)
class ResponseTimedOut:
    """ECR: the terminal ACKed the request but never answered."""

    waited: float


@dataclass(frozen=True, slots=True)
class PeerGaveUp:
    """The peer sent EOT while we were waiting on it."""


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """A damaged frame arrived and was NAKed (informational)."""

    reason: str
    offset: int


LinkEvent = (
    Acknowledged | Retransmitted | LinkFailed | ResponseTimedOut | PeerGaveUp | FrameRejected
)
Event = Request | Response | LinkEvent


class _Connection:
    """Shared link logic; :class:`EcrConnection` and :class:`TerminalConnection` add the roles."""

    role = "ecr"

    def __init__(self, timers: PosLinkTimers | None = None, now: float = 0.0) -> None:
        self.timers = timers or PosLinkTimers()
        self.state = State.IDLE
        self._decoder = FrameDecoder()
        self._events: deque[Event | RemoteProtocolError] = deque()
        self._outbox = bytearray()
        self._now = now
        self._last_byte = now
        self._frame_out: bytes | None = None
        self._failures = 0
        self._ack_deadline: float | None = None
        self._last_frame_in: bytes | None = None

    # ------------------------------------------------------------------ public API
    def receive_data(self, data: bytes, now: float | None = None) -> None:
        """Feed bytes from the line. Events become available from :meth:`next_event`."""
        if now is not None:
            self._now = now
        if data:
            self._last_byte = self._now
        self._decoder.feed(data)
        while (token := self._decoder.next_token()) is not None:
            if isinstance(token, Control):
                self._on_control(token.byte)
            elif isinstance(token, CorruptFrame):
                self._outbox.append(NAK)
                self._events.append(FrameRejected(token.reason, token.offset))
            elif isinstance(token, Frame):
                self._on_frame(token)
            # Noise between frames is dropped: line noise is expected on serial links.

    def next_event(self) -> Event | NeedData:
        """The next event, or :data:`NEED_DATA`.

        :raises RemoteProtocolError: a frame passed the LRC check but its content is invalid
        """
        if not self._events:
            return NEED_DATA
        event = self._events.popleft()
        if isinstance(event, RemoteProtocolError):
            raise event
        return event

    def data_to_send(self) -> bytes:
        """Control bytes and repeats the machine wants written, in order (then cleared)."""
        data = bytes(self._outbox)
        self._outbox.clear()
        return data

    def tick(self, now: float) -> None:
        """Advance time: fires the inter-byte, ACK and response timers."""
        self._now = now
        if self._decoder.in_frame and now - self._last_byte > self.timers.inter_byte_timeout:
            self._decoder.abandon_frame("inter-byte timeout inside a frame")
            self.receive_data(b"")
        if self.state is State.AWAIT_ACK and self._ack_deadline is not None:
            if now >= self._ack_deadline:
                self._failed_attempt("no ACK within the ACK timeout")
        self._tick_role(now)

    def reset(self) -> None:
        """Back to idle after a failure (drops any half-received frame)."""
        self._move(Trigger.RESET)
        self._decoder = FrameDecoder()
        self._frame_out = None
        self._ack_deadline = None

    # ------------------------------------------------------------------ internals
    def _move(self, trigger: Trigger) -> None:
        key = (self.state, trigger)
        table = TRANSITIONS[self.role]
        if key not in table:
            raise LocalProtocolError(
                f"{self.role}: {trigger.value} not allowed in {self.state.value}"
            )
        self.state = table[key]

    def _can(self, trigger: Trigger) -> bool:
        return (self.state, trigger) in TRANSITIONS[self.role]

    def _transmit(self, frame: bytes) -> bytes:
        self._frame_out = frame
        self._failures = 0
        self._ack_deadline = self._now + self.timers.ack_timeout
        return frame

    def _on_control(self, byte: int) -> None:
        if self.state is not State.AWAIT_ACK:
            if byte == EOT and self._can(Trigger.PEER_EOT):
                self._move(Trigger.PEER_EOT)
                self._events.append(PeerGaveUp())
            return  # a stray ACK/NAK (e.g. a duplicate) changes nothing
        if byte == ACK:
            self._ack_deadline = None
            self._move(Trigger.ACKED)
            self._on_acked()
            self._events.append(Acknowledged())
        elif byte == NAK:
            self._failed_attempt("NAK from the peer")
        else:
            self._ack_deadline = None
            self._move(Trigger.PEER_EOT)
            self._events.append(PeerGaveUp())

    def _failed_attempt(self, reason: str) -> None:
        self._failures += 1
        if self._failures >= self.timers.max_attempts:
            self._outbox.append(EOT)
            self._ack_deadline = None
            self._move(Trigger.GIVE_UP)
            self._events.append(LinkFailed(f"{reason}, {self._failures} times; sent EOT"))
            return
        assert self._frame_out is not None
        self._move(Trigger.RETRY)
        self._outbox += self._frame_out
        self._ack_deadline = self._now + self.timers.ack_timeout
        self._events.append(Retransmitted(self._failures + 1, reason))

    def _on_frame(self, frame: Frame) -> None:
        self._outbox.append(ACK)  # the LRC was good: the link layer accepts it
        if frame.raw == self._last_frame_in and self.state is not State.IDLE:
            return  # the peer repeated a frame whose ACK it missed; we already have it
        if not self._can(Trigger.FRAME):
            return  # unsolicited frame: acknowledged and dropped
        self._last_frame_in = frame.raw
        self._ack_deadline = None
        self._move(Trigger.FRAME)
        try:
            self._events.append(self._decode(frame))
        except RemoteProtocolError as exc:
            self._on_bad_content()
            self._events.append(exc)

    def _on_acked(self) -> None:
        """Role hook: our frame was acknowledged."""

    def _tick_role(self, now: float) -> None:
        """Role hook: role-specific timers."""

    def _decode(self, frame: Frame) -> Event:
        raise NotImplementedError

    def _on_bad_content(self) -> None:
        """Role hook: a frame with a good LRC but invalid content arrived."""


class EcrConnection(_Connection):
    """The cash-register side (what the agent runs)."""

    role = "ecr"

    def __init__(self, timers: PosLinkTimers | None = None, now: float = 0.0) -> None:
        super().__init__(timers, now)
        self._expected: str | None = None
        self._response_deadline: float | None = None
        self._response_wait = 0.0
        self.awaiting_since: float | None = None

    def send(self, request: Request, now: float | None = None) -> bytes:
        """Frame ``request`` and start waiting for its ACK.

        :raises LocalProtocolError: a request is already outstanding
        """
        if now is not None:
            self._now = now
        if type(request) not in REQUEST_COMMANDS:
            raise LocalProtocolError(f"the ECR cannot send {type(request).__name__}")
        self._move(Trigger.SEND_REQUEST)
        command = REQUEST_COMMANDS[type(request)]
        self._expected = RESPONSE_FOR[command]
        self._response_wait = (
            self.timers.batch_close_timeout
            if isinstance(request, BatchCloseRequest)
            else self.timers.response_timeout
        )
        self._last_frame_in = None
        self.awaiting_since = self._now
        return self._transmit(encode_request(request))

    def _on_acked(self) -> None:
        self._response_deadline = self._now + self._response_wait

    def _tick_role(self, now: float) -> None:
        if self.state is State.AWAIT_RESPONSE and self._response_deadline is not None:
            if now >= self._response_deadline:
                self._response_deadline = None
                self._move(Trigger.TIMEOUT)
                self._events.append(ResponseTimedOut(self._response_wait))

    def _decode(self, frame: Frame) -> Event:
        self._response_deadline = None
        return decode_response(frame, self._expected)

    def _on_bad_content(self) -> None:
        self.state = State.FAILED


class TerminalConnection(_Connection):
    """The terminal side (what the simulator runs)."""

    role = "terminal"

    def __init__(self, timers: PosLinkTimers | None = None, now: float = 0.0) -> None:
        super().__init__(timers, now)
        self._pending: str | None = None

    def send(self, response: Response, now: float | None = None) -> bytes:
        """Frame ``response`` to the request being processed.

        :raises LocalProtocolError: no request is pending, or the response does not match it
        """
        if now is not None:
            self._now = now
        command = RESPONSE_COMMANDS.get(type(response))
        if command is None or self._pending is None or RESPONSE_FOR[self._pending] != command:
            raise LocalProtocolError(
                f"the terminal cannot send {type(response).__name__} now (pending: {self._pending})"
            )
        self._move(Trigger.SEND_RESPONSE)
        self._pending = None
        return self._transmit(encode_response(response))

    def _decode(self, frame: Frame) -> Event:
        request = decode_request(frame)
        self._pending = REQUEST_COMMANDS[type(request)]
        return request

    def _on_bad_content(self) -> None:
        self.state = State.IDLE
        self._pending = None
