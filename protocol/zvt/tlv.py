"""The ZVT TLV container (bitmap ``06``), BER-style tags and lengths.

PA00P015 §9.2: the container travels as bitmap ``06`` followed by a TLV length (not an
LLLVAR) and a list of data objects. §9.3.1: a tag's first byte carries class and
primitive/constructed bits; low five bits ``11111`` mean the tag number continues in the next
bytes, each with bit 8 set while another follows. §9.3.2: a length below ``80`` is the length
itself, ``81 xx`` one length byte, ``82 hi lo`` two bytes *big-endian* (unlike the APDU's
little-endian extended length); ``80`` and ``83``..``FF`` are invalid.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LocalProtocolError, RemoteProtocolError

CONSTRUCTED = 0x20
#: Limit on nesting of constructed objects; real containers go two or three levels deep.
MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class TlvObject:
    """One data object. ``children`` is set for constructed tags, else ``None``."""

    tag: int
    value: bytes
    children: tuple[TlvObject, ...] | None = None

    def find(self, tag: int) -> TlvObject | None:
        """The first direct child with ``tag``, or ``None``."""
        return next((child for child in self.children or () if child.tag == tag), None)


def read_length(buffer: bytes, start: int) -> tuple[int, int]:
    """Read a TLV length at ``start``: ``(length, offset_after)``.

    :raises RemoteProtocolError: invalid or truncated length field
    """
    if start >= len(buffer):
        raise RemoteProtocolError("TLV length missing", start)
    first = buffer[start]
    if first < 0x80:
        return first, start + 1
    if first == 0x81:
        if start + 2 > len(buffer):
            raise RemoteProtocolError("TLV length 81 without its byte", start)
        return buffer[start + 1], start + 2
    if first == 0x82:
        if start + 3 > len(buffer):
            raise RemoteProtocolError("TLV length 82 without its two bytes", start)
        return buffer[start + 1] << 8 | buffer[start + 2], start + 3
    raise RemoteProtocolError(f"invalid TLV length byte {first:02X}", start)


def encode_length(size: int) -> bytes:
    """The shortest TLV length field for ``size`` bytes.

    :raises LocalProtocolError: negative or above 65535
    """
    if size < 0 or size > 0xFFFF:
        raise LocalProtocolError(f"TLV length {size} out of range")
    if size < 0x80:
        return bytes((size,))
    if size <= 0xFF:
        return bytes((0x81, size))
    return bytes((0x82, size >> 8, size & 0xFF))


def read_tag(buffer: bytes, start: int) -> tuple[int, bool, int]:
    """Read a tag at ``start``: ``(tag, constructed, offset_after)``.

    The tag is returned as the integer of its bytes, e.g. ``0x1F73``.

    :raises RemoteProtocolError: truncated multi-byte tag
    """
    first = buffer[start]
    tag = first
    offset = start + 1
    if first & 0x1F == 0x1F:
        while True:
            if offset >= len(buffer):
                raise RemoteProtocolError("multi-byte TLV tag cut short", offset)
            byte = buffer[offset]
            tag = tag << 8 | byte
            offset += 1
            if not byte & 0x80:
                break
            if offset - start > 4:
                raise RemoteProtocolError("TLV tag longer than four bytes", start)
    return tag, bool(first & CONSTRUCTED), offset


def encode_tag(tag: int) -> bytes:
    """The bytes of ``tag`` (big-endian, as many bytes as it needs)."""
    if tag < 0:
        raise LocalProtocolError(f"TLV tag {tag} is negative")
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def decode_tlv(
    buffer: bytes, start: int = 0, end: int | None = None, depth: int = 0
) -> tuple[TlvObject, ...]:
    """Decode the data objects in ``buffer[start:end]``.

    Offsets in errors refer to ``buffer`` as given, so pass the whole APDU data block and
    bounds rather than a slice when you want offsets relative to the block.

    :raises RemoteProtocolError: malformed tag or length, object overrunning its container
    """
    stop = len(buffer) if end is None else end
    if depth > MAX_DEPTH:
        raise RemoteProtocolError("TLV objects nested too deeply", start)
    objects: list[TlvObject] = []
    offset = start
    while offset < stop:
        tag_start = offset
        tag, constructed, offset = read_tag(buffer[:stop], offset)
        size, offset = read_length(buffer[:stop], offset)
        if offset + size > stop:
            raise RemoteProtocolError(
                f"TLV tag {tag:X} announces {size} bytes, {stop - offset} left", tag_start
            )
        value = bytes(buffer[offset : offset + size])
        children = decode_tlv(buffer, offset, offset + size, depth + 1) if constructed else None
        objects.append(TlvObject(tag, value, children))
        offset += size
    return tuple(objects)


def encode_tlv(objects: tuple[TlvObject, ...] | list[TlvObject]) -> bytes:
    """Encode data objects; a constructed object with ``children`` is built from them."""
    out = bytearray()
    for obj in objects:
        value = encode_tlv(obj.children) if obj.children is not None else obj.value
        out += encode_tag(obj.tag) + encode_length(len(value)) + value
    return bytes(out)


def text_lines(objects: tuple[TlvObject, ...], encoding: str = "cp437") -> list[str]:
    """All text-line objects (tag ``07``, PA00P015 §9.4.2) found in ``objects``, depth first."""
    lines: list[str] = []
    for obj in objects:
        if obj.tag == 0x07:
            lines.append(obj.value.decode(encoding, errors="replace"))
        elif obj.children:
            lines.extend(text_lines(obj.children, encoding))
    return lines
