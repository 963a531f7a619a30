"""APDU, BCD, LLVAR/LLLVAR, bitmap and TLV codecs: vectors, round-trips and garbage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from settleguard.protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from settleguard.protocol.zvt.apdu import (
    Apdu,
    apdu_length,
    bcd_decode,
    bcd_encode,
    decode_apdu,
    decode_var,
    encode_bitmap,
    encode_var,
    parse_bitmaps,
    password_bytes,
)
from settleguard.protocol.zvt.tlv import (
    TlvObject,
    decode_tlv,
    encode_length,
    encode_tlv,
    read_length,
    text_lines,
)

from tests.protocol.zvt.vectors import APDUS, VARS, h


@pytest.mark.parametrize(("name", "wire"), APDUS, ids=[n for n, _ in APDUS])
def test_apdu_vectors_decode_and_reencode(name: str, wire: str) -> None:
    data = h(wire)
    apdu = decode_apdu(data)
    assert apdu.cls == data[0] and apdu.instr == data[1]
    assert len(apdu.data) == data[2]
    assert apdu.encode() == data


def test_extended_length_is_little_endian() -> None:
    # PA00P015 §5.1 sample: "06 D3 FF 5D 03 ..." carries 0x035D = 861 data bytes
    apdu = Apdu(0x06, 0xD3, bytes(861))
    wire = apdu.encode()
    assert wire[:5] == h("06 D3 FF 5D 03")
    assert apdu_length(wire[:5]) == 866
    assert decode_apdu(wire) == apdu


def test_254_bytes_fit_the_short_length_and_255_do_not() -> None:
    assert Apdu(0x06, 0xD3, bytes(254)).encode()[2] == 0xFE
    assert Apdu(0x06, 0xD3, bytes(255)).encode()[2:5] == h("FF FF 00")


def test_decode_apdu_errors_carry_offsets() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_apdu(h("06 0F 03 00"))
    assert info.value.offset == 4
    with pytest.raises(RemoteProtocolError) as info:
        decode_apdu(h("80 00 00 AA"))
    assert info.value.offset == 3


@pytest.mark.parametrize(
    ("value", "size", "wire"),
    [(123456, 3, "12 34 56"), (0, 2, "00 00"), (1234, 6, "00 00 00 00 12 34"), (978, 2, "09 78")],
)
def test_bcd_vectors(value: int, size: int, wire: str) -> None:
    assert bcd_encode(value, size) == h(wire)
    assert bcd_decode(h(wire)) == value


def test_bcd_rejects_bad_digits_with_offset() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        bcd_decode(h("12 3A"), offset=10)
    assert info.value.offset == 11
    with pytest.raises(LocalProtocolError):
        bcd_encode(1000, 1)
    with pytest.raises(LocalProtocolError):
        bcd_encode(-1, 3)


def test_password_is_three_bcd_bytes() -> None:
    assert password_bytes("123456") == h("12 34 56")  # PA00P015 §1.2 example
    assert password_bytes(None) == h("00 00 00")
    for bad in ("12345", "1234567", "12a456", "１２３４５６"):
        with pytest.raises(LocalProtocolError):
            password_bytes(bad)


@pytest.mark.parametrize(("digits", "wire", "value"), VARS)
def test_llvar_lllvar_vectors(digits: int, wire: str, value: str) -> None:
    assert encode_var(h(value), digits) == h(wire)
    assert decode_var(h(wire), 0, digits) == (h(value), len(h(wire)))


def test_var_length_errors() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_var(h("F1 FA 00"), 0, 2)
    assert info.value.offset == 1
    with pytest.raises(RemoteProtocolError):
        decode_var(h("F0 F5 01"), 0, 2)
    with pytest.raises(LocalProtocolError):
        encode_var(bytes(100), 2)


def test_bitmaps_in_wire_order_with_tlv() -> None:
    # PA00P015 §5.1 sample completion: 19 status, 29 TID, 49 CC, 06 TLV
    fields = parse_bitmaps(h("19 00 29 65 00 00 28 49 09 78 06 06 26 04 0A 02 06 D3"))
    assert [bmp for bmp, _ in fields] == [0x19, 0x29, 0x49, 0x06]
    assert fields[1][1] == h("65 00 00 28")
    assert decode_tlv(fields[3][1]) == (
        TlvObject(0x26, h("0A 02 06 D3"), (TlvObject(0x0A, h("06 D3")),)),
    )


def test_unknown_bitmap_is_an_error_at_its_offset() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_bitmaps(h("27 00 FF 01"))
    assert info.value.offset == 2


def test_truncated_fixed_bitmap() -> None:
    with pytest.raises(RemoteProtocolError):
        parse_bitmaps(h("04 00 00 01"))


@pytest.mark.parametrize(
    ("bmp", "value"),
    [(0x04, bytes(6)), (0x3C, b"hello"), (0x8B, b"VISA\x00"), (0x06, h("07 01 41"))],
)
def test_encode_bitmap_round_trip(bmp: int, value: bytes) -> None:
    assert parse_bitmaps(encode_bitmap(bmp, value)) == [(bmp, value)]


def test_tlv_lengths_81_and_82_are_big_endian() -> None:
    assert read_length(h("81 C8"), 0) == (200, 2)
    assert read_length(h("82 03 59"), 0) == (0x0359, 3)
    assert encode_length(0x7F) == h("7F")
    assert encode_length(0x80) == h("81 80")
    assert encode_length(0x0359) == h("82 03 59")
    for bad in ("80", "83 00 00 00", "81", "82 01"):
        with pytest.raises(RemoteProtocolError):
            read_length(h(bad), 0)


def test_tlv_multi_byte_tags_and_texts() -> None:
    objects = decode_tlv(h("24 0D 07 0B 30 30 20 41 70 70 72 6F 76 65 64 1F 73 03 00 00 08"))
    assert objects[1] == TlvObject(0x1F73, h("00 00 08"))
    assert text_lines(objects) == ["00 Approved"]
    assert encode_tlv(objects) == h(
        "24 0D 07 0B 30 30 20 41 70 70 72 6F 76 65 64 1F 73 03 00 00 08"
    )


def test_tlv_overrun_is_reported_at_the_tag() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_tlv(h("07 01 41 07 05 41"))
    assert info.value.offset == 3


tlv_leaf = st.builds(
    TlvObject,
    tag=st.sampled_from([0x07, 0x09, 0x12, 0x1F73, 0x1F16, 0x41]),
    value=st.binary(max_size=300),
)
tlv_tree = st.recursive(
    tlv_leaf,
    lambda children: st.builds(
        lambda tag, kids: TlvObject(tag, encode_tlv(kids), tuple(kids)),
        st.sampled_from([0x23, 0x24, 0x25, 0x26, 0xE4]),
        st.lists(children, max_size=4),
    ),
    max_leaves=8,
)


@given(st.lists(tlv_tree, max_size=5))
def test_tlv_round_trip(objects: list[TlvObject]) -> None:
    assert decode_tlv(encode_tlv(objects)) == tuple(objects)


@given(st.integers(0, 0xFF), st.integers(0, 0xFF), st.binary(max_size=700))
def test_apdu_round_trip(cls: int, instr: int, data: bytes) -> None:
    apdu = Apdu(cls, instr, data)
    assert decode_apdu(apdu.encode()) == apdu


@given(st.binary(max_size=200))
def test_garbage_only_raises_our_errors(data: bytes) -> None:
    for parse in (
        decode_apdu,
        parse_bitmaps,
        decode_tlv,
        lambda d: decode_var(d, 0, 3),
        bcd_decode,
    ):
        try:
            parse(data)
        except ProtocolError:
            pass
