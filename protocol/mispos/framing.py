"""MIS-POS frames: ``STX LEN(2 bytes, 4 BCD digits) BODY ETX LRC`` (docs/mispos.md §Frame).

The body length is four decimal digits packed as nibbles, big-endian (a 111-byte body is
``01 11``), so a frame is at most 9999 + 5 bytes; the reference client keeps requests in 1 KiB
and replies in 4 KiB, and so do we. The LRC is the XOR of every byte from the first LEN byte
through ETX. The body is not escaped: STX and ETX may appear inside it, so the end of a frame
is taken from LEN, never from scanning for ETX (public Allinpay-style client code,
gsccs/mispos-client, frame reader).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LocalProtocolError, RemoteProtocolError

STX = 0x02
ETX = 0x03
#: Largest body we build or accept: the reference client reads replies into 4 KiB.
MAX_BODY = 4096 - 5


def lrc(data: bytes) -> int:
    """XOR of ``data`` (pass LEN..ETX)."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def encode_length(length: int) -> bytes:
    """``length`` as 4 BCD digits in 2 bytes: 20 → ``00 20``, 867 → ``08 67``.

    :raises LocalProtocolError: outside 0..9999
    """
    if not 0 <= length <= 9999:
        raise LocalProtocolError(f"body of {length} bytes does not fit the 4-digit BCD length")
    digits = f"{length:04d}"
    return bytes.fromhex(digits)


def decode_length(raw: bytes, offset: int = 1) -> int:
    """The body length from the two BCD bytes ``raw``.

    :raises RemoteProtocolError: a nibble above 9 (names the byte ``offset``)
    """
    value = 0
    for i, byte in enumerate(raw[:2]):
        high, low = byte >> 4, byte & 0x0F
        if high > 9 or low > 9:
            raise RemoteProtocolError(f"length byte 0x{byte:02X} is not BCD", offset + i)
        value = value * 100 + high * 10 + low
    return value


def encode_frame(body: bytes) -> bytes:
    """Wrap a TLV body in STX, BCD length, ETX and LRC.

    :raises LocalProtocolError: body longer than :data:`MAX_BODY`
    """
    if len(body) > MAX_BODY:
        raise LocalProtocolError(f"body of {len(body)} bytes exceeds {MAX_BODY}")
    inner = encode_length(len(body)) + body + bytes([ETX])
    return bytes([STX]) + inner + bytes([lrc(inner)])


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete, checked frame: ``raw`` as received, ``body`` its TLV list."""

    raw: bytes

    @property
    def body(self) -> bytes:
        """The TLV list between LEN and ETX."""
        return self.raw[3:-2]


class FrameDecoder:
    """Cut a byte stream into frames.

    Bytes before an STX are line noise and are dropped (counted in :attr:`skipped`). Once an
    STX is seen the frame ends LEN + 4 bytes later. A frame with a bad length, ETX or LRC
    raises :class:`RemoteProtocolError` from :meth:`next_frame` with the offset within the
    frame; the decoder then discards that frame's bytes, so the stream stays usable.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.skipped = 0

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buffer += data

    def reset(self) -> None:
        """Forget everything buffered (a new exchange starts)."""
        self._buffer.clear()

    @property
    def buffered(self) -> int:
        """Bytes held that are not yet a frame."""
        return len(self._buffer)

    def next_frame(self) -> Frame | None:
        """The next complete frame, or ``None`` until more bytes arrive.

        :raises RemoteProtocolError: the frame at the head of the buffer is damaged
        """
        buf = self._buffer
        start = buf.find(STX)
        if start < 0:
            self.skipped += len(buf)
            buf.clear()
            return None
        if start:
            self.skipped += start
            del buf[:start]
        if len(buf) < 3:
            return None
        try:
            length = decode_length(bytes(buf[1:3]))
            if length > MAX_BODY:
                raise RemoteProtocolError(f"frame length {length} exceeds {MAX_BODY}", 1)
        except RemoteProtocolError:
            del buf[:1]  # drop this STX so a later one can start a frame
            raise
        total = length + 5
        if len(buf) < total:
            return None
        frame = bytes(buf[:total])
        del buf[:total]
        if frame[-2] != ETX:
            raise RemoteProtocolError(f"expected ETX, got 0x{frame[-2]:02X}", total - 2)
        expected = lrc(frame[1:-1])
        if frame[-1] != expected:
            raise RemoteProtocolError(
                f"LRC 0x{frame[-1]:02X} does not match 0x{expected:02X}", total - 1
            )
        return Frame(frame)
