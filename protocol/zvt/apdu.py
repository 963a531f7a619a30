"""ZVT APDUs, packed BCD, variable-length fields and bitmaps (sans-I/O codecs).

References (VDTH ZVT specification, public edition):

* PA00P016 §5.2.1-§5.2.4 -- an APDU is a two-byte control field (``CLASS INSTR`` for a
  command, ``CCRC APRC`` for a response), a length field and the data block. The length is
  one byte (0..254); the value ``FF`` announces a two-byte extended length that follows,
  *low byte first*.
* PA00P016 §5.2.7 -- parameters are either positional or prefixed with a bitmap number.
* PA00P016 §5.2.8 -- LLVAR / LLLVAR: two or three bytes ``Fx`` whose low nibbles are the
  decimal digits of the field length.
* PA00P015 §13 -- the format (and so the length) of every bitmap. A receiver can only walk a
  bitmap list when it knows each bitmap's length class, so an unknown bitmap is an error
  (the terminal answers one with ``84 83``); we raise :class:`RemoteProtocolError`.
* PA00P015 §1.2 -- the password is six digits packed as three BCD bytes.

All decoders raise :class:`~protocol.errors.RemoteProtocolError` with the byte offset of
the problem; encoders raise :class:`~protocol.errors.LocalProtocolError` for values that do
not fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..errors import LocalProtocolError, RemoteProtocolError
from .tlv import encode_length, read_length

# -- packed BCD ---------------------------------------------------------------------------


def bcd_encode(value: int, size: int) -> bytes:
    """Pack a non-negative integer as ``size`` bytes of BCD, most significant digit first.

    :param value: the number, e.g. 1234 for an amount of 12.34
    :param size: field width in bytes (two digits per byte)
    :raises LocalProtocolError: negative, not an int, or too many digits for the field
    """
    if type(value) is not int or value < 0:
        raise LocalProtocolError(f"BCD value must be a non-negative int, got {value!r}")
    digits = f"{value:0{size * 2}d}"
    if len(digits) > size * 2:
        raise LocalProtocolError(f"{value} does not fit in {size} BCD bytes")
    return bytes.fromhex(digits)


def bcd_decode(data: bytes, offset: int = 0) -> int:
    """Unpack BCD bytes into an integer.

    :param data: the packed digits
    :param offset: where ``data`` starts in the enclosing buffer, for error messages
    :raises RemoteProtocolError: a nibble is not a decimal digit
    """
    return int(bcd_digits(data, offset) or "0")


def bcd_digits(data: bytes, offset: int = 0) -> str:
    """The decimal digits of packed BCD ``data`` as a string (leading zeros kept)."""
    text = data.hex()
    for index, char in enumerate(text):
        if not char.isdigit():
            raise RemoteProtocolError(f"invalid BCD digit {char!r}", offset + index // 2)
    return text


def password_bytes(password: str | None) -> bytes:
    """The three-byte BCD password (PA00P015 §1.2); ``None`` means ``000000``.

    :raises LocalProtocolError: not exactly six decimal digits
    """
    text = "000000" if password is None else password
    if len(text) != 6 or not text.isascii() or not text.isdigit():
        raise LocalProtocolError("the ZVT password must be exactly six digits")
    return bytes.fromhex(text)


# -- APDU ---------------------------------------------------------------------------------

MAX_SHORT_LENGTH = 0xFE
EXTENDED_LENGTH = 0xFF
MAX_DATA_LENGTH = 0xFFFF


@dataclass(frozen=True, slots=True)
class Apdu:
    """One application protocol data unit.

    For commands ``control`` is ``(CLASS, INSTR)``; for responses ``(CCRC, APRC)``.
    """

    cls: int
    instr: int
    data: bytes = b""

    def __post_init__(self) -> None:
        for name in ("cls", "instr"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= 0xFF:
                raise LocalProtocolError(f"APDU {name} must be one byte, got {value!r}")
        if len(self.data) > MAX_DATA_LENGTH:
            raise LocalProtocolError(f"APDU data of {len(self.data)} bytes exceeds 65535")

    @property
    def control(self) -> tuple[int, int]:
        """The control field as a pair, e.g. ``(0x06, 0x0F)``."""
        return (self.cls, self.instr)

    def encode(self) -> bytes:
        """The APDU bytes (without any transport framing)."""
        size = len(self.data)
        if size <= MAX_SHORT_LENGTH:
            header = bytes((self.cls, self.instr, size))
        else:
            header = bytes((self.cls, self.instr, EXTENDED_LENGTH, size & 0xFF, size >> 8))
        return header + self.data

    def __repr__(self) -> str:
        return f"Apdu({self.cls:02X} {self.instr:02X}, data={self.data.hex(' ').upper()!r})"


def apdu_length(buffer: bytes) -> int | None:
    """Total size of the APDU at the start of ``buffer``, or ``None`` if more bytes are needed."""
    if len(buffer) < 3:
        return None
    if buffer[2] != EXTENDED_LENGTH:
        return 3 + buffer[2]
    if len(buffer) < 5:
        return None
    return 5 + (buffer[3] | buffer[4] << 8)


def decode_apdu(buffer: bytes, offset: int = 0) -> Apdu:
    """Decode exactly one APDU.

    :param buffer: the APDU bytes, nothing before or after
    :param offset: position of ``buffer`` in a larger stream, for error messages
    :raises RemoteProtocolError: truncated, or with bytes left over
    """
    size = apdu_length(buffer)
    if size is None:
        raise RemoteProtocolError(f"APDU of {len(buffer)} bytes is too short", offset)
    if len(buffer) < size:
        raise RemoteProtocolError(
            f"APDU announces {size} bytes but only {len(buffer)} arrived", offset + len(buffer)
        )
    if len(buffer) > size:
        raise RemoteProtocolError(f"{len(buffer) - size} bytes after the APDU", offset + size)
    header = 3 if buffer[2] != EXTENDED_LENGTH else 5
    return Apdu(buffer[0], buffer[1], bytes(buffer[header:]))


# -- LLVAR / LLLVAR -------------------------------------------------------------------------


def encode_var(value: bytes, digits: int) -> bytes:
    """Prefix ``value`` with an LLVAR (``digits=2``) or LLLVAR (``digits=3``) length.

    :raises LocalProtocolError: ``value`` is longer than the length field can say
    """
    if len(value) >= 10**digits:
        raise LocalProtocolError(f"{len(value)} bytes do not fit a {digits}-digit length")
    return bytes(0xF0 | int(d) for d in f"{len(value):0{digits}d}") + value


def decode_var(buffer: bytes, start: int, digits: int) -> tuple[bytes, int]:
    """Read an LLVAR/LLLVAR field at ``start``; returns the value and the offset after it.

    :raises RemoteProtocolError: a length byte is not ``F0``..``F9`` or the value is truncated
    """
    if start + digits > len(buffer):
        raise RemoteProtocolError("variable-length field cut short in its length", len(buffer))
    size = 0
    for index in range(start, start + digits):
        byte = buffer[index]
        if byte & 0xF0 != 0xF0 or byte & 0x0F > 9:
            raise RemoteProtocolError(f"bad LLVAR/LLLVAR length byte {byte:02X}", index)
        size = size * 10 + (byte & 0x0F)
    begin = start + digits
    if begin + size > len(buffer):
        raise RemoteProtocolError(
            f"variable-length field announces {size} bytes, {len(buffer) - begin} present",
            len(buffer),
        )
    return bytes(buffer[begin : begin + size]), begin + size


# -- bitmaps ------------------------------------------------------------------------------


class Kind(Enum):
    """How the length of a bitmap's value is found (PA00P015 §13)."""

    FIXED = "fixed"
    LLVAR = "llvar"
    LLLVAR = "lllvar"
    TLV = "tlv"


