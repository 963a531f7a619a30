"""MIS-POS frames worked out by hand from the protocol facts in docs/mispos.md.

The bytes are computed, not captured: no public trace of a real terminal exists.
"""

from __future__ import annotations


def h(text: str) -> bytes:
    """Bytes from spaced hex."""
    return bytes.fromhex(text)


#: Settlement request: 9F00 "APP01", 9F01 0E, 9F06 "01"; LEN BCD 0020, LRC F2.
SETTLEMENT_REQUEST = h("02 00 20 9F 00 00 05 41 50 50 30 31 9F 01 00 01 0E 9F 06 00 02 30 31 03 F2")

#: A 111-byte settlement reply (LEN BCD 0111, binary would be 00 6F) without slip: result 00
#: 交易成功, merchant 898310048160001, terminal 10060001, batch 000123, 2026-11-26 21:30:05,
#: 9F1D 000000277530 (¥2,775.30); LRC 1C.
SETTLEMENT_REPLY = h(
    "02 01 11 9F 00 00 05 41 50 50 30 31 9F 01 00 01"
    " 0E 9F 14 00 02 30 30 9F 19 00 08 BD BB D2 D7 B3"
    " C9 B9 A6 9F 04 00 0F 38 39 38 33 31 30 30 34 38"
    " 31 36 30 30 30 31 9F 05 00 08 31 30 30 36 30 30"
    " 30 31 9F 0D 00 06 30 30 30 31 32 33 9F 11 00 08"
    " 32 30 32 36 31 31 32 36 9F 12 00 06 32 31 33 30"
    " 30 35 9F 1D 00 0C 30 30 30 30 30 30 32 37 37 35"
    " 33 30 03 1C"
)

#: The slip rows of that batch, CR LF line ends, as the terminal prints them.
SLIP = (
    "结算总计单\r\n"
    "商户名称: 静安小面馆\r\n"
    "--------------------------------\r\n"
    "类型(TYPE)    笔数      金额(元)\r\n"
    "内卡借记卡       4       1523.00\r\n"
    "内卡贷记卡       3        987.50\r\n"
    "外卡             1        200.00\r\n"
    "银联扫码         5         64.80\r\n"
    "--------------------------------\r\n"
    "合计(TOTAL)     13       2775.30\r\n"
    "内卡对账平\r\n"
)
SLIP_ROWS = {
    "domestic_debit": (4, 152300),
    "domestic_credit": (3, 98750),
    "foreign": (1, 20000),
    "unionpay_qr": (5, 6480),
}
