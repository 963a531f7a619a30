"""Frame vectors shared by the encoder and decoder tests.

Payloads are written out literally with the control characters spelled as names; the LRC is
computed here independently (XOR after STX through ETX, the rule the public Transbank/PAX-style
examples give: ``0200|123|`` + ETX → 0x31).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from settleguard.protocol.poslink import (
    BatchCloseRequest,
    BatchCloseResponse,
    EdcTotal,
    HostInformation,
    JournalEntry,
    LocalDetailReportRequest,
    LocalDetailReportResponse,
    LocalTotalReportRequest,
    LocalTotalReportResponse,
    ResponseStatus,
)

FS, US = "\x1c", "\x1f"


def wire(payload: str) -> bytes:
    """``STX payload ETX LRC`` computed without the code under test."""
    body = payload.encode("ascii") + b"\x03"
    return b"\x02" + body + bytes([reduce(lambda a, b: a ^ b, body, 0)])


@dataclass(frozen=True)
class Vector:
    name: str
    event: object
    payload: str
    is_request: bool


R01_BODY = FS.join(
    [
        "00",
        US.join(["12", "45678", "0", "0", "1", "1500", "0", "0", "0", "0"]),
        US.join(["3", "2000", "0", "0"]),
        *[US.join(["0", "0", "0", "0"])] * 5,
    ]
)

VECTORS = [
    Vector("R00 all EDC", LocalTotalReportRequest(), f"R00{FS}1.35{FS}00", True),
    Vector(
        "B00 with timestamp",
        BatchCloseRequest("20240501123000"),
        f"B00{FS}1.35{FS}20240501123000",
        True,
    ),
    Vector("B00 bare", BatchCloseRequest(), f"B00{FS}1.35{FS}", True),
    Vector(
        "R02 record 4",
        LocalDetailReportRequest(4),
        f"R02{FS}1.35{FS}00{FS}{FS}{FS}4{FS}{FS}{FS}",
        True,
    ),
    Vector(
        "B01 settled",
        BatchCloseResponse(
            host=HostInformation("0", "APPROVED", "", "", "", "17"),
            totals=(EdcTotal("credit", 20, 78228), EdcTotal("debit", 2, 1500)),
            timestamp="20240501235900",
            terminal_id="52500001",
            merchant_id="M0001",
        ),
        f"0{FS}B01{FS}1.35{FS}000000{FS}OK{FS}"
        + US.join(["0", "APPROVED", "", "", "", "17"])
        + f"{FS}20=2=0=0=0=0=0{FS}78228=1500=0=0=0=0=0{FS}20240501235900{FS}52500001{FS}M0001",
        False,
    ),
    Vector(
        "B01 refused 100006",
        BatchCloseResponse(ResponseStatus("100006", "BATCH FAILED")),
        f"0{FS}B01{FS}1.35{FS}100006{FS}BATCH FAILED",
        False,
    ),
    Vector(
        "R01 credit and debit",
        LocalTotalReportResponse(
            totals=(EdcTotal("credit", 12, 45678, 1, 1500), EdcTotal("debit", 3, 2000))
        ),
        f"0{FS}R01{FS}1.35{FS}000000{FS}OK{FS}{R01_BODY}",
        False,
    ),
    Vector(
        "R03 one sale",
        LocalDetailReportResponse(
            total_records=2,
            record_number=0,
            entry=JournalEntry(
                record_number=0,
                edc="credit",
                transaction_type="sale",
                amount=403,
                masked_pan="4801",
                card_type="01",
                entry_mode="1",
                transaction_number="1",
                reference_number="88888888",
                timestamp="20240501101500",
            ),
        ),
        f"0{FS}R03{FS}1.35{FS}000000{FS}OK{FS}"
        + US.join(["", "", "", "", "", ""])
        + f"{FS}2{FS}0{FS}01{FS}01{FS}{FS}"
        + US.join(["403", "0", "0", "0", "0", "0", "", ""])
        + FS
        + US.join(["4801", "1", "", "", "", "", "01", ""])
        + FS
        + US.join(["1", "88888888", "20240501101500"]),
        False,
    ),
]
