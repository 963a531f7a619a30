"""The ingest link's MQTT session without a socket: packets in, state and packets out.

Scenarios run the session against the bytes a broker would send: flow control by Receive
Maximum (ours to the broker, the broker's to us), a DISCONNECT in the middle of a stream, and a
resumed session in which both sides resend what was not acknowledged (MQTT 5 §4.4).
"""

from __future__ import annotations

import struct

import pytest
from settleguard.collector.ingest.mqtt_codec import (
    DISCONNECT,
    PUBLISH,
    SUBSCRIBE,
    ClientSession,
    LinkError,
    LinkRefused,
    Received,
    packet,
    packet_id_of,
    parse_properties,
    properties_at,
    string,
    varint,
)


def publish_packet(
    topic: str,
    payload: bytes,
    *,
    qos: int = 1,
    packet_id: int = 7,
    props: bytes = b"",
    v5: bool = True,
    dup: bool = False,
) -> bytes:
    body = string(topic) + (struct.pack("!H", packet_id) if qos else b"")
    if v5:
        body += varint(len(props)) + props
    return packet(0x30 | (qos << 1) | (0x08 if dup else 0), body + payload)


def connack(*, session_present: bool = False, props: bytes = b"", v5: bool = True) -> bytes:
    body = bytes([1 if session_present else 0, 0])
    return packet(0x20, body + (varint(len(props)) + props if v5 else b""))


def suback(packet_id: int, granted: int = 1, v5: bool = True) -> bytes:
    return packet(0x90, struct.pack("!H", packet_id) + (b"\x00" if v5 else b"") + b"\x01" * granted)


def puback(packet_id: int) -> bytes:
    return packet(0x40, struct.pack("!H", packet_id))


def split_packets(data: bytes) -> list[tuple[int, bytes]]:
    """``(first byte, body)`` of each packet the session sent (a test-side parser)."""
    out, pos = [], 0
    while pos < len(data):
        first, size, shift, at = data[pos], 0, 0, pos + 1
        while True:
            size |= (data[at] & 0x7F) << shift
            shift += 7
            at += 1
            if data[at - 1] < 0x80:
                break
        out.append((first, data[at : at + size]))
        pos = at + size
    return out


def connected(
    session: ClientSession, *, session_present: bool = False, props: bytes = b""
) -> bytes:
    """Run the connect handshake; return what the session sent after the CONNECT."""
    session.connect_packet()
    session.receive_data(connack(session_present=session_present, props=props, v5=session.v5))
    assert session.connected
    sent = session.subscribe_packet()
    sub_first, sub_body = split_packets(sent)[-1]
    assert sub_first >> 4 == SUBSCRIBE
    session.receive_data(
        suback(packet_id_of("SUBSCRIBE", sub_body), len(session.filters), session.v5)
    )
    assert session.subscribed
    return sent


def new_session(**kwargs: object) -> ClientSession:
    kwargs.setdefault("filters", ["x"])
    return ClientSession(client_id="t", **kwargs)  # type: ignore[arg-type]


# -- cutting packets ---------------------------------------------------------------------------


def test_packets_are_cut_the_same_wherever_a_read_splits_them() -> None:
    user_property = b"\x26" + string("k") + string("v")
    stream = (
        publish_packet("sg/v1/a/x/rec", b"small", packet_id=1)
        + publish_packet("sg/v1/a/y/rec", b"m" * 300, packet_id=2, props=user_property)
        + b"\xd0\x00"  # PINGRESP
        + puback(5)  # for a publish of ours
        + publish_packet("sg/v1/a/z/hb", b"L" * 20_000, qos=0)  # 3-byte remaining length
    )
    expected = [
        ("sg/v1/a/x/rec", b"small", 1, 1),
        ("sg/v1/a/y/rec", b"m" * 300, 1, 2),
        ("sg/v1/a/z/hb", b"L" * 20_000, 0, 0),
    ]
    for split in range(0, len(stream) + 1, 7):
        session = new_session()
        connected(session)
        session.receive_data(stream[:split])
        session.receive_data(stream[split:])
        got = session.take(10)
        assert [(m.topic, m.payload, m.qos, m.packet_id) for m in got] == expected, split
        assert session.take(10) == []


def test_mqtt_311_publish_has_no_properties() -> None:
    session = new_session(v5=False)
    connected(session)
    session.receive_data(publish_packet("a/b", b"\x00\x01payload", v5=False, packet_id=9))
    assert [(m.topic, m.payload, m.packet_id) for m in session.take(5)] == [
        ("a/b", b"\x00\x01payload", 9)
    ]


