"""Fuzz the ZVT parsers: serial and TCP transport, APDU/bitmap/TLV decoders, both roles.

Only :class:`protocol.errors.ProtocolError` (our own error, with an offset) may come out of
any of them, whatever bytes arrive in whatever split.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from settleguard.protocol.errors import ProtocolError
from settleguard.protocol.zvt.apdu import decode_apdu, parse_bitmaps
from settleguard.protocol.zvt.connection import EcrConnection, TerminalConnection
from settleguard.protocol.zvt.messages import EndOfDay, decode_pt_command
from settleguard.protocol.zvt.tlv import decode_tlv
from settleguard.protocol.zvt.transport import SerialLink, TcpLink, encode_frame

from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import bytes_or_mutation, splits
from tests.protocol.zvt.vectors import APDUS, TOTALS_STATUS_APDU, h

SEED_APDUS = [h(hex_) for _, hex_ in APDUS] + [TOTALS_STATUS_APDU]
SEED_FRAMES = [encode_frame(a) for a in SEED_APDUS]
TOKENS = (b"\x10", b"\x10\x02", b"\x10\x03", b"\x06", b"\x15", b"\xff", b"\x06\x0f")


def _drain(link: SerialLink | TcpLink) -> None:
    while link.next_event() is not None:
        pass


@FUZZ
@given(bytes_or_mutation(SEED_FRAMES, TOKENS).flatmap(splits), st.floats(0, 10))
def test_serial_link_any_bytes_any_split(chunks: list[bytes], step: float) -> None:
    link = SerialLink()
    now = 0.0
    for chunk in chunks:
        try:
            link.receive_data(chunk)
            now += step / 10
            link.tick(now)
            _drain(link)
            link.data_to_send()
        except ProtocolError:
            pass


@FUZZ
@given(bytes_or_mutation(SEED_APDUS, TOKENS).flatmap(splits))
def test_tcp_link_any_bytes_any_split(chunks: list[bytes]) -> None:
    link = TcpLink()
    for chunk in chunks:
        try:
            link.receive_data(chunk)
            _drain(link)
        except ProtocolError:
            pass


@FUZZ
@given(bytes_or_mutation(SEED_APDUS, TOKENS))
def test_apdu_decoders(data: bytes) -> None:
    for decode in (decode_apdu, parse_bitmaps, decode_tlv):
        try:
            decode(data)
        except ProtocolError:
            pass
    try:
        apdu = decode_apdu(data)
        decode_pt_command(apdu)
        decode_pt_command(apdu, after_status_enquiry=True)
    except ProtocolError:
        pass


@FUZZ
@given(st.lists(bytes_or_mutation(SEED_APDUS, TOKENS), min_size=1, max_size=6))
def test_cash_register_role_takes_any_apdu(apdus: list[bytes]) -> None:
    ecr = EcrConnection()
    ecr.send(EndOfDay("123456"))
    ecr.apdus_to_send()
    for raw in apdus:
        try:
            ecr.receive_apdu(raw)
            while ecr.next_event() is not None:
                pass
            ecr.apdus_to_send()
        except ProtocolError:
            pass


@FUZZ
@given(st.lists(bytes_or_mutation(SEED_APDUS, TOKENS), min_size=1, max_size=6))
def test_terminal_role_takes_any_apdu(apdus: list[bytes]) -> None:
    terminal = TerminalConnection()
    for raw in apdus:
        try:
            terminal.receive_apdu(raw)
            while terminal.next_event() is not None:
                pass
        except ProtocolError:
            pass
