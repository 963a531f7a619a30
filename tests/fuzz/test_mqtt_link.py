"""The ingest worker's MQTT packet cutter on arbitrary broker bytes: only LinkError comes out."""

from __future__ import annotations

from hypothesis import given
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
