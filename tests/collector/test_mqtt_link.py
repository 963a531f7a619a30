"""The ingest worker's own MQTT client: packet cutting, properties, and a real Mosquitto."""

from __future__ import annotations

import struct
import subprocess
import time
from pathlib import Path

import pytest

from collector import broker as broker_config
from collector.mqtt_link import (
    IngestLink,
    LinkError,
    LinkRefused,
    Received,
    _packet,
    _string,
    _varint,
    parse_properties,
)
from protocol.topics import SHARED_INGEST_FILTER, rec_topic
from tests.helpers.mosquitto import _accepts, running_broker, wait_until
from tests.helpers.mqtt import MqttProbe


def _publish(topic: str, payload: bytes, *, qos: int = 1, packet_id: int = 7,
             props: bytes = b"", v5: bool = True) -> bytes:  # fmt: skip
    body = _string(topic) + (struct.pack("!H", packet_id) if qos else b"")
    if v5:
        body += _varint(len(props)) + props
    return _packet(0x30 | (qos << 1), body + payload)


def _link(v5: bool = True) -> IngestLink:
    return IngestLink("127.0.0.1", 1, client_id="t", filters=["x"], v5=v5)


def _cut_in_pieces(stream: bytes, split: int, v5: bool = True) -> tuple[list[Received], list]:  # type: ignore[type-arg]
    link = _link(v5)
    others = []
    for piece in (stream[:split], stream[split:]):
        link._buf += piece
        others += link._cut_packets(queue_publishes=True)
    assert not link._buf, "every complete packet was consumed"
    return link._ready, others


def test_packets_are_cut_the_same_wherever_a_read_splits_them() -> None:
    user_property = b"\x26" + _string("k") + _string("v")
    stream = (
        _publish("sg/v1/a/x/rec", b"small", packet_id=1)
        + _publish("sg/v1/a/y/rec", b"m" * 300, packet_id=2, props=user_property)  # 2-byte length
        + b"\xd0\x00"  # PINGRESP
        + b"\x40\x02\x00\x05"  # PUBACK for our publish 5
        + _publish("sg/v1/a/z/hb", b"L" * 20_000, qos=0)  # 3-byte remaining length
    )
    expected = [("sg/v1/a/x/rec", b"small", 1, 1), ("sg/v1/a/y/rec", b"m" * 300, 1, 2),
                ("sg/v1/a/z/hb", b"L" * 20_000, 0, 0)]  # fmt: skip
    for split in range(len(stream) + 1):
        ready, others = _cut_in_pieces(stream, split)
        assert [(m.topic, m.payload, m.qos, m.packet_id) for m in ready] == expected, split
        assert [first >> 4 for first, _ in others] == [13, 4]


def test_mqtt_311_publish_has_no_properties() -> None:
    stream = _publish("a/b", b"\x00\x01payload", v5=False, packet_id=9)
    ready, _ = _cut_in_pieces(stream, 3, v5=False)
    assert [(m.topic, m.payload, m.packet_id) for m in ready] == [("a/b", b"\x00\x01payload", 9)]


def test_malformed_length_and_publish_are_link_errors() -> None:
    link = _link()
    link._buf += b"\x30\xff\xff\xff\xff\x01"  # a five-byte remaining length
    with pytest.raises(LinkError, match="variable byte integer"):
        link._cut_packets(queue_publishes=True)
    link = _link()
    link._buf += _packet(0x32, _string("topic-longer-than-the-packet")[:6])
    with pytest.raises(LinkError):
        link._cut_packets(queue_publishes=True)


def test_properties_are_read_and_unknown_ones_refused() -> None:
    block = (struct.pack("!BH", 0x21, 20) + b"\x1f" + _string("because")
             + b"\x26" + _string("a") + _string("b") + b"\x0b\x81\x01")  # fmt: skip
    assert parse_properties(block) == {0x21: 20, 0x1F: b"because", 0x0B: 129}
    with pytest.raises(LinkError, match="unknown MQTT property 0x7f"):
        parse_properties(b"\x7f\x00")
    with pytest.raises(LinkError, match="truncated"):
        parse_properties(b"\x21\x00")


# -- against a real Mosquitto with our configuration -------------------------------------------


def _collector_link(port: int, password: str, **kwargs: object) -> IngestLink:
    return IngestLink("127.0.0.1", port, client_id=str(kwargs.pop("client_id", "sg-ingest-t")),
                      filters=[SHARED_INGEST_FILTER], username="collector", password=password,
                      **kwargs)  # type: ignore[arg-type]  # fmt: skip


def _receive_until(link: IngestLink, count: int, timeout: float = 10.0) -> list[Received]:
    got: list[Received] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += link.receive(count - len(got), 0.2, 0.0)
    return got


@pytest.mark.mosquitto
def test_wrong_password_is_refused_with_the_brokers_reason(tmp_path: Path) -> None:
    with running_broker(tmp_path / "b") as running:
        for v5 in (True, False):
            link = _collector_link(running.port, "wrong", v5=v5)
            with pytest.raises(LinkRefused, match="refused the connection"):
                link.connect(5)
            assert not link.connected