def test_malformed_length_and_publish_are_link_errors() -> None:
    session = new_session()
    connected(session)
    with pytest.raises(LinkError, match="variable byte integer"):
        session.receive_data(b"\x30\xff\xff\xff\xff\x01")  # a five-byte remaining length
    session = new_session()
    connected(session)
    with pytest.raises(LinkError, match="malformed PUBLISH"):
        session.receive_data(packet(0x32, string("topic-longer-than-the-packet")[:6]))
    with pytest.raises(LinkError, match="QoS 3"):
        new_session().receive_data(packet(0x36, string("t") + b"\x00\x01\x00"))


def test_a_packet_above_the_limit_is_refused_before_it_is_read() -> None:
    session = new_session(max_packet=1000)
    connected(session)
    with pytest.raises(LinkError, match="exceeds 1000"):
        session.receive_data(b"\x32" + varint(5000) + b"x" * 10)  # its head is enough


def test_properties_are_read_and_unknown_ones_refused() -> None:
    block = (
        struct.pack("!BH", 0x21, 20)
        + b"\x1f"
        + string("because")
        + b"\x26"
        + string("a")
        + string("b")
        + b"\x0b\x81\x01"
    )
    assert parse_properties(block) == {0x21: 20, 0x1F: b"because", 0x0B: 129}
    with pytest.raises(LinkError, match="unknown MQTT property 0x7f"):
        parse_properties(b"\x7f\x00")
    with pytest.raises(LinkError, match="truncated"):
        parse_properties(b"\x21\x00")


def test_packet_ids_and_property_blocks_are_checked() -> None:
    assert packet_id_of("PUBACK", b"\x01\x02") == 0x0102
    for body in (b"", b"\x01"):
        with pytest.raises(LinkError, match="malformed PUBACK"):
            packet_id_of("PUBACK", body)
    assert properties_at("SUBACK", b"\x00\x01\x03\x21\x00\x05\x00", 2) == ({0x21: 5}, 6)
    for body in (b"\x00\x01", b"\x00\x01\x80", b"\x00\x01\x04\x21\x00"):
        with pytest.raises(LinkError):
            properties_at("SUBACK", body, 2)


# -- connecting --------------------------------------------------------------------------------


def test_connect_asks_for_our_limits_and_the_session() -> None:
    session = new_session(
        session_expiry_s=300,
        receive_maximum=600,
        max_packet=70_000,
        username="collector",
        password="pw",
    )
    [(first, body)] = split_packets(session.connect_packet())
    assert first == 0x10
    assert body[:7] == string("MQTT") + b"\x05"
    assert body[7] == 0xC0  # user name and password; Clean Start off: resume the session
    props, _ = properties_at("CONNECT", body, 10)
    assert props == {0x21: 600, 0x11: 300, 0x27: 70_000}
    clean = new_session(v5=False)
    [(_, body)] = split_packets(clean.connect_packet())
    assert body[6:8] == b"\x04\x02"  # 3.1.1, clean session, no properties


def test_refusals_name_the_brokers_reason() -> None:
    session = new_session()
    session.connect_packet()
    with pytest.raises(LinkRefused, match=r"not authorized \(ACL\)"):
        session.receive_data(packet(0x20, b"\x00\x87" + varint(6) + b"\x1f" + string("ACL")))
    session = new_session(v5=False)
    session.connect_packet()
    with pytest.raises(LinkRefused, match="bad user name or password"):
        session.receive_data(packet(0x20, b"\x00\x04"))
    session = new_session(filters=["a", "b"])
    session.connect_packet()
    session.receive_data(connack())
    [(_, body)] = split_packets(session.subscribe_packet())
    with pytest.raises(LinkRefused, match="subscription refused: b"):
        session.receive_data(packet(0x90, body[:2] + b"\x00\x01\x87"))


# -- scenarios ---------------------------------------------------------------------------------


def test_our_publishes_stop_at_the_brokers_receive_maximum() -> None:
    session = new_session()
    connected(session, props=struct.pack("!BH", 0x21, 2))  # the broker takes 2 in flight
    first = split_packets(session.publish("ack/1", b"a"))[0]
    second = split_packets(session.publish("ack/2", b"b"))[0]
    assert not session.can_publish and session.unacknowledged == 2
    with pytest.raises(LinkError, match="Receive Maximum of 2"):
        session.publish("ack/3", b"c")
    assert session.publish("ack/0", b"qos0", qos=0)  # QoS 0 needs no quota
    first_id = packet_id_of("PUBLISH", first[1][len(string("ack/1")) :])
    session.receive_data(puback(first_id))
    assert session.can_publish and session.unacknowledged == 1
    third = split_packets(session.publish("ack/3", b"c"))[0]
    assert third[1][len(string("ack/3")) :][:2] != second[1][len(string("ack/2")) :][:2]


