"""The ingest worker's MQTT packet parsing on arbitrary broker bytes: only LinkError comes out,
and the read loop turns it into a dropped link, never an exception."""

from __future__ import annotations

import socket
import time

from hypothesis import example, given
from hypothesis import strategies as st

from collector.mqtt_link import IngestLink, LinkError, _packet, _string, _varint
from tests.fuzz.conftest import FUZZ


def _publish(topic: str, payload: bytes, qos: int, props: bytes) -> bytes:
    body = _string(topic) + (b"\x00\x01" if qos else b"") + _varint(len(props)) + props
    return _packet(0x30 | (qos << 1), body + payload)


@FUZZ
@given(st.binary(max_size=600), st.integers(min_value=0, max_value=600), st.booleans())
def test_arbitrary_bytes_raise_only_link_errors(data: bytes, split: int, v5: bool) -> None:
    link = IngestLink("127.0.0.1", 1, client_id="f", filters=["x"], v5=v5)
    try:
        for piece in (data[:split], data[split:]):
            link._buf += piece
            link._cut_packets(queue_publishes=True)
    except LinkError:
        pass


@FUZZ
@given(
    st.lists(st.tuples(st.text(max_size=40), st.binary(max_size=400), st.sampled_from([0, 1]),
                       st.sampled_from([b"", b"\x01\x01", b"\x23\x00\x05"])), max_size=6),
    st.binary(max_size=40),
    st.integers(min_value=0, max_value=4000),
)  # fmt: skip
def test_valid_publishes_survive_a_corrupt_tail(messages: list, tail: bytes, split: int) -> None:  # type: ignore[type-arg]
    """Well-formed packets before garbage are all delivered, exactly once, whatever the split."""
    stream = b"".join(_publish(t, p, q, props) for t, p, q, props in messages)
    link = IngestLink("127.0.0.1", 1, client_id="f", filters=["x"])
    try:
        for piece in (stream[:split], stream[split:], tail):
            link._buf += piece
            link._cut_packets(queue_publishes=True)
    except LinkError:
        pass
    assert [(m.topic, m.payload) for m in link._ready][: len(messages)] == [
        (t, p) for t, p, _, _ in messages
    ]


# Property blocks built from real property ids with random values, so the fuzzer reaches
# the value checks (Receive Maximum 0, lengths past the block) and not only unknown ids.
_props = st.lists(
    st.tuples(st.sampled_from([0x21, 0x11, 0x22, 0x24, 0x1F, 0x26, 0x0B, 0x7F]),
              st.one_of(st.binary(max_size=2), st.binary(max_size=6))),
    max_size=4,
).map(lambda items: b"".join(bytes([pid]) + value for pid, value in items))  # fmt: skip
_ack_bodies = st.one_of(
    st.binary(max_size=80),
    st.tuples(
        st.sampled_from([b"\x00\x00", b"\x00\x01", b"\x01\x00"]),
        _props,
        st.sampled_from([b"", b"\x01", b"\x80\x01"]),
    ).map(lambda parts: parts[0] + _varint(len(parts[1])) + parts[1] + parts[2]),
)
_broker_reads = st.one_of(
    st.binary(max_size=60),
    st.lists(
        st.tuples(st.sampled_from([0x40, 0x90, 0xD0, 0xE0, 0x32, 0x36, 0x20, 0x00, 0xF0]),
                  st.binary(max_size=4)),
        min_size=1, max_size=4,
    ).map(lambda packets: b"".join(_packet(first, body) for first, body in packets)),
)  # fmt: skip


@FUZZ
@given(_ack_bodies, st.booleans())
@example(b"\x00\x00\x03\x21\x00\x00", True)  # Receive Maximum 0
@example(b"\x00", True)  # shorter than a packet id
def test_connect_answers_raise_only_link_errors(body: bytes, v5: bool) -> None:
    """Any CONNACK or SUBACK body: accepted with a usable send quota, or a LinkError."""
    link = IngestLink("127.0.0.1", 1, client_id="f", filters=["x", "y"], v5=v5)
    try:
        link._on_connack(body)
        assert link._send_quota >= 1  # publish() can always make progress
    except LinkError:
        pass
    try:
        link._on_suback(body)
    except LinkError:
        pass


@FUZZ
@given(st.lists(_broker_reads, max_size=4), st.booleans())
@example([b"\x40\x01\x07"], True)  # a PUBACK of one byte
def test_any_bytes_after_connect_drop_the_link_or_leave_it_working(
    reads: list[bytes], v5: bool
) -> None:
    """What the broker sends once connected never raises out of the read loop: a malformed
    packet drops the link with the reason recorded, for the next receive to reconnect."""
    ours, broker = socket.socketpair()
    link = IngestLink("127.0.0.1", 1, client_id="f", filters=["x"], v5=v5)
    link._sock, link.connected = ours, True
    link._last_sent = link._last_heard = time.monotonic()
    try:
        for data in reads:
            if not link.connected or not data:
                break
            broker.sendall(data)
            link._pump(5.0)
            assert link.connected or link.last_error
    finally:
        link._drop()
        broker.close()