@pytest.mark.mosquitto
@pytest.mark.parametrize("v5", [True, False], ids=["v5", "v311"])
def test_unacked_messages_come_back_and_acked_ones_do_not(tmp_path: Path, v5: bool) -> None:
    with running_broker(tmp_path / "b", agents={"agent-a": "pw-a"}) as running:
        kwargs = {"session_expiry_s": 300} if v5 else {}
        filters = [SHARED_INGEST_FILTER] if v5 else ["sg/v1/a/+/rec"]
        link = IngestLink("127.0.0.1", running.port, client_id="sg-ingest-keep", filters=filters,
                          username="collector", password=running.collector[1], v5=v5,
                          **kwargs)  # type: ignore[arg-type]  # fmt: skip
        link.connect(5)
        agent = MqttProbe.connect(running.port, "agent-a", "pw-a")
        try:
            for n in range(3):
                agent.publish(rec_topic("agent-a"), b"payload-%d" % n)
            first = _receive_until(link, 3)
            assert [m.payload for m in first] == [b"payload-0", b"payload-1", b"payload-2"]
            assert all(m.qos == 1 and m.packet_id for m in first)
            link.ack(first[0])  # only the first is acknowledged
            assert link.flush()
            if not v5:
                return  # a 3.1.1 clean session is gone on disconnect: the agent resends instead
            link.close()
            link.connect(5)  # the same session: what was not PUBACKed is delivered again
            again = _receive_until(link, 2)
            assert [m.payload for m in again] == [b"payload-1", b"payload-2"]
            assert _receive_until(link, 1, timeout=0.5) == []
            link.ack_all(again)
            link.close()
            link.connect(5)
            assert _receive_until(link, 1, timeout=0.5) == []
        finally:
            agent.close()
            link.close()


@pytest.mark.mosquitto
def test_an_oversized_message_does_not_take_a_resumed_session_down(tmp_path: Path) -> None:
    """A message above the link's limit waits in the worker's persistent session; the link
    must still reconnect, resume and receive what comes after it."""
    with running_broker(tmp_path / "b", agents={"agent-a": "pw-a"}) as running:
        link = IngestLink("127.0.0.1", running.port, client_id="sg-ingest-big",
                          filters=[SHARED_INGEST_FILTER], username="collector",
                          password=running.collector[1], session_expiry_s=300,
                          max_packet=70_000)  # fmt: skip
        link.connect(5)
        link.close()  # away; the broker keeps the session and queues for it
        agent = MqttProbe.connect(running.port, "agent-a", "pw-a")
        try:
            agent.publish(rec_topic("agent-a"), b"x" * 100_000)  # under the broker's limit
            agent.publish(rec_topic("agent-a"), b"after")
            link.connect(5)
            received = _receive_until(link, 1)
            assert [m.payload for m in received] == [b"after"]
            assert link.connected and link.last_error is None
        finally:
            agent.close()
            link.close()


@pytest.mark.mosquitto
def test_link_reconnects_after_a_broker_restart(tmp_path: Path) -> None:
    with running_broker(tmp_path / "b", agents={"agent-a": "pw-a"}) as running:
        link = _collector_link(running.port, running.collector[1], keepalive_s=2)
        link.connect(5)
        running.process.terminate()
        running.process.wait(10)
        wait_until(lambda: not link.receive(1, 0.1) and not link.connected, what="link down")
        binary = broker_config.mosquitto_binary()
        assert binary is not None
        restarted = subprocess.Popen([binary, "-c", str(running.files.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_until(lambda: _accepts(running.port), what="mosquitto restarted")
            wait_until(lambda: not link.receive(1, 0.1) and link.connected, timeout=30,
                       what="link reconnected")  # fmt: skip
            assert link.generation == 2
            agent = MqttProbe.connect(running.port, "agent-a", "pw-a")
            agent.publish(rec_topic("agent-a"), b"after the restart")
            [message] = _receive_until(link, 1)
            assert (message.payload, message.generation) == (b"after the restart", 2)
            agent.close()
        finally:
            link.close()
            restarted.terminate()
            restarted.wait(10)


@pytest.mark.mosquitto
def test_keepalive_holds_an_idle_link(tmp_path: Path) -> None:
    with running_broker(tmp_path / "b") as running:
        link = _collector_link(running.port, running.collector[1], keepalive_s=1)
        link.connect(5)
        idle_until = time.monotonic() + 2.5  # more than 1.5 keep-alive intervals of silence
        while time.monotonic() < idle_until:
            assert link.receive(1, 0.2) == []
        assert link.connected and link.generation == 1, link.last_error
        link.close()


@pytest.mark.mosquitto
def test_a_pubacks_for_an_old_connection_is_not_sent(tmp_path: Path) -> None:
    with running_broker(tmp_path / "b") as running:
        link = _collector_link(running.port, running.collector[1])
        link.connect(5)
        stale = Received("t", b"", 1, 3, generation=link.generation - 1)
        link.ack(stale)
        assert link._out == []
        link.close()


@pytest.mark.mosquitto
def test_ack_all_writes_what_ack_writes_one_by_one(tmp_path: Path) -> None:
    with running_broker(tmp_path / "b") as running:
        link = _collector_link(running.port, running.collector[1])
        link.connect(5)
        now = link.generation
        batch = [Received("t", b"", 1, 1, now), Received("t", b"", 0, 0, now),
                 Received("t", b"", 1, 65535, now), Received("t", b"", 1, 7, now - 1),
                 Received("t", b"", 1, 258, now)]  # fmt: skip
        for message in batch:
            link.ack(message)
        one_by_one = b"".join(link._out)
        link._out.clear()
        link.ack_all(batch)
        assert b"".join(link._out) == one_by_one == bytes.fromhex("400200014002ffff40020102")
        link._out.clear()
        link.close()