# fmt: off
_FIXED_SIZES: dict[int, int] = {
    0x01: 1, 0x02: 1, 0x03: 1, 0x04: 6, 0x05: 1, 0x0B: 3, 0x0C: 3, 0x0D: 2, 0x0E: 2, 0x17: 2,
    0x19: 1, 0x27: 1, 0x29: 4, 0x2A: 15, 0x37: 3, 0x3A: 2, 0x3B: 8, 0x3D: 3, 0x49: 2, 0x70: 4,
    0x71: 4, 0x72: 1, 0x73: 1, 0x74: 1, 0x75: 1, 0x87: 2, 0x88: 3, 0x8A: 1, 0x8C: 1, 0xA0: 1,
    0xAA: 3, 0xBA: 5, 0xD0: 1, 0xD2: 1, 0xD3: 1, 0xE0: 1, 0xE9: 1, 0xEA: 1, 0xEB: 8, 0xF0: 1,
    0xF9: 1, 0xFA: 1, 0xFB: 1, 0xFC: 1, 0xFD: 1,
}
# fmt: on
_LLVAR = (0x22, 0x23, 0x2D, 0x8B, 0xA7, 0xD1, *range(0xE1, 0xE9), *range(0xF1, 0xF9))
_LLLVAR = (0x24, 0x2E, 0x3C, 0x60, 0x9A, 0xAF)

