"""Serial block protocol (PA00P016 §3) and the TCP/IP APDU stream (§4)."""

from __future__ import annotations

import binascii
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from settleguard.protocol.errors import LocalProtocolError
from settleguard.protocol.zvt.apdu import Apdu, apdu_length
from settleguard.protocol.zvt.transport import (
    ACK,
    NAK,
    ApduReceived,
    FrameAcknowledged,
    FrameRejected,
    FrameRepeated,
    LinkEvent,
    SerialLink,
    TcpLink,
    TransmissionFailed,
    crc16,
    encode_frame,
)

from tests.protocol.zvt.vectors import FRAMES, h


def reference_crc(data: bytes) -> int:
    """CRC-16/KERMIT via the non-reflected CCITT CRC on bit-reversed bytes (independent)."""

    def rev8(b: int) -> int:
        return int(f"{b:08b}"[::-1], 2)

    value = binascii.crc_hqx(bytes(rev8(b) for b in data), 0)
    return int(f"{value:016b}"[::-1], 2)


def events(link: SerialLink | TcpLink) -> list[LinkEvent]:
    out = []
    while (event := link.next_event()) is not None:
        out.append(event)
    return out


def feed(link: SerialLink | TcpLink, data: bytes, splits: list[int] | None = None) -> None:
    """Feed ``data`` one byte at a time (``splits=None``) or at the given cut points."""
    if splits is None:
        for i in range(len(data)):
            link.receive_data(data[i : i + 1])
        return
    cuts = [0, *sorted(s for s in splits if 0 < s < len(data)), len(data)]
    for a, b in itertools.pairwise(cuts):
        link.receive_data(data[a:b])


@pytest.mark.parametrize(("name", "apdu", "wire"), FRAMES, ids=[n for n, _, _ in FRAMES])
def test_encode_frame_vectors(name: str, apdu: str, wire: str) -> None:
    assert encode_frame(h(apdu)) == h(wire)
    frame = h(wire)
    assert frame[-2] | frame[-1] << 8 == reference_crc(h(apdu) + b"\x03")


@pytest.mark.parametrize(("name", "apdu", "wire"), FRAMES, ids=[n for n, _, _ in FRAMES])
@pytest.mark.parametrize("mode", ["bytewise", "whole"])
def test_decode_frame_vectors(name: str, apdu: str, wire: str, mode: str) -> None:
    link = SerialLink()
    if mode == "bytewise":
        feed(link, h(wire))
    else:
        link.receive_data(h(wire))
    assert events(link) == [ApduReceived(h(apdu))]
    assert link.data_to_send() == bytes([ACK])


@given(st.binary(max_size=100))
def test_crc_matches_reference(data: bytes) -> None:
    assert crc16(data) == reference_crc(data)


@settings(max_examples=200)
@given(
    st.lists(st.binary(max_size=300), min_size=1, max_size=4),
    st.lists(st.integers(0, 3000), max_size=12),
    st.binary(max_size=8).filter(lambda b: 0x10 not in b),
)
def test_frames_survive_any_split_and_noise(
    bodies: list[bytes], splits: list[int], noise: bytes
) -> None:
    apdus = [Apdu(0x06, 0xD1, body).encode() for body in bodies]
    stream = b"".join(noise + encode_frame(a) for a in apdus)
    link = SerialLink()
    feed(link, stream, splits)
    assert events(link) == [ApduReceived(a) for a in apdus]
    assert link.data_to_send() == bytes([ACK]) * len(apdus)


@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=10))
def test_garbage_never_raises_and_never_delivers_a_bad_apdu(data: bytes, splits: list[int]) -> None:
    link = SerialLink()
    feed(link, data, splits)
    for event in events(link):
        if isinstance(event, ApduReceived):  # only when CRC and length field agree
            assert apdu_length(event.apdu) == len(event.apdu)


def test_bad_crc_is_naked() -> None:
    link = SerialLink()
    frame = bytearray(h("10 02 06 50 03 12 34 56 10 03 C4 AF"))
    frame[-1] ^= 0x01
    link.receive_data(bytes(frame))
    assert [type(e) for e in events(link)] == [FrameRejected]
    assert link.data_to_send() == bytes([NAK])


def test_length_field_must_match_frame() -> None:
    link = SerialLink()
    link.receive_data(encode_frame(h("06 50 05 12 34 56")))
    assert [type(e) for e in events(link)] == [FrameRejected]


