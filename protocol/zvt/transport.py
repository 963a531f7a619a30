"""ZVT transport layers: the serial block protocol and the bare-APDU TCP/IP stream.

Theory of operation (serial, PA00P016 §3)
-----------------------------------------
Every APDU travels as ``DLE STX <APDU> DLE ETX CRC-lo CRC-hi`` (§3.1). A ``10`` inside the
APDU -- anywhere, command bytes included -- is sent twice; the extra DLE counts neither for
the CRC nor for the APDU length. The CRC is CRC-16 with the reflected polynomial 0x8408 and
start value 0 (the CRC-16/KERMIT variant) over the unstuffed APDU plus ETX (§3.3); its two
bytes follow the frame low byte first and are *not* stuffed.

The receiver answers every frame with one byte, ACK ``06`` or NAK ``15`` (§3.2), before it
looks at the content. A frame whose bytes are more than T1 (200 ms) apart is discarded and
NAKed (§3.4.1). The sender waits up to T2 (5 s) for that byte (§3.4.2); after a NAK or a T2
time-out it repeats the frame, at most twice; then both sides report a transmission error
(§3.5). ZVT is half-duplex master/slave, so one frame at a time is in flight; further APDUs
queue behind it.

:class:`SerialLink` plays either role -- ECR or terminal -- the same way: feed it bytes with
:meth:`~SerialLink.receive_data`, read events with :meth:`~SerialLink.next_event`, queue
APDUs with :meth:`~SerialLink.send_apdu`, write what :meth:`~SerialLink.data_to_send`
returns, and call :meth:`~SerialLink.tick` with a monotonic clock so the timers can fire.

TCP/IP (PA00P016 §4): APDUs are sent bare, with no framing, CRC or ACK; a receiver must cope
with any segmentation. :class:`TcpLink` offers the same interface over a streaming splitter.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from ..errors import LocalProtocolError
from .apdu import MAX_DATA_LENGTH, apdu_length

DLE, STX, ETX, ACK, NAK = 0x10, 0x02, 0x03, 0x06, 0x15

T1 = 0.2
T2 = 5.0
MAX_REPEATS = 2
#: A frame may not hold more than the biggest APDU (5 header bytes + 65535 data bytes).
MAX_APDU_SIZE = 5 + MAX_DATA_LENGTH


def crc16(data: bytes) -> int:
    """CRC-16/KERMIT (reflected poly 0x8408, init 0) as PA00P016 §3.3 uses it."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def encode_frame(apdu: bytes) -> bytes:
    """Wrap one APDU in the serial block structure (PA00P016 §3.1)."""
    crc = crc16(apdu + bytes((ETX,)))
    body = apdu.replace(b"\x10", b"\x10\x10")
    return bytes((DLE, STX)) + body + bytes((DLE, ETX, crc & 0xFF, crc >> 8))


# -- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApduReceived:
    """A frame arrived intact (and was ACKed); ``apdu`` is its unstuffed content."""

    apdu: bytes


@dataclass(frozen=True, slots=True)
class FrameAcknowledged:
    """The peer ACKed the frame we sent; the next queued APDU (if any) goes out."""

    apdu: bytes


@dataclass(frozen=True, slots=True)
class FrameRepeated:
    """We repeat a frame because of a NAK or a T2 time-out (``reason``); ``attempt`` 2 or 3."""

    reason: str
    attempt: int


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """We NAKed an incoming frame: bad CRC, broken structure or a T1 gap."""

    reason: str


@dataclass(frozen=True, slots=True)
class TransmissionFailed:
    """PA00P016 §3.5 gave up: a frame was not delivered after two repeats, or three
    consecutive incoming frames were corrupt."""

    reason: str


LinkEvent = ApduReceived | FrameAcknowledged | FrameRepeated | FrameRejected | TransmissionFailed


class RxState(Enum):
    """Receiver states of the serial frame parser."""

    HUNT = "hunt"  # outside a frame, skipping anything but DLE STX (and ACK/NAK)
    HUNT_DLE = "hunt_dle"  # saw DLE outside a frame
    BODY = "body"  # inside the APDU
    BODY_DLE = "body_dle"  # saw DLE inside the APDU: DLE (stuffed), ETX or a broken frame
    CRC = "crc"  # after DLE ETX, collecting the two CRC bytes