def test_messages_beyond_our_receive_maximum_are_taken_not_a_protocol_error() -> None:
    """The shipped Mosquitto can overrun our quota; dropping the link for it would make the
    resumed session redeliver its whole window on every reconnect."""
    session = new_session(receive_maximum=3)
    [(_, body)] = split_packets(session.connect_packet())
    assert properties_at("CONNECT", body, 10)[0][0x21] == 3  # what we ask the broker for
    connected(session)
    session.receive_data(b"".join(publish_packet("r", b"%d" % i, packet_id=i) for i in range(1, 6)))
    got = session.take(10)
    assert [m.packet_id for m in got] == [1, 2, 3, 4, 5]
    assert session.connected and session.disconnect_reason is None
    assert session.acks(got) == b"".join(puback(i) for i in range(1, 6))


def test_a_disconnect_mid_stream_ends_the_connection_after_what_came_before() -> None:
    session = new_session()
    connected(session)
    stream = (
        publish_packet("r", b"one", packet_id=1)
        + publish_packet("r", b"two", packet_id=2)
        + packet(DISCONNECT << 4, b"\x8b\x00")  # server shutting down
        + publish_packet("r", b"after", packet_id=3)
    )
    cut = len(stream) - 5
    session.receive_data(stream[:cut])
    session.receive_data(stream[cut:])
    assert session.disconnect_reason == "server shutting down"
    assert not session.connected
    received = session.take(10)
    assert [m.payload for m in received] == [b"one", b"two"]
    session.receive_data(publish_packet("r", b"late", packet_id=4))
    assert session.take(10) == []  # a closed connection reads nothing more
    connected(session)  # the next connection: the old packet ids mean nothing on it
    assert session.acks(received) == b""
    assert session.disconnect_reason is None


def test_a_resumed_session_resends_both_ways_with_dup() -> None:
    session = new_session(session_expiry_s=300)
    connected(session)
    session.receive_data(publish_packet("r", b"held", packet_id=41))
    [held] = session.take(1)
    sent = session.publish("sg/v1/a/x/ack", b"app-ack") + session.publish("sg/v1/a/y/ack", b"2")
    [(first_a, body_a), (_, body_b)] = split_packets(sent)
    session.receive_data(puback(packet_id_of("PUBLISH", body_b[len(string("sg/v1/a/y/ack")) :])))
    assert session.unacknowledged == 1
    # the connection drops before the broker acknowledged the first publish or we the message
    session.connect_packet()
    session.receive_data(connack(session_present=True))
    after_connack = split_packets(session.subscribe_packet())
    assert [first >> 4 for first, _ in after_connack] == [PUBLISH, SUBSCRIBE]
    (resent_first, resent_body) = after_connack[0]
    assert resent_first == first_a | 0x08 and first_a & 0x08 == 0  # DUP set on the resend only
    assert resent_body == body_a  # same packet id, topic and payload
    # the broker resends its message with DUP; only the new copy is acknowledged
    session.receive_data(publish_packet("r", b"held", packet_id=41, dup=True))
    [again] = session.take(1)
    assert (again.payload, again.packet_id, again.dup) == (b"held", 41, True)
    assert session.acks([held]) == b""
    assert session.acks([again]) == puback(41)


def test_a_session_the_broker_lost_forgets_our_unacknowledged_publishes() -> None:
    session = new_session(session_expiry_s=300)
    connected(session)
    session.publish("sg/v1/a/x/ack", b"app-ack")
    session.connect_packet()
    session.receive_data(connack(session_present=False))
    assert [first >> 4 for first, _ in split_packets(session.subscribe_packet())] == [SUBSCRIBE]
    assert session.unacknowledged == 0
    clean = new_session()  # a clean session never resends
    connected(clean)
    clean.publish("sg/v1/a/x/ack", b"app-ack")
    clean.connect_packet()
    clean.receive_data(connack(session_present=True))
    assert [first >> 4 for first, _ in split_packets(clean.subscribe_packet())] == [SUBSCRIBE]


def test_acks_skip_qos0_and_earlier_connections() -> None:
    session = new_session()
    connected(session)
    now = session.generation
    batch = [
        Received("t", b"", 1, 1, now),
        Received("t", b"", 0, 0, now),
        Received("t", b"", 1, 65535, now),
        Received("t", b"", 1, 7, now - 1),
        Received("t", b"", 1, 258, now),
    ]
    one_by_one = b"".join(session.acks([m]) for m in batch)
    assert session.acks(batch) == one_by_one == bytes.fromhex("400200014002ffff40020102")