#: Length class of every bitmap listed in PA00P015 §13 (fixed size in bytes, or variable).
BITMAPS: dict[int, tuple[Kind, int]] = {
    **{bmp: (Kind.FIXED, size) for bmp, size in _FIXED_SIZES.items()},
    **{bmp: (Kind.LLVAR, 0) for bmp in _LLVAR},
    **{bmp: (Kind.LLLVAR, 0) for bmp in _LLLVAR},
    0x06: (Kind.TLV, 0),
}


def read_bitmap(buffer: bytes, start: int) -> tuple[int, bytes, int]:
    """Read the bitmap at ``start``: ``(number, value, next_offset)``.

    For the TLV container (``06``) the value is the container's content without its length.

    :raises RemoteProtocolError: unknown bitmap number, or a value cut short
    """
    bmp = buffer[start]
    spec = BITMAPS.get(bmp)
    if spec is None:
        raise RemoteProtocolError(f"unknown bitmap {bmp:02X}; its length cannot be known", start)
    kind, size = spec
    begin = start + 1
    if kind is Kind.LLVAR:
        value, end = decode_var(buffer, begin, 2)
        return bmp, value, end
    if kind is Kind.LLLVAR:
        value, end = decode_var(buffer, begin, 3)
        return bmp, value, end
    if kind is Kind.TLV:
        size, begin = read_length(buffer, begin)
    if begin + size > len(buffer):
        raise RemoteProtocolError(
            f"bitmap {bmp:02X} needs {size} bytes, {len(buffer) - begin} present", len(buffer)
        )
    return bmp, bytes(buffer[begin : begin + size]), begin + size


def parse_bitmaps(buffer: bytes, start: int = 0) -> list[tuple[int, bytes]]:
    """Split a bitmap-prefixed data block into ``(bitmap, value)`` pairs, in wire order.

    :param buffer: the APDU data block
    :param start: where the bitmaps begin (after any positional fields)
    :raises RemoteProtocolError: unknown bitmap or truncated value, with its offset
    """
    fields: list[tuple[int, bytes]] = []
    offset = start
    while offset < len(buffer):
        bmp, value, offset = read_bitmap(buffer, offset)
        fields.append((bmp, value))
    return fields


def encode_bitmap(bmp: int, value: bytes) -> bytes:
    """Encode one bitmap with its number and whatever length prefix its class needs.

    :raises LocalProtocolError: unknown bitmap or a fixed-size value of the wrong size
    """
    spec = BITMAPS.get(bmp)
    if spec is None:
        raise LocalProtocolError(f"unknown bitmap {bmp:02X}")
    kind, size = spec
    if kind is Kind.FIXED:
        if len(value) != size:
            raise LocalProtocolError(f"bitmap {bmp:02X} takes {size} bytes, got {len(value)}")
        return bytes((bmp,)) + value
    if kind is Kind.TLV:
        return bytes((bmp,)) + encode_length(len(value)) + value
    return bytes((bmp,)) + encode_var(value, 2 if kind is Kind.LLVAR else 3)