class SerialLink:
    """One end of a ZVT serial link (role-neutral), sans-I/O.

    :param t1: inter-byte time-out inside a frame, seconds
    :param t2: time to wait for ACK/NAK, seconds
    :param max_repeats: repeats of a frame before a transmission error
    """

    def __init__(self, *, t1: float = T1, t2: float = T2, max_repeats: int = MAX_REPEATS) -> None:
        self.t1, self.t2, self.max_repeats = t1, t2, max_repeats
        self._events: deque[LinkEvent] = deque()
        self._out = bytearray()
        self._queue: deque[bytes] = deque()
        # sender side
        self._in_flight: bytes | None = None
        self._attempt = 0
        self._ack_deadline: float | None = None
        self._awaiting_ack = False
        # receiver side
        self._rx = RxState.HUNT
        self._body = bytearray()
        self._crc = bytearray()
        self._bytes_since_tick = False
        self._last_byte_at: float | None = None
        self._bad_frames = 0
        self._last_reply_at = -1  # index in _out of the ACK we just queued, for fault injection
        self.now = 0.0

    # -- public API ------------------------------------------------------------------------

    def send_apdu(self, apdu: bytes) -> None:
        """Queue ``apdu``; it is framed and sent once every earlier one is acknowledged.

        :raises LocalProtocolError: the APDU is empty or too large
        """
        if not 3 <= len(apdu) <= MAX_APDU_SIZE:
            raise LocalProtocolError(f"APDU of {len(apdu)} bytes cannot be sent")
        self._queue.append(bytes(apdu))
        self._start_next()

    def data_to_send(self) -> bytes:
        """Bytes to write to the line now (frames, ACK and NAK); empties the buffer."""
        data = bytes(self._out)
        self._out.clear()
        self._last_reply_at = -1
        return data

    def next_event(self) -> LinkEvent | None:
        """The next event, or ``None`` when there is nothing new."""
        return self._events.popleft() if self._events else None

    @property
    def idle(self) -> bool:
        """True when nothing is in flight or queued."""
        return self._in_flight is None and not self._queue

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the line (any amount, any split)."""
        if data:
            self._bytes_since_tick = True
            if self._last_byte_at is None:
                self._last_byte_at = self.now
        for byte in data:
            self._receive_byte(byte)

    def tick(self, now: float) -> None:
        """Advance the clock: fires T1 (NAK a stalled frame) and T2 (repeat a frame)."""
        self.now = now
        if self._bytes_since_tick:
            self._bytes_since_tick = False
            self._last_byte_at = now
        in_frame = self._rx is not RxState.HUNT and self._rx is not RxState.HUNT_DLE
        if in_frame and self._last_byte_at is not None and now - self._last_byte_at >= self.t1:
            self._reject(f"T1: more than {self.t1 * 1000:.0f} ms between two bytes")
        if self._awaiting_ack:
            if self._ack_deadline is None:
                self._ack_deadline = now + self.t2
            elif now >= self._ack_deadline:
                self._repeat(f"T2: no ACK within {self.t2:.1f} s")

    def withhold_ack(self) -> None:
        """Take back the ACK queued for the frame just received, as if it was never seen.

        For fault injection (the simulator's "drop ACKs") and for an application that cannot
        accept the frame; call it right after :meth:`receive_data`, before
        :meth:`data_to_send`.
        """
        self._take_back_reply()

    def reject_frame(self) -> None:
        """Replace the ACK queued for the frame just received by a NAK (fault injection)."""
        if self._take_back_reply():
            self._out.append(NAK)

    # -- receiver ----------------------------------------------------------------------------

    def _receive_byte(self, byte: int) -> None:
        state = self._rx
        if state is RxState.HUNT:
            if byte == DLE:
                self._rx = RxState.HUNT_DLE
            elif byte in (ACK, NAK) and self._awaiting_ack:
                self._on_reply(byte)
            # anything else between frames is line noise: skipped (resynchronisation)
        elif state is RxState.HUNT_DLE:
            if byte == STX:
                self._begin_frame()
            else:
                self._rx = RxState.HUNT
        elif state is RxState.BODY:
            if byte == DLE:
                self._rx = RxState.BODY_DLE
            else:
                self._append(byte)
        elif state is RxState.BODY_DLE:
            if byte == DLE:
                self._rx = RxState.BODY
                self._append(DLE)
            elif byte == ETX:
                self._rx = RxState.CRC
            elif byte == STX:
                # a new frame starts inside the old one: the sender gave up on it; follow it
                self._begin_frame()
            else:
                self._reject(f"DLE followed by {byte:02X} inside a frame")
        else:  # CRC
            self._crc.append(byte)
            if len(self._crc) == 2:
                self._finish_frame()

    def _begin_frame(self) -> None:
        self._rx = RxState.BODY
        self._body.clear()
        self._crc.clear()
        self._last_byte_at = self.now

    def _append(self, byte: int) -> None:
        if len(self._body) >= MAX_APDU_SIZE:
            self._reject("frame longer than the largest APDU")
            return
        self._body.append(byte)

    def _finish_frame(self) -> None:
        apdu = bytes(self._body)
        received = self._crc[0] | self._crc[1] << 8
        expected = crc16(apdu + bytes((ETX,)))
        if received != expected:
            self._reject(f"CRC {received:04X}, expected {expected:04X}")
            return
        size = apdu_length(apdu)
        if size is None or size != len(apdu):
            self._reject(f"APDU length field does not match the {len(apdu)} bytes framed")
            return
        self._rx = RxState.HUNT
        self._last_byte_at = None
        self._bad_frames = 0
        self._last_reply_at = len(self._out)
        self._out.append(ACK)
        self._events.append(ApduReceived(apdu))

    def _reject(self, reason: str) -> None:
        self._rx = RxState.HUNT
        self._body.clear()
        self._crc.clear()
        self._last_byte_at = None
        self._out.append(NAK)
        self._events.append(FrameRejected(reason))
        self._bad_frames += 1
        if self._bad_frames > self.max_repeats:
            self._bad_frames = 0
            self._events.append(TransmissionFailed(f"{self.max_repeats + 1} bad frames: {reason}"))

    def _take_back_reply(self) -> bool:
        index = self._last_reply_at
        if index < 0 or index >= len(self._out) or self._out[index] != ACK:
            return False
        del self._out[index]
        self._last_reply_at = -1
        return True

    # -- sender ------------------------------------------------------------------------------

    def _start_next(self) -> None:
        if self._in_flight is not None or not self._queue:
            return
        self._in_flight = self._queue.popleft()
        self._attempt = 1
        self._transmit()

    def _transmit(self) -> None:
        assert self._in_flight is not None
        self._out += encode_frame(self._in_flight)
        self._awaiting_ack = True
        self._ack_deadline = None  # starts at the next tick, i.e. once the frame is written

    def _on_reply(self, byte: int) -> None:
        if byte == ACK:
            assert self._in_flight is not None
            self._events.append(FrameAcknowledged(self._in_flight))
            self._in_flight = None
            self._awaiting_ack = False
            self._start_next()
        else:
            self._repeat("NAK from the peer")

    def _repeat(self, reason: str) -> None:
        if self._attempt > self.max_repeats:
            self._events.append(
                TransmissionFailed(f"frame not delivered after {self._attempt} attempts ({reason})")
            )
            self._in_flight = None
            self._awaiting_ack = False
            self._queue.clear()
            return
        self._attempt += 1
        self._events.append(FrameRepeated(reason, self._attempt))
        self._transmit()


class TcpLink:
    """ZVT over TCP/IP (PA00P016 §4): bare APDUs, no framing, no ACK; same interface as
    :class:`SerialLink` so the application code does not care which one it drives."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._out = bytearray()
        self._events: deque[LinkEvent] = deque()
        self.now = 0.0

    @property
    def idle(self) -> bool:
        """Always true: TCP hands bytes over at once."""
        return True

    def send_apdu(self, apdu: bytes) -> None:
        """Queue ``apdu`` for sending as it is.

        :raises LocalProtocolError: the bytes are not exactly one APDU
        """
        if apdu_length(apdu) != len(apdu):
            raise LocalProtocolError("send_apdu needs exactly one complete APDU")
        self._out += apdu

    def data_to_send(self) -> bytes:
        """Bytes to write to the socket now; empties the buffer."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the socket; complete APDUs become :class:`ApduReceived` events."""
        self._buffer += data
        while True:
            size = apdu_length(bytes(self._buffer[:5]))
            if size is None or len(self._buffer) < size:
                return
            self._events.append(ApduReceived(bytes(self._buffer[:size])))
            del self._buffer[:size]

    @property
    def pending(self) -> int:
        """Bytes of an incomplete APDU held back."""
        return len(self._buffer)

    def next_event(self) -> LinkEvent | None:
        """The next event, or ``None``."""
        return self._events.popleft() if self._events else None

    def tick(self, now: float) -> None:
        """No link timers over TCP; T3/T4 live in the application layer."""
        self.now = now
