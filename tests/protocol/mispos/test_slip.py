"""The settlement slip parser and the checks of a settlement reply."""

from __future__ import annotations

from datetime import datetime

import pytest
from settleguard.protocol.errors import RemoteProtocolError
from settleguard.protocol.mispos.framing import FrameDecoder
from settleguard.protocol.mispos.messages import TAG_MEMO, TAG_RESULT, TAG_TOTAL, TAG_TYPE, Reply
from settleguard.protocol.mispos.settlement import (
    HostRelayRefused,
    SettlementRefused,
    error_reply,
    settlement_from_reply,
    settlement_reply,
)
from settleguard.protocol.mispos.slip import SlipError, SlipRow, parse_slip

from tests.protocol.mispos.vectors import SETTLEMENT_REPLY, SLIP, SLIP_ROWS


def rows(text: str) -> dict[str, tuple[int, int]]:
    return {r.bucket: (r.count, r.amount) for r in parse_slip(text).rows}


def test_example_slip() -> None:
    slip = parse_slip(SLIP)
    assert rows(SLIP) == SLIP_ROWS
    assert slip.total == (13, 277530) and slip.reconciled is True and not slip.duplicated


@pytest.mark.parametrize(
    "variant",
    [
        SLIP.replace("\r\n", "\n"),
        SLIP.replace("\r\n", "\r"),
        SLIP.replace("       ", " ").replace("    ", "\t"),
        # full-width digits, point, colon and the ideographic space
        SLIP.translate(str.maketrans("0123456789.: ", "０１２３４５６７８９．：\u3000")),
        SLIP.replace("1523.00", "1,523.00"),
    ],
    ids=["LF", "CR", "odd spacing", "full-width", "thousands separator"],
)
def test_slip_variants_read_the_same(variant: str) -> None:
    assert rows(variant) == SLIP_ROWS
    assert parse_slip(variant).total == (13, 277530)


def test_missing_rows_are_missing_not_zero() -> None:
    text = SLIP.replace("外卡             1        200.00\r\n", "")
    assert "foreign" not in rows(text)


def test_wechat_alipay_ecny_and_duplicate_mark() -> None:
    text = (
        SLIP.replace(
            "银联扫码         5         64.80\r\n",
            "银联扫码         5         64.80\r\n微信支付  2  10.00\r\n支付宝 1 5.5\r\n"
            "数字人民币 1 0.01\r\n云闪付 1 1.00\r\n",
        )
        + "重打印/DUPLICATED\r\n"
    )
    found = rows(text)
    assert found["wechat"] == (2, 1000) and found["alipay"] == (1, 550)
    assert found["ecny"] == (1, 1) and found["unionpay_qr"] == (6, 6580)
    assert parse_slip(text).duplicated


def test_unknown_row_label_fails_loudly_with_the_line() -> None:
    text = SLIP.replace("外卡 ", "储值卡")
    with pytest.raises(SlipError, match="line 7"):
        parse_slip(text)


def test_refusal_never_echoes_a_long_digit_run() -> None:
    text = SLIP.replace("外卡 ", "6222021234567894 ")
    with pytest.raises(SlipError) as info:
        parse_slip(text)
    assert "6222021234567894"[:12] not in str(info.value) and "line 7" in str(info.value)


def reply_with(slip: str | None, total: str | None, code: str = "00") -> Reply:
    items = [(TAG_TYPE, b"\x0e"), (TAG_RESULT, code.encode())]
    if slip is not None:
        items.append((TAG_MEMO, slip.encode("gbk")))
    if total is not None:
        items.append((TAG_TOTAL, total.encode()))
    return Reply(tuple(items))


def test_reply_with_slip_and_total() -> None:
    settlement = settlement_from_reply(reply_with(SLIP, "000000277530"))
    assert settlement.total_amount == 277530
    assert {r.bucket: (r.count, r.amount) for r in settlement.rows} == SLIP_ROWS
    totals = settlement.to_totals()
    assert totals.currency == "156" and totals.protocol == "mispos"
    assert totals.total_amount == 277530 and totals.total_count == 13


def test_rows_that_do_not_add_up_to_9f1d_fail_with_the_difference() -> None:
    with pytest.raises(SlipError, match=r"difference ¥0\.10"):
        settlement_from_reply(reply_with(SLIP, "000000277540"))


def test_rows_that_do_not_add_up_to_the_total_row_fail() -> None:
    text = SLIP.replace("64.80", "64.70")
    with pytest.raises(SlipError, match="TOTAL row"):
        settlement_from_reply(reply_with(text, None))


def test_without_9f1d_the_total_row_is_trusted() -> None:
    assert settlement_from_reply(reply_with(SLIP, None)).total_amount == 277530


def test_rows_without_any_total_fail() -> None:
    text = SLIP.split("-" * 32 + "\r\n合计")[0]
    with pytest.raises(SlipError, match="neither"):
        settlement_from_reply(reply_with(text, None))


def test_example_reply_without_slip_cannot_give_buckets() -> None:
    decoder = FrameDecoder()
    decoder.feed(SETTLEMENT_REPLY)
    frame = decoder.next_frame()
    assert frame is not None
    with pytest.raises(SlipError, match=r"9F1D says ¥2,775\.30"):
        settlement_from_reply(Reply.decode_body(frame.body))


@pytest.mark.parametrize(
    "reply",
    [
        reply_with(None, "000000000000"),
        reply_with("合计 0 0.00\r\n", "000000000000"),
        error_reply("X3"),
    ],
    ids=["00 with zero total", "00 with an empty slip", "X3"],
)
def test_empty_batch_in_every_reading(reply: Reply) -> None:
    settlement = settlement_from_reply(reply)
    assert settlement.empty and settlement.rows == ()


def test_error_code_carries_9f19() -> None:
    with pytest.raises(SettlementRefused) as info:
        settlement_from_reply(error_reply("97", "终端未登记，请联系收单机构"))
    assert info.value.code == "97" and "终端未登记" in info.value.text


def test_host_relay_is_refused_clearly() -> None:
    with pytest.raises(HostRelayRefused, match="host relay"):
        settlement_from_reply(error_reply("00", trans_type=17))


def test_simulator_reply_reads_back() -> None:
    made = [SlipRow(b, c, a) for b, (c, a) in SLIP_ROWS.items()]
    reply = settlement_reply(
        merchant_no="898310048160001", terminal_id="10060001", batch_no=123, rows=tuple(made),
        when=datetime(2026, 11, 26, 21, 30, 5), merchant_name="静安小面馆",
    )  # fmt: skip
    settlement = settlement_from_reply(Reply.decode_body(reply.encode_body()))
    assert settlement.batch_no == 123 and settlement.terminal_id == "10060001"
    assert settlement.merchant_no == "898310048160001"
    assert settlement.terminal_time == "2026-11-26T21:30:05"
    assert settlement.total_amount == 277530


def test_bad_number_fields_are_remote_errors() -> None:
    reply = Reply(((TAG_TYPE, b"\x0e"), (TAG_RESULT, b"00"), (0x9F0D, b"12A")))
    with pytest.raises(RemoteProtocolError, match="batch number"):
        settlement_from_reply(reply)


def test_a_reprint_answered_as_type_19_is_read_too() -> None:
    reply = Reply(((TAG_TYPE, b"\x13"), *reply_with(SLIP, "000000277530").items[1:]))
    assert settlement_from_reply(reply).total_amount == 277530
