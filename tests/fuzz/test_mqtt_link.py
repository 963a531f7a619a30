"""The ingest link's MQTT session on arbitrary broker bytes: only LinkError comes out (which the
link turns into a dropped connection: tests/collector/ingest/test_mqtt_link_malformed.py)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from settleguard.collector.ingest.mqtt_codec import ClientSession, LinkError, packet, string, varint

from tests.fuzz.conftest import FUZZ


def _publish(topic: str, payload: bytes, qos: int, props: bytes) -> bytes:
    body = string(topic) + (b"\x00\x01" if qos else b"") + varint(len(props)) + props
    return packet(0x30 | (qos << 1), body + payload)


def _connected(v5: bool = True, filters: tuple[str, ...] = ("x",)) -> ClientSession:
    session = ClientSession(client_id="f", filters=filters, v5=v5)
    session.connect_packet()
    session.receive_data(b"\x20\x03\x00\x00\x00" if v5 else b"\x20\x02\x00\x00")
    assert session.connected
    return session


@FUZZ
@given(st.binary(max_size=600), st.integers(min_value=0, max_value=600), st.booleans())
def test_arbitrary_bytes_raise_only_link_errors(data: bytes, split: int, v5: bool) -> None:
    session = _connected(v5)
    try:
        for piece in (data[:split], data[split:]):
            session.receive_data(piece)
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
    session = _connected()
    try:
        for piece in (stream[:split], stream[split:], tail):
            session.receive_data(piece)
    except LinkError:
        pass
    assert [(m.topic, m.payload) for m in session.take(100)][: len(messages)] == [
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
    ).map(lambda parts: parts[0] + varint(len(parts[1])) + parts[1] + parts[2]),
)
_broker_reads = st.one_of(
    st.binary(max_size=60),
    st.lists(
        st.tuples(st.sampled_from([0x40, 0x90, 0xD0, 0xE0, 0x32, 0x36, 0x20, 0x00, 0xF0]),
                  st.binary(max_size=4)),
        min_size=1, max_size=4,
    ).map(lambda packets: b"".join(packet(first, body) for first, body in packets)),
)  # fmt: skip


@FUZZ
@given(_ack_bodies, st.booleans())
@example(b"\x00\x00\x03\x21\x00\x00", True)  # Receive Maximum 0
@example(b"\x00", True)  # shorter than a packet id
def test_connect_answers_raise_only_link_errors(body: bytes, v5: bool) -> None:
    """Any CONNACK or SUBACK body: accepted with a usable send quota, or a LinkError."""
    session = ClientSession(client_id="f", filters=["x", "y"], v5=v5)
    session.connect_packet()
    try:
        session.receive_data(packet(0x20, body))
        assert session.connected
        assert session.can_publish  # publish() can always make progress
    except LinkError:
        return
    session.subscribe_packet()
    try:
        session.receive_data(packet(0x90, body))
    except LinkError:
        pass


@FUZZ
@given(st.lists(_broker_reads, max_size=4), st.booleans())
@example([b"\x40\x01\x07"], True)  # a PUBACK of one byte
def test_any_bytes_after_connect_raise_only_link_errors_or_leave_it_working(
    reads: list[bytes], v5: bool
) -> None:
    """What the broker sends once connected is handled, ends the connection with the broker's
    reason (DISCONNECT), or is a LinkError; the session stays usable for the next connection."""
    session = _connected(v5)
    try:
        for data in reads:
            session.receive_data(data)
            assert session.connected or session.disconnect_reason is not None
    except LinkError:
        pass
    _ = session.connect_packet()
    assert not session.connected and session.disconnect_reason is None
