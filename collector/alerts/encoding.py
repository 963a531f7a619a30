"""SMS character sets and segmentation (3GPP TS 23.038 §6.2.1, TS 23.040 §9.2.3.24).

Theory of operation: a text is GSM-7 if every character is in the default alphabet or its
extension table (an extension character costs two septets: ESC + code). Otherwise it is sent as
UCS-2, counted in UTF-16 code units (a character outside the BMP, such as an emoji, is a surrogate
pair = two units). One SMS carries 160 septets / 70 units; a concatenated part carries 153 / 67
because the 6-octet UDH (IE 00, 8-bit reference) takes space. We split on whole characters, so a
surrogate pair or an escape sequence is never cut across parts.

For SMPP 3.4 (§5.2.19 data_coding) we encode GSM-7 as data_coding 0x00 with *unpacked* septets,
one per octet, and UCS-2 as data_coding 0x08, big-endian.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# 3GPP TS 23.038 §6.2.1 default alphabet, code points 0x00-0x7F in order; 0x1B is the escape.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# 3GPP TS 23.038 §6.2.1.1 extension table (reached through ESC 0x1B).
GSM7_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_BASIC_INDEX = {ch: i for i, ch in enumerate(GSM7_BASIC) if ch != "\x1b"}
ESC = 0x1B

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

Encoding = Literal["gsm7", "ucs2"]


class EncodingError(ValueError):
    """A text cannot be encoded as asked (e.g. a non-GSM character for GSM-7)."""


@dataclass(frozen=True, slots=True)
class Segmentation:
    """How a text goes on the air.

    :param encoding: ``"gsm7"`` or ``"ucs2"``
    :param parts: the text of each part, in order (one element for a single SMS)
    """

    encoding: Encoding
    parts: tuple[str, ...]

    @property
    def part_count(self) -> int:
        """Number of SMS the text costs."""
        return len(self.parts)


def is_gsm7(text: str) -> bool:
    """True if every character is in the GSM-7 default alphabet or its extension table."""
    return all(ch in _BASIC_INDEX or ch in GSM7_EXTENSION for ch in text)


def unit_cost(ch: str, encoding: Encoding) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) one character costs."""
    if encoding == "gsm7":
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def text_length(text: str, encoding: Encoding) -> int:
    """Length of *text* in septets or UCS-2 code units."""
    return sum(unit_cost(ch, encoding) for ch in text)


def segment(text: str) -> Segmentation:
    """Choose the encoding and split *text* into SMS parts on character boundaries.

    :param text: the message
    :returns: the :class:`Segmentation`; an empty text is one empty part
    """
    encoding: Encoding = "gsm7" if is_gsm7(text) else "ucs2"
    single, per_part = (GSM7_SINGLE, GSM7_PART) if encoding == "gsm7" else (UCS2_SINGLE, UCS2_PART)
    if text_length(text, encoding) <= single:
        return Segmentation(encoding, (text,))
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        cost = unit_cost(ch, encoding)
        if used + cost > per_part:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += cost
    parts.append("".join(current))
    return Segmentation(encoding, tuple(parts))


def encode_gsm7_unpacked(text: str) -> bytes:
    """GSM-7 septets, one per octet (SMPP 3.4 data_coding 0x00 as SMSCs expect it).

    :raises EncodingError: a character is not in the GSM-7 tables
    """
    out = bytearray()
    for index, ch in enumerate(text):
        if ch in _BASIC_INDEX:
            out.append(_BASIC_INDEX[ch])
        elif ch in GSM7_EXTENSION:
            out += bytes((ESC, GSM7_EXTENSION[ch]))
        else:
            raise EncodingError(f"character {ch!r} at index {index} is not in GSM-7")
    return bytes(out)


def encode_ucs2(text: str) -> bytes:
    """UCS-2 (UTF-16 big-endian, surrogate pairs kept) for data_coding 0x08."""
    return text.encode("utf-16-be")


def encode_part(text: str, encoding: Encoding) -> bytes:
    """Encode one part for SMPP ``short_message`` in *encoding*."""
    return encode_gsm7_unpacked(text) if encoding == "gsm7" else encode_ucs2(text)


def data_coding(encoding: Encoding) -> int:
    """SMPP 3.4 §5.2.19 data_coding value for *encoding*."""
    return 0x00 if encoding == "gsm7" else 0x08


def concat_udh(reference: int, total: int, seqnum: int, *, wide_reference: bool = False) -> bytes:
    """User data header for a concatenated part (TS 23.040 §9.2.3.24.1 and .8).

    :param reference: message reference shared by all parts (0-255, or 0-65535 if wide)
    :param total: number of parts (1-255)
    :param seqnum: this part's number, starting at 1
    :param wide_reference: use IE 08 (16-bit reference) instead of IE 00
    :raises EncodingError: a value is out of range
    """
    limit = 0xFFFF if wide_reference else 0xFF
    if not 0 <= reference <= limit:
        raise EncodingError(f"concatenation reference {reference} out of range 0..{limit}")
    if not 1 <= total <= 255 or not 1 <= seqnum <= total:
        raise EncodingError(f"part {seqnum} of {total} is not a valid concatenation position")
    if wide_reference:
        return bytes((0x06, 0x08, 0x04, reference >> 8, reference & 0xFF, total, seqnum))
    return bytes((0x05, 0x00, 0x03, reference, total, seqnum))
