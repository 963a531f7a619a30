"""Fuzz the MIS-POS parsers: framing, TLV body, settlement reply and slip, both roles.

Only :class:`protocol.errors.ProtocolError` may come out of any of them, whatever bytes
arrive in whatever split.
"""

from __future__ import annotations

from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st
from settleguard.protocol.errors import ProtocolError
from settleguard.protocol.mispos import (
    EcrConnection,
    Reply,
    Request,
    SlipRow,
    TerminalConnection,
    encode_frame,
    parse_slip,
    settlement_from_reply,
    settlement_reply,
)
from settleguard.protocol.mispos.settlement import error_reply

from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import bytes_or_mutation, splits
from tests.protocol.mispos.vectors import SETTLEMENT_REPLY, SETTLEMENT_REQUEST, SLIP

FULL_REPLY = encode_frame(
    settlement_reply(
        merchant_no="898310048160001",
        terminal_id="10060001",
        batch_no=123,
        rows=(SlipRow("domestic_debit", 4, 152300), SlipRow("unionpay_qr", 5, 6480)),
        when=datetime(2026, 11, 26, 21, 30, 5),
    ).encode_body()
)
SEEDS = [
    SETTLEMENT_REQUEST,
    SETTLEMENT_REPLY,
    FULL_REPLY,
    encode_frame(error_reply("X3").encode_body()),
]
TOKENS = (b"\x02", b"\x03", b"\x99\x99", b"\x9f\x13", b"\xff\xff", b"\x00\x00")


@FUZZ
@given(bytes_or_mutation(SEEDS, TOKENS).flatmap(splits), st.floats(0, 30))
def test_register_role_any_bytes_any_split(chunks: list[bytes], step: float) -> None:
    conn = EcrConnection()
    conn.send(Request(14))
    now = 0.0
    for chunk in chunks:
        conn.receive_data(chunk)
        now += step
        conn.tick(now)
        try:
            event = conn.next_event()
        except ProtocolError:
            return
        if event is not None and hasattr(event, "reply"):
            try:
                settlement_from_reply(event.reply)
            except ProtocolError:
                pass
            return


@FUZZ
@given(bytes_or_mutation(SEEDS, TOKENS).flatmap(splits))
def test_terminal_role_any_bytes_any_split(chunks: list[bytes]) -> None:
    conn = TerminalConnection()
    for chunk in chunks:
        conn.receive_data(chunk)
        for _ in range(4):
            try:
                if conn.next_event() is None:
                    break
            except ProtocolError:
                continue
            conn.send(Reply(()))


@FUZZ
@given(st.text(max_size=400) | st.sampled_from([SLIP]).map(lambda s: s[: len(s) // 2]))
def test_slip_text_only_raises_our_error(text: str) -> None:
    try:
        parse_slip(text)
    except ProtocolError:
        pass
