"""The MIS-POS body: a list of TLVs with 2-byte binary tags and 2-byte binary lengths.

Unlike the frame length, a TLV length is plain binary, big-endian (``00 85`` = 133). Tags come
in any order; unknown tags are skipped by their length and zero-length values are legal
(public Allinpay-style client code, gsccs/mispos-client, TLV parser).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import LocalProtocolError, RemoteProtocolError

Tlv = tuple[int, bytes]


def encode_tlvs(items: Iterable[Tlv]) -> bytes:
    """Concatenate ``(tag, value)`` pairs.

    :raises LocalProtocolError: a tag outside 0..0xFFFF or a value over 0xFFFF bytes
    """
    out = bytearray()
    for tag, value in items:
        if not 0 <= tag <= 0xFFFF:
            raise LocalProtocolError(f"tag {tag!r} does not fit two bytes")
        if len(value) > 0xFFFF:
            raise LocalProtocolError(f"tag {tag:04X}: value of {len(value)} bytes is too long")
        out += tag.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value
    return bytes(out)


def decode_tlvs(body: bytes, base_offset: int = 3) -> tuple[Tlv, ...]:
    """Split a body into ``(tag, value)`` pairs, in wire order.

    :param base_offset: where the body starts within the frame, for error offsets
    :raises RemoteProtocolError: a TLV header or value runs past the end of the body
    """
    items: list[Tlv] = []
    pos = 0
    while pos < len(body):
        if pos + 4 > len(body):
            raise RemoteProtocolError("TLV header cut short", base_offset + pos)
        tag = int.from_bytes(body[pos : pos + 2], "big")
        length = int.from_bytes(body[pos + 2 : pos + 4], "big")
        end = pos + 4 + length
        if end > len(body):
            raise RemoteProtocolError(
                f"tag {tag:04X} claims {length} bytes, only {len(body) - pos - 4} left",
                base_offset + pos + 2,
            )
        items.append((tag, body[pos + 4 : end]))
        pos = end
    return tuple(items)
