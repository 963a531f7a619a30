"""Wire vectors shared by the encoder and decoder tests.

APDU examples are taken from the layouts and sample traces in the ZVT specification
(section given with each); frame CRCs are checked in ``test_transport.py`` against an
independent CRC reference (``binascii.crc_hqx`` on bit-reversed input).
"""

from __future__ import annotations

# (name, APDU hex) -- PA00P015 unless marked PA00P016
APDUS: list[tuple[str, str]] = [
    ("positive response (§2.1)", "80 00 00"),
    ("end-of-day, password 123456 (§2.16.1, §1.2)", "06 50 03 12 34 56"),
    ("send turnover totals, password 000000 (§2.43.1)", "06 10 03 00 00 00"),
    ("completion without data (§2.16.6)", "06 0F 00"),
    ("abort, result 6C (§3.3)", "06 1E 01 6C"),
    (
        "registration with TLV container (§5.1 sample)",
        "06 00 14 00 00 00 9E 09 78 06 0C 26 04 0A 02 06 D3 1F 73 03 00 00 00",
    ),
    (
        "registration completion (§5.1 sample)",
        "06 0F 12 19 00 29 65 00 00 28 49 09 78 06 06 26 04 0A 02 06 D3",
    ),
    (
        "intermediate status with display text (§5.1 sample)",
        "04 FF 19 17 03 06 15 24 0D 07 0B 30 30 20 41 70 70 72 6F 76 65 64 1F 73 03 00 00 08",
    ),
    ("positive response carrying data (§5.1 sample)", "80 00 08 06 06 1F 73 03 00 00 01"),
]

# (name, APDU hex, wire hex) -- serial block structure, PA00P016 §3.1/§3.3
FRAMES: list[tuple[str, str, str]] = [
    (
        "end-of-day 123456",
        "06 50 03 12 34 56",
        "10 02 06 50 03 12 34 56 10 03 C4 AF",
    ),
    ("positive response", "80 00 00", "10 02 80 00 00 10 03 F5 1F"),
    ("completion", "06 0F 00", "10 02 06 0F 00 10 03 C6 33"),
    ("abort 6C", "06 1E 01 6C", "10 02 06 1E 01 6C 10 03 C9 F2"),
    (
        "DLE in the command byte is doubled",
        "06 10 03 00 00 00",
        "10 02 06 10 10 03 00 00 00 10 03 2A 35",
    ),
    ("DLE in the data is doubled", "06 D1 03 10 48 69", "10 02 06 D1 03 10 10 48 69 10 03 2A 87"),
    (
        "CRC byte 10 is not stuffed",
        "06 50 03 00 00 21",
        "10 02 06 50 03 00 00 21 10 03 10 0D",
    ),
]

# LLVAR / LLLVAR examples of PA00P016 §5.2.8: (digits, wire hex, value hex)
VARS: list[tuple[int, str, str]] = [
    (2, "F1 F2 01 23 45 67 89 01 23 45 67 89 01 23", "01 23 45 67 89 01 23 45 67 89 01 23"),
    (2, "F0 F3 01 23 45", "01 23 45"),
    (3, "F0 F1 F2 01 23 45 67 89 01 23 45 67 89 01 23", "01 23 45 67 89 01 23 45 67 89 01 23"),
    (3, "F0 F0 F3 01 23 45", "01 23 45"),
    (3, "F0 F0 F0", ""),
]


def h(text: str) -> bytes:
    """Bytes from spaced hex."""
    return bytes.fromhex(text)


# An End-of-Day Status-Information (PA00P015 §3.1.3) with every field we decode.
TOTALS_STATUS_APDU = h(
    "04 0F 5C"
    " 27 00"
    " 04 00 00 00 07 82 28"  # total 78228 minor units
    " 60 F0 F5 F3"  # LLLVAR, 53 bytes
    " 01 01 01 16"  # receipts 0101..0116
    " 0C 00 00 00 04 56 78"  # girocard 12 x 45678
    " 00 00 00 00 00 00 00"  # jcb
    " 05 00 00 00 02 05 50"  # eurocard 5 x 20550
    " 00 00 00 00 00 00 00"  # amex
    " 03 00 00 00 01 20 00"  # visa 3 x 12000
    " 00 00 00 00 00 00 00"  # diners
    " 00 00 00 00 00 00 00"  # other
    " 0B 00 00 42"  # trace 42
    " 0C 23 15 09"  # 23:15:09
    " 0D 03 31"  # 31 March
    " 29 52 50 00 01"  # TID 52500001
    " 49 09 78"  # EUR
    " 87 00 17"  # receipt no 17
    " 88 00 01 23"  # turnover no 123
)
