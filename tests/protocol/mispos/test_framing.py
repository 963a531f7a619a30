"""MIS-POS framing and TLV body: vectors, byte-at-a-time and random splits, properties."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from settleguard.protocol.errors import LocalProtocolError, RemoteProtocolError
from settleguard.protocol.mispos.framing import (
    FrameDecoder,
    decode_length,
    encode_frame,
    encode_length,
    lrc,
)
from settleguard.protocol.mispos.messages import TAG_OPERATOR, Reply, Request
from settleguard.protocol.mispos.tlv import decode_tlvs, encode_tlvs

from tests.protocol.mispos.vectors import SETTLEMENT_REPLY, SETTLEMENT_REQUEST


def frames_from(data: bytes, splits: list[int] | None = None) -> list[bytes]:
    """Feed ``data`` one byte at a time (``None``) or cut at ``splits``; collect bodies."""
    decoder = FrameDecoder()
    cuts = range(len(data) + 1) if splits is None else [0, *sorted(splits), len(data)]
    out = []
    for a, b in itertools.pairwise(cuts):
        decoder.feed(data[a:b])
        while (frame := decoder.next_frame()) is not None:
            out.append(frame.body)
    return out


@pytest.mark.parametrize(
    ("length", "wire"), [(20, "0020"), (111, "0111"), (867, "0867"), (0, "0000"), (9999, "9999")]
)
def test_length_is_four_bcd_digits(length: int, wire: str) -> None:
    assert encode_length(length) == bytes.fromhex(wire)
    assert decode_length(bytes.fromhex(wire)) == length


def test_length_out_of_range_is_our_mistake() -> None:
    with pytest.raises(LocalProtocolError):
        encode_length(10000)


def test_settlement_request_vector() -> None:
    request = Request(14, "APP01", ((TAG_OPERATOR, b"01"),))
    assert encode_frame(request.encode_body()) == SETTLEMENT_REQUEST
    assert SETTLEMENT_REQUEST[-1] == lrc(SETTLEMENT_REQUEST[1:-1]) == 0xF2


def test_settlement_reply_vector_length_is_bcd_not_binary() -> None:
    assert SETTLEMENT_REPLY[1:3] == b"\x01\x11" and len(SETTLEMENT_REPLY) == 111 + 5
    (body,) = frames_from(SETTLEMENT_REPLY)
    assert encode_frame(body) == SETTLEMENT_REPLY
    reply = Reply.decode_body(body)
    assert reply.result_code == "00" and reply.result_text == "交易成功"
    assert reply.text(0x9F04) == "898310048160001" and reply.trans_type == 14


@pytest.mark.parametrize("wire", [SETTLEMENT_REQUEST, SETTLEMENT_REPLY])
def test_byte_at_a_time_and_random_splits(wire: bytes) -> None:
    body = wire[3:-2]
    assert frames_from(wire) == [body]
    rng = random.Random(7)
    for _ in range(200):
        cuts = rng.sample(range(1, len(wire)), rng.randint(1, 8))
        assert frames_from(wire + wire, [*cuts, len(wire)]) == [body, body]


def test_etx_inside_the_body_does_not_end_the_frame() -> None:
    body = encode_tlvs([(0x9F13, b"\x03\x02\x03"), (0x9F14, b"00")])
    wire = encode_frame(body)
    assert frames_from(wire) == [body]


def test_noise_before_stx_is_skipped() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"\x00\xff\x55" + SETTLEMENT_REQUEST)
    frame = decoder.next_frame()
    assert frame is not None and frame.body == SETTLEMENT_REQUEST[3:-2]
    assert decoder.skipped == 3


@pytest.mark.parametrize(
    ("index", "value", "offset"),
    [(-1, 0x00, 24), (-2, 0x04, 23), (1, 0x0A, 1)],
    ids=["bad LRC", "bad ETX", "length not BCD"],
)
def test_damaged_frames_name_the_offset(index: int, value: int, offset: int) -> None:
    wire = bytearray(SETTLEMENT_REQUEST)
    wire[index] = value
    decoder = FrameDecoder()
    decoder.feed(bytes(wire))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    assert info.value.offset == offset


def test_tlv_unknown_tags_are_skipped_by_length_and_zero_length_is_fine() -> None:
    body = encode_tlvs([(0x9F01, b"\x0e"), (0xDF99, b"\x9f\x14\x00\x02XX"), (0x9F14, b"00"),
                        (0x9F13, b"")])  # fmt: skip
    reply = Reply.decode_body(body)
    assert reply.result_code == "00" and reply.raw(0x9F13) == b""


def test_tlv_length_is_binary_not_bcd() -> None:
    value = b"x" * 133
    assert encode_tlvs([(0x9F13, value)])[2:4] == b"\x00\x85"


def test_tlv_running_past_the_body_is_refused() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_tlvs(b"\x9f\x14\x00\x05ab")
    assert info.value.offset == 3 + 2


tlvs = st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=12).map(tuple)


@settings(max_examples=200, deadline=None)
@given(tlvs, st.randoms(use_true_random=False))
def test_round_trip_through_random_splits(items: tuple[tuple[int, bytes], ...], rnd) -> None:  # type: ignore[no-untyped-def]
    body = encode_tlvs(items)
    wire = encode_frame(body)
    cuts = rnd.sample(range(1, len(wire)), min(len(wire) - 1, rnd.randint(0, 6)))
    (received,) = frames_from(wire, cuts)
    assert decode_tlvs(received) == items


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_only_raises_our_error(data: bytes) -> None:
    decoder = FrameDecoder()
    decoder.feed(data)
    for _ in range(len(data) + 1):
        try:
            frame = decoder.next_frame()
        except RemoteProtocolError:
            continue
        if frame is None:
            break
        try:
            Reply.decode_body(frame.body)
            Request.decode_body(frame.body)
        except RemoteProtocolError:
            pass
