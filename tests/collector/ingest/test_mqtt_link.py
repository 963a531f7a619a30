"""The ingest worker's MQTT link against a real Mosquitto (packets alone: test_mqtt_codec.py)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from settleguard.collector.enrollment import broker as broker_config
from settleguard.collector.enrollment.broker import accepts as _accepts
from settleguard.collector.ingest.mqtt_link import IngestLink, LinkRefused, Received
from settleguard.protocol.topics import SHARED_INGEST_FILTER, rec_topic

from tests.helpers.mosquitto import running_broker, wait_until
from tests.helpers.mqtt import MqttProbe

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
def test_a_puback_for_an_old_connection_is_not_sent(tmp_path: Path) -> None:
    """After a reconnect the message of the first connection stays unacknowledged: the
    resumed session delivers it again, with DUP set, and only that copy's PUBACK counts."""
    with running_broker(tmp_path / "b", agents={"agent-a": "pw-a"}) as running:
        link = _collector_link(running.port, running.collector[1], session_expiry_s=300)
        link.connect(5)
        agent = MqttProbe.connect(running.port, "agent-a", "pw-a")
        try:
            agent.publish(rec_topic("agent-a"), b"once")
            [first] = _receive_until(link, 1)
            link.close()
            link.connect(5)
            link.ack(first)  # of generation 1: nothing is sent on generation 2
            assert link.flush()
            [again] = _receive_until(link, 1)
            assert (again.payload, again.dup, again.generation) == (b"once", True, 2)
            link.ack(again)
            assert link.flush()
            link.close()
            link.connect(5)
            assert _receive_until(link, 1, timeout=0.5) == []
        finally:
            agent.close()
            link.close()


@pytest.mark.mosquitto
def test_a_broker_past_our_receive_maximum_does_not_drop_the_link(tmp_path: Path) -> None:
    """Draining a resumed session with acknowledgements lagging behind, as the worker's
    pipeline does: whatever the broker sends beyond our Receive Maximum is taken."""
    with running_broker(tmp_path / "b", agents={"agent-a": "pw-a"}) as running:
        link = _collector_link(running.port, running.collector[1], session_expiry_s=300,
                               receive_maximum=8)  # fmt: skip
        link.connect(5)
        link.close()  # away: the broker queues for the session
        agent = MqttProbe.connect(running.port, "agent-a", "pw-a")
        try:
            for n in range(60):
                agent.publish(rec_topic("agent-a"), b"m-%d" % n)
            link.connect(5)
            held: list[list[Received]] = []
            got: list[bytes] = []
            deadline = time.monotonic() + 20
            while len(got) < 60 and time.monotonic() < deadline:
                batch = link.receive(4, 0.2, 0.01)
                got += [m.payload for m in batch]
                held.append(batch)
                if len(held) > 3 or not batch:  # up to 16 taken and not yet acknowledged
                    link.ack_all(held.pop(0))
                    assert link.flush()
            assert got == [b"m-%d" % n for n in range(60)]
            assert link.generation == 2 and link.last_error is None
        finally:
            agent.close()
            link.close()
