"""MQTT sync against a real Mosquitto and the collector ack double."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from settleguard.agent.errors import SyncError
from settleguard.agent.home import AgentHome
from settleguard.agent.keys import AgentKey
from settleguard.agent.outbox import Outbox
from settleguard.agent.recorder import append_record, heartbeat_record, seal_heartbeat
from settleguard.agent.sync import BrokerTarget, SyncLink, backoff_delay

from tests.agent.ackdouble import AckDouble
from tests.agent.conftest import LinkFactory, sample_record
from tests.helpers.mosquitto import Broker


def pump_until(link: SyncLink, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        link.pump(0.05)


def fill(home: AgentHome, key: AgentKey, count: int) -> Outbox:
    box = Outbox(home.outbox_path)
    for i in range(count):
        append_record(box, key, sample_record(i))
    return box


def test_flush_delivers_in_seq_order_and_empties_outbox(
    home: AgentHome, key: AgentKey, ack_double: AckDouble, make_link: LinkFactory
) -> None:
    box = fill(home, key, 250)
    link = make_link(box, window=20)
    result = link.flush(timeout=20)
    assert result.complete and result.acked == 250 and result.pending == 0
    assert [seq for _, seq in ack_double.order] == list(range(1, 251))
    assert set(ack_double.accepted.values()) == {1}
    assert box.stats().acked == 250
    assert box.get_meta("last_sync_at") is not None
    box.close()


def test_negative_ack_is_kept_and_not_retried(
    home: AgentHome, key: AgentKey, ack_double: AckDouble, make_link: LinkFactory
) -> None:
    ack_double.reject[2] = "revoked key"
    box = fill(home, key, 3)
    link = make_link(box)
    result = link.flush(timeout=10)
    assert result.complete and result.rejected == 1
    assert [(r["seq"], r["reason"]) for r in box.rejected()] == [(2, "revoked key")]
    append_record(box, key, sample_record(9))
    assert make_link(box).flush(timeout=10).complete
    assert ack_double.deliveries[(key.agent_id, 2)] == 1  # never sent again
    box.close()


def test_unacked_records_are_resent_after_the_timeout(
    home: AgentHome, key: AgentKey, ack_double: AckDouble, make_link: LinkFactory
) -> None:
    ack_double.silent = True  # the collector receives but does not answer
    box = fill(home, key, 5)
    link = make_link(box, ack_timeout_s=0.3)
    link.connect()
    pump_until(link, lambda: len(ack_double.deliveries) == 5)
    assert box.stats().pending == 5  # PUBACKs arrived; still pending without app acks
    ack_double.silent = False
    pump_until(link, lambda: not box.has_pending())
    assert all(ack_double.deliveries[(key.agent_id, s)] >= 2 for s in range(1, 6))
    assert set(ack_double.accepted.values()) == {1}
    assert ack_double.duplicates >= 5
    link.disconnect()
    box.close()


def test_records_added_while_connected_are_sent(
    home: AgentHome, key: AgentKey, ack_double: AckDouble, make_link: LinkFactory
) -> None:
    box = fill(home, key, 1)
    link = make_link(box)
    link.connect()
    pump_until(link, lambda: not box.has_pending())
    with Outbox(home.outbox_path) as other:  # e.g. `agent close` in another process
        append_record(other, key, sample_record(5))
    pump_until(link, lambda: not box.has_pending())
    assert ack_double.order[-1] == (key.agent_id, 2)
    link.disconnect()
    box.close()


def test_heartbeat_reaches_the_collector(
    home: AgentHome, key: AgentKey, ack_double: AckDouble, make_link: LinkFactory
) -> None:
    box = fill(home, key, 2)
    link = make_link(box)
    link.connect()
    beat = heartbeat_record(box, link_state="connected", terminal_id="T0000001")
    link.publish_heartbeat(seal_heartbeat(key, beat, box.stats().next_seq - 1))
    pump_until(link, lambda: bool(ack_double.heartbeats))
    agent_id, body = ack_double.heartbeats[0]
    assert agent_id == key.agent_id
    assert body["outbox_pending"] == 2 and body["link_state"] == "connected"
    link.disconnect()
    box.close()


def test_mqtt_311_setting(
    home: AgentHome, key: AgentKey, broker: Broker, ack_double: AckDouble
) -> None:
    from settleguard.agent.config import SyncSettings

    from tests.agent.conftest import AGENT_PASSWORD

    box = fill(home, key, 3)
    target = BrokerTarget.from_url(
        f"mqtt://127.0.0.1:{broker.port}",
        username=key.agent_id,
        password=AGENT_PASSWORD,
        protocol=4,
    )
    assert SyncLink(box, key, target, SyncSettings()).flush(timeout=10).complete
    box.close()


def test_wrong_password_is_a_clear_sync_error(
    home: AgentHome, key: AgentKey, broker: Broker
) -> None:
    from settleguard.agent.config import SyncSettings

    target = BrokerTarget.from_url(
        f"mqtt://127.0.0.1:{broker.port}", username=key.agent_id, password="wrong"
    )
    with Outbox(home.outbox_path) as box:
        link = SyncLink(box, key, target, SyncSettings())
        with pytest.raises(SyncError, match="refused"):
            link.connect(timeout=5)


def test_unreachable_broker_is_a_clear_sync_error(home: AgentHome, key: AgentKey) -> None:
    from settleguard.agent.config import SyncSettings

    from tests.helpers.mosquitto import free_port

    target = BrokerTarget.from_url(f"mqtt://127.0.0.1:{free_port()}", username="u", password="p")
    with Outbox(home.outbox_path) as box:
        with pytest.raises(SyncError, match="cannot reach broker"):
            SyncLink(box, key, target, SyncSettings()).connect(timeout=2)


def test_backoff_is_jittered_and_capped() -> None:
    delays = [backoff_delay(n, 1.0, 30.0) for n in range(12) for _ in range(20)]
    assert all(0.5 <= d <= 30.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # jitter: not a fixed schedule
    assert max(backoff_delay(20, 1.0, 30.0) for _ in range(50)) > 10


def test_garbage_and_foreign_acks_are_ignored(
    home: AgentHome, key: AgentKey, broker: Broker, make_link: LinkFactory
) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from settleguard.protocol.acks import Ack, encode_acks
    from settleguard.protocol.topics import ack_topic

    box = fill(home, key, 2)
    link = make_link(box)
    link.connect()
    pump_until(link, lambda: link.inflight == 2)
    collector = mqtt.Client(CallbackAPIVersion.VERSION2)
    collector.username_pw_set(*broker.collector)
    collector.connect("127.0.0.1", broker.port)
    collector.loop_start()
    topic = ack_topic(key.agent_id)
    infos = [
        collector.publish(topic, b"\xff not json", qos=1),
        collector.publish(topic, encode_acks("a-someone-else", [Ack(1, "accepted")]), qos=1),
        collector.publish(topic, encode_acks(key.agent_id, [Ack(2, "accepted")]), qos=1),
    ]
    for info in infos:
        info.wait_for_publish(5)
    pump_until(link, lambda: box.stats().acked == 1)
    assert [s for s, _ in box.pending()] == [1]  # the foreign ack did not touch seq 1
    assert link.last_error is not None and "malformed ack" in link.last_error
    collector.disconnect()
    collector.loop_stop()
    collector._reset_sockets()
    link.disconnect()
    box.close()
