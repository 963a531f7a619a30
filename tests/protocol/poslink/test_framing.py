"""Framing: LRC, frame vectors, byte-at-a-time and random-split decoding, garbage."""

from __future__ import annotations

from functools import reduce

import pytest
from hypothesis import given
from hypothesis import strategies as st
from settleguard.protocol.poslink.framing import (
    ACK,
    EOT,
    NAK,
    Control,
    CorruptFrame,
    Frame,
    FrameDecoder,
    Noise,
    Token,
    encode_frame,
    lrc,
)

from tests.protocol.poslink.vectors import VECTORS, wire


def tokens(decoder: FrameDecoder) -> list[Token]:
    found = []
    while (token := decoder.next_token()) is not None:
        found.append(token)
    return found


def feed_bytewise(data: bytes) -> list[Token]:
    decoder = FrameDecoder()
    out: list[Token] = []
    for i in range(len(data)):
        decoder.feed(data[i : i + 1])
        out += tokens(decoder)
    return out


def test_lrc_matches_the_published_example() -> None:
    # The public Transbank POS docs use the same rule (XOR after STX through ETX): 0x31.
    assert lrc(b"0200|123|\x03") == 0x31


def test_r00_frame_bytes_literal() -> None:
    assert (
        encode_frame([b"R00", b"1.35", b"00"])
        == bytes.fromhex("02 52 30 30 1c 31 2e 33 35 1c 30 30 03") + b"H"
    )


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_vector_decodes_byte_at_a_time(vector) -> None:
    raw = wire(vector.payload)
    found = feed_bytewise(raw)
    assert found == [Frame(raw[1:-2], raw, 0)]


@given(st.data())
def test_random_splits_give_the_same_tokens(data) -> None:
    stream = b"".join(wire(v.payload) + bytes([ACK]) for v in VECTORS) + bytes([EOT])
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    decoder = FrameDecoder()
    found: list[Token] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        decoder.feed(stream[start:cut])
        found += tokens(decoder)
        start = cut
    assert found == feed_bytewise(stream)
    assert [type(t) for t in found].count(Frame) == len(VECTORS)
    assert found[-1] == Control(EOT, len(stream) - 1)


def test_bad_lrc_is_reported_with_offset() -> None:
    raw = bytearray(wire("R00\x1c1.35\x1c00"))
    raw[-1] ^= 0xFF
    [token] = feed_bytewise(bytes(raw))
    assert isinstance(token, CorruptFrame)
    assert "LRC" in token.reason and token.offset == len(raw) - 1


def test_noise_and_control_bytes_between_frames() -> None:
    raw = wire("R00\x1c1.35\x1c00")
    found = feed_bytewise(b"\xff\x55" + bytes([NAK]) + raw)
    assert found[:3] == [Noise(b"\xff", 0), Noise(b"\x55", 1), Control(NAK, 2)]
    assert isinstance(found[3], Frame) and found[3].offset == 3


def test_stx_inside_frame_restarts() -> None:
    raw = wire("R00\x1c1.35\x1c00")
    found = feed_bytewise(b"\x02R0" + raw)
    assert isinstance(found[0], CorruptFrame) and found[0].offset == 3
    assert isinstance(found[1], Frame)


def test_runaway_frame_is_cut() -> None:
    decoder = FrameDecoder(max_frame=64)
    decoder.feed(b"\x02" + b"A" * 100)
    assert any(isinstance(t, CorruptFrame) and "too long" in t.reason for t in tokens(decoder))


def test_abandon_frame_for_inter_byte_timeout() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"\x02R00")
    assert decoder.in_frame
    decoder.abandon_frame("inter-byte timeout")
    [token] = tokens(decoder)
    assert isinstance(token, CorruptFrame) and not decoder.in_frame


def test_encoder_refuses_framing_bytes_in_fields() -> None:
    with pytest.raises(ValueError, match="0x1C"):
        encode_frame([b"R00", b"a\x1cb"])


@given(st.binary(max_size=300))
def test_garbage_never_raises(data: bytes) -> None:
    decoder = FrameDecoder()
    decoder.feed(data)
    for token in tokens(decoder):
        if isinstance(token, Frame):
            body = token.raw[1:-1]
            assert reduce(lambda a, b: a ^ b, body, 0) == token.raw[-1]
