"""MQTT topic names (docs/architecture.md §3.4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from settleguard.protocol.errors import LocalProtocolError
from settleguard.protocol.topics import (
    HEARTBEAT_FILTER,
    PLAIN_INGEST_FILTER,
    SHARED_INGEST_FILTER,
    TopicError,
    ack_topic,
    agent_id_from_topic,
    hb_topic,
    rec_topic,
)


def test_topic_names() -> None:
    assert rec_topic("shop-0001") == "sg/v1/a/shop-0001/rec"
    assert ack_topic("shop-0001") == "sg/v1/a/shop-0001/ack"
    assert hb_topic("shop-0001") == "sg/v1/a/shop-0001/hb"
    assert SHARED_INGEST_FILTER == "$share/ingest/sg/v1/a/+/rec"
    assert PLAIN_INGEST_FILTER == "sg/v1/a/+/rec"
    assert HEARTBEAT_FILTER == "sg/v1/a/+/hb"


@pytest.mark.parametrize("kind", ["rec", "ack", "hb"])
@given(st.from_regex(r"[a-z0-9][a-z0-9_-]{2,63}", fullmatch=True))
def test_round_trip(kind: str, agent_id: str) -> None:
    topic = {"rec": rec_topic, "ack": ack_topic, "hb": hb_topic}[kind](agent_id)
    assert agent_id_from_topic(topic, kind) == agent_id


@pytest.mark.parametrize(
    "agent_id", ["", "ab", "Shop", "a/b", "+++", "#ab", "shop-0001\n", "x" * 65]
)
def test_bad_agent_ids_are_refused_when_building(agent_id: str) -> None:
    with pytest.raises(LocalProtocolError):
        rec_topic(agent_id)


@pytest.mark.parametrize(
    ("topic", "kind"),
    [
        ("sg/v1/a/shop-0001/ack", "rec"),
        ("sg/v1/a/shop-0001/rec/extra", "rec"),
        ("sg/v1/a/shop-0001", "rec"),
        ("sg/v2/a/shop-0001/rec", "rec"),
        ("$share/ingest/sg/v1/a/shop-0001/rec", "rec"),
        ("sg/v1/a/+/rec", "rec"),
        ("sg/v1/a/SHOP/rec", "rec"),
        ("sg/v1/a//rec", "rec"),
        ("", "hb"),
    ],
)
def test_wrong_topics_raise_topic_error(topic: str, kind: str) -> None:
    with pytest.raises(TopicError, match="topic"):
        agent_id_from_topic(topic, kind)


def test_unknown_kind_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        agent_id_from_topic("sg/v1/a/shop-0001/rec", "records")


@given(st.text(max_size=80))
def test_garbage_topics_only_raise_topic_error(topic: str) -> None:
    try:
        agent_id = agent_id_from_topic(topic, "rec")
    except TopicError:
        return
    assert rec_topic(agent_id) == topic