def test_three_bad_frames_report_a_transmission_error() -> None:
    link = SerialLink()
    bad = bytearray(encode_frame(h("80 00 00")))
    bad[-2] ^= 0xFF
    for _ in range(3):
        link.receive_data(bytes(bad))
    kinds = [type(e) for e in events(link)]
    assert kinds == [FrameRejected, FrameRejected, FrameRejected, TransmissionFailed]


def test_t1_gap_inside_a_frame_naks_and_resyncs() -> None:
    link = SerialLink(t1=0.2)
    frame = encode_frame(h("06 0F 00"))
    link.tick(10.0)
    link.receive_data(frame[:4])
    link.tick(10.1)
    assert link.data_to_send() == b""
    link.tick(10.35)
    assert [type(e) for e in events(link)] == [FrameRejected]
    assert link.data_to_send() == bytes([NAK])
    # the tail is noise now; the repeated frame is accepted
    link.receive_data(frame[4:])
    link.receive_data(frame)
    assert events(link) == [ApduReceived(h("06 0F 00"))]


def test_sender_repeats_on_nak_then_gives_up_after_two_repeats() -> None:
    link = SerialLink()
    link.send_apdu(h("06 10 03 00 00 00"))
    frame = link.data_to_send()
    assert frame == encode_frame(h("06 10 03 00 00 00"))
    for attempt in (2, 3):
        link.receive_data(bytes([NAK]))
        assert events(link) == [FrameRepeated("NAK from the peer", attempt)]
        assert link.data_to_send() == frame
    link.receive_data(bytes([NAK]))
    assert [type(e) for e in events(link)] == [TransmissionFailed]
    assert link.idle


def test_sender_repeats_after_t2_and_then_gets_ack() -> None:
    link = SerialLink(t2=5.0)
    link.tick(100.0)
    link.send_apdu(h("06 50 03 12 34 56"))
    frame = link.data_to_send()
    link.tick(100.1)  # T2 starts once the frame is written
    link.tick(105.0)
    assert events(link) == []
    link.tick(105.2)
    assert [type(e) for e in events(link)] == [FrameRepeated]
    assert link.data_to_send() == frame
    link.receive_data(bytes([ACK]))
    assert events(link) == [FrameAcknowledged(h("06 50 03 12 34 56"))]


def test_queued_apdus_wait_for_the_ack() -> None:
    link = SerialLink()
    link.send_apdu(h("80 00 00"))
    link.send_apdu(h("06 0F 00"))
    assert link.data_to_send() == encode_frame(h("80 00 00"))
    link.receive_data(bytes([ACK]))
    assert link.data_to_send() == encode_frame(h("06 0F 00"))


def test_stray_ack_and_nak_are_ignored_when_nothing_is_in_flight() -> None:
    link = SerialLink()
    link.receive_data(bytes([ACK, NAK]))
    assert events(link) == []


def test_withhold_and_reject_fault_injection() -> None:
    link = SerialLink()
    link.receive_data(encode_frame(h("80 00 00")))
    link.withhold_ack()
    assert link.data_to_send() == b""
    link.receive_data(encode_frame(h("80 00 00")))
    link.reject_frame()
    assert link.data_to_send() == bytes([NAK])


def test_send_apdu_rejects_nonsense() -> None:
    with pytest.raises(LocalProtocolError):
        SerialLink().send_apdu(b"\x06")
    with pytest.raises(LocalProtocolError):
        TcpLink().send_apdu(h("06 0F 02 00"))


@given(st.lists(st.binary(max_size=600), min_size=1, max_size=5), st.randoms())
def test_tcp_splitter_handles_any_segmentation(bodies: list[bytes], rnd: random.Random) -> None:
    apdus = [Apdu(0x04, 0x0F, body).encode() for body in bodies]
    stream = b"".join(apdus)
    link = TcpLink()
    cuts = sorted(rnd.sample(range(len(stream) + 1), min(len(stream) + 1, 6)))
    feed(link, stream, cuts)
    assert events(link) == [ApduReceived(a) for a in apdus]
    assert link.pending == 0


def test_tcp_one_byte_at_a_time_with_extended_length() -> None:
    apdu = Apdu(0x06, 0xD3, bytes(range(256)) * 2).encode()
    link = TcpLink()
    feed(link, apdu + h("80 00 00"))
    assert events(link) == [ApduReceived(apdu), ApduReceived(h("80 00 00"))]
    link.send_apdu(h("80 00 00"))
    assert link.data_to_send() == h("80 00 00")
