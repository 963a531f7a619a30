"""PAX POSLink serial framing: ``STX payload ETX LRC`` plus the ACK/NAK/EOT control bytes.

A request payload is ``cmd FS version FS field FS field …``; a response payload starts with a
status field (``status FS cmd FS version FS code FS message FS …``). The LRC is the XOR of every
byte after STX up to and including ETX. Inside a field, sub-fields are split by US (0x1F) and
groups by GS (0x1D); those separators never end a frame. Sources and confirmation status are
in :mod:`protocol.poslink.fields` and ``firmware_notes/pax-poslink.md``.

:class:`FrameDecoder` is incremental and sans-I/O: feed it any split of the byte stream and
take :data:`Token` values out. It never raises on garbage; a damaged frame becomes a
:class:`CorruptFrame` token with the stream offset of the problem, and stray bytes between
frames become :class:`Noise`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

STX = 0x02
ETX = 0x03
EOT = 0x04
ACK = 0x06
NAK = 0x15
FS = 0x1C
GS = 0x1D
US = 0x1F

CONTROL_NAMES = {ACK: "ACK", NAK: "NAK", EOT: "EOT"}

#: Longest frame we accept (STX … ETX LRC). Our messages are far below it; a runaway
#: frame (lost ETX) is cut off here instead of growing without bound.
MAX_FRAME = 16 * 1024


def lrc(data: bytes) -> int:
    """XOR of ``data`` (pass the bytes after STX through ETX inclusive)."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def encode_frame(fields: Sequence[bytes]) -> bytes:
    """Join ``fields`` with FS and wrap them as ``STX … ETX LRC``.

    :raises ValueError: a field contains STX, ETX or FS (it would break the framing)
    """
    for index, field in enumerate(fields):
        for forbidden in (STX, ETX, FS):
            if forbidden in field:
                raise ValueError(f"field {index} contains control byte 0x{forbidden:02X}")
    body = bytes([FS]).join(fields) + bytes([ETX])
    return bytes([STX]) + body + bytes([lrc(body)])


def split_payload(payload: bytes) -> tuple[list[bytes], list[int]]:
    """Split a frame payload (between STX and ETX) at FS.

    :returns: the fields and, for each, its offset within the frame (STX is offset 0)
    """
    fields = payload.split(bytes([FS]))
    offsets: list[int] = []
    position = 1
    for field in fields:
        offsets.append(position)
        position += len(field) + 1
    return fields, offsets


@dataclass(frozen=True, slots=True)
class Control:
    """A single ACK, NAK or EOT byte outside a frame."""

    byte: int
    offset: int

    @property
    def name(self) -> str:
        """``ACK``, ``NAK`` or ``EOT``."""
        return CONTROL_NAMES[self.byte]


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete frame whose LRC checked out."""

    payload: bytes  # between STX and ETX, exclusive
    raw: bytes  # STX … ETX LRC, as received
    offset: int  # stream offset of the STX


@dataclass(frozen=True, slots=True)
class CorruptFrame:
    """A frame that failed: bad LRC, too long, interrupted by STX, or timed out."""

    reason: str
    offset: int  # stream offset where the problem was detected
    raw: bytes


@dataclass(frozen=True, slots=True)
class Noise:
    """A byte outside any frame that is not a control byte (line noise)."""

    data: bytes
    offset: int


Token = Control | Frame | CorruptFrame | Noise


class FrameDecoder:
    """Splits a POSLink byte stream into :data:`Token` values, whatever the chunking."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._max_frame = max_frame
        self._tokens: deque[Token] = deque()
        self._frame: bytearray | None = None  # bytes of the frame in progress, from STX
        self._frame_offset = 0
        self._awaiting_lrc = False
        self._offset = 0  # stream offset of the next byte fed

    @property
    def in_frame(self) -> bool:
        """True while a frame has started but not ended (for the inter-byte timer)."""
        return self._frame is not None

    def feed(self, data: bytes) -> None:
        """Add received bytes; complete tokens become available from :meth:`next_token`."""
        for byte in data:
            self._feed_byte(byte)
            self._offset += 1

    def next_token(self) -> Token | None:
        """The next complete token, or ``None`` if more bytes are needed."""
        return self._tokens.popleft() if self._tokens else None

    def abandon_frame(self, reason: str) -> None:
        """Give up on a frame in progress (the inter-byte timer ran out)."""
        if self._frame is not None:
            self._tokens.append(CorruptFrame(reason, self._offset, bytes(self._frame)))
            self._frame = None
            self._awaiting_lrc = False

    def _feed_byte(self, byte: int) -> None:
        frame = self._frame
        if frame is None:
            self._outside_frame(byte)
            return
        frame.append(byte)
        if self._awaiting_lrc:
            self._finish(frame, byte)
        elif byte == ETX:
            self._awaiting_lrc = True
        elif byte == STX:
            # A new STX before ETX: the previous frame was cut short; start over here.
            self._tokens.append(CorruptFrame("STX inside a frame", self._offset, bytes(frame[:-1])))
            self._start(byte)
        elif len(frame) > self._max_frame:
            self._tokens.append(CorruptFrame("frame too long", self._offset, bytes(frame)))
            self._frame = None

    def _outside_frame(self, byte: int) -> None:
        if byte == STX:
            self._start(byte)
        elif byte in CONTROL_NAMES:
            self._tokens.append(Control(byte, self._offset))
        else:
            # One token per stray byte, so the result does not depend on how reads split.
            self._tokens.append(Noise(bytes([byte]), self._offset))

    def _start(self, byte: int) -> None:
        self._frame = bytearray([byte])
        self._frame_offset = self._offset
        self._awaiting_lrc = False

    def _finish(self, frame: bytearray, received_lrc: int) -> None:
        self._frame = None
        self._awaiting_lrc = False
        body = bytes(frame[1:-1])  # after STX, through ETX
        if lrc(body) != received_lrc:
            reason = f"LRC mismatch: got 0x{received_lrc:02X}, computed 0x{lrc(body):02X}"
            self._tokens.append(CorruptFrame(reason, self._offset, bytes(frame)))
            return
        self._tokens.append(Frame(body[:-1], bytes(frame), self._frame_offset))
