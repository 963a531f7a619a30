"""Our generated Mosquitto configuration, proven on a real broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector import broker
from tests.helpers.mosquitto import Broker, running_broker
from tests.helpers.mqtt import MqttProbe

pytestmark = pytest.mark.mosquitto


@pytest.fixture
def two_agents(tmp_path: Path):  # type: ignore[no-untyped-def]
    with running_broker(tmp_path / "b", agents={"agent-a": "pw-a", "agent-b": "pw-b"}) as running:
        yield running


def test_config_has_the_required_settings(tmp_path: Path) -> None:
    files = broker.write_broker_config(
        tmp_path, port=1999, collector_password_hash=broker.hash_password("x")
    )
    text = files.config.read_text()
    for line in ("set_tcp_nodelay true", "allow_anonymous false", "password_file", "acl_file"):
        assert line in text
    acl = files.acl_file.read_text()
    assert "pattern write sg/v1/a/%u/rec" in acl and "pattern read sg/v1/a/%u/ack" in acl
    broker.check_config(files)


def test_our_hash_matches_mosquitto_passwd_format(tmp_path: Path) -> None:
    hashed = broker.hash_password("secret")
    assert broker.verify_password("secret", hashed)
    assert not broker.verify_password("wrong", hashed)
    assert hashed.startswith("$7$101$")


def test_anonymous_and_wrong_password_refused(two_agents: Broker) -> None:
    anonymous = MqttProbe.connect(two_agents.port, None, None)
    wrong = MqttProbe.connect(two_agents.port, "agent-a", "nope")
    good = MqttProbe.connect(two_agents.port, "agent-a", "pw-a")
    try:
        assert not anonymous.connected and not wrong.connected
        assert good.connected
    finally:
        for probe in (anonymous, wrong, good):
            probe.close()


def test_agent_cannot_publish_as_another(two_agents: Broker) -> None:
    collector = MqttProbe.connect(two_agents.port, *two_agents.collector)
    agent_a = MqttProbe.connect(two_agents.port, "agent-a", "pw-a")
    try:
        assert not collector.subscribe("sg/v1/a/+/rec")[0].is_failure
        agent_a.publish("sg/v1/a/agent-b/rec", b"forged")
        agent_a.publish("sg/v1/a/agent-a/rec", b"own")
        # same connection, in order: once "own" is in, "forged" would have been too
        collector.wait_for(lambda msgs: ("sg/v1/a/agent-a/rec", b"own") in msgs)
        assert collector.messages == [("sg/v1/a/agent-a/rec", b"own")]
    finally:
        collector.close()
        agent_a.close()


def test_agent_cannot_read_another_agents_acks(two_agents: Broker) -> None:
    collector = MqttProbe.connect(two_agents.port, *two_agents.collector)
    agent_a = MqttProbe.connect(two_agents.port, "agent-a", "pw-a")
    try:
        agent_a.subscribe("sg/v1/a/agent-b/ack")
        agent_a.subscribe("sg/v1/a/+/ack")
        agent_a.subscribe("sg/v1/a/agent-a/ack")
        collector.publish("sg/v1/a/agent-b/ack", b"for b")
        collector.publish("sg/v1/a/agent-a/ack", b"for a")
        agent_a.wait_for(lambda msgs: any(p == b"for a" for _, p in msgs))
        assert all(payload == b"for a" for _, payload in agent_a.messages)
    finally:
        collector.close()
        agent_a.close()


def test_revoked_agent_cut_off(two_agents: Broker) -> None:
    before = MqttProbe.connect(two_agents.port, "agent-a", "pw-a")
    before.close()
    assert before.connected
    two_agents.set_agents({"agent-b": "pw-b"})  # revocation rewrites passwd and SIGHUPs

    def refused() -> bool:
        probe = MqttProbe.connect(two_agents.port, "agent-a", "pw-a")
        probe.close()
        return not probe.connected

    from tests.helpers.mosquitto import wait_until

    wait_until(refused, what="the revoked agent to be refused")
    still = MqttProbe.connect(two_agents.port, "agent-b", "pw-b")
    still.close()
    assert still.connected
