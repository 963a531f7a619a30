"""MQTT topic names (docs/architecture.md §3.4).

Theory of operation
-------------------
Each agent owns three topics under ``sg/v1/a/{agent_id}/``:

* ``rec`` — signed envelopes, agent → collector, QoS 1;
* ``ack`` — application acks (:mod:`protocol.acks`), collector → agent, after the commit;
* ``hb``  — heartbeats (signed envelopes of type ``heartbeat``), agent → collector.

The broker ACL ties the topic level to the MQTT username (``pattern write sg/v1/a/%u/rec``), so
the collector checks that the topic's agent id equals the envelope's ``agent_id``. Collector
workers share the load with an MQTT v5 shared subscription (:data:`SHARED_INGEST_FILTER`);
on MQTT 3.1.1 brokers a single worker uses :data:`PLAIN_INGEST_FILTER` (docs/architecture.md §7).
"""

from __future__ import annotations

from .envelope import AGENT_ID_RE
from .errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "HEARTBEAT_FILTER",
    "KINDS",
    "PLAIN_INGEST_FILTER",
    "SHARED_HEARTBEAT_FILTER",
    "SHARED_INGEST_FILTER",
    "TOPIC_PREFIX",
    "TopicError",
    "ack_topic",
    "agent_id_from_topic",
    "hb_topic",
    "rec_topic",
]

TOPIC_PREFIX = "sg/v1/a/"
KINDS = ("rec", "ack", "hb")
PLAIN_INGEST_FILTER = "sg/v1/a/+/rec"
SHARED_INGEST_FILTER = "$share/ingest/sg/v1/a/+/rec"
HEARTBEAT_FILTER = "sg/v1/a/+/hb"
SHARED_HEARTBEAT_FILTER = "$share/ingest/sg/v1/a/+/hb"


class TopicError(RemoteProtocolError):
    """A message arrived on a topic that is not one of ours."""


def _topic(agent_id: str, kind: str) -> str:
    if not isinstance(agent_id, str) or not AGENT_ID_RE.match(agent_id):
        raise LocalProtocolError(f"agent_id {agent_id!r} does not match {AGENT_ID_RE.pattern}")
    return f"{TOPIC_PREFIX}{agent_id}/{kind}"


def rec_topic(agent_id: str) -> str:
    """Return ``sg/v1/a/{agent_id}/rec``.

    :raises LocalProtocolError: for an invalid agent id
    """
    return _topic(agent_id, "rec")


def ack_topic(agent_id: str) -> str:
    """Return ``sg/v1/a/{agent_id}/ack``.

    :raises LocalProtocolError: for an invalid agent id
    """
    return _topic(agent_id, "ack")


def hb_topic(agent_id: str) -> str:
    """Return ``sg/v1/a/{agent_id}/hb``.

    :raises LocalProtocolError: for an invalid agent id
    """
    return _topic(agent_id, "hb")


def agent_id_from_topic(topic: str, kind: str) -> str:
    """Return the agent id of a topic of the given kind.

    :param topic: the topic a message arrived on (no ``$share/…`` prefix: brokers deliver the
        real topic)
    :param kind: ``rec``, ``ack`` or ``hb``
    :raises LocalProtocolError: for an unknown ``kind``
    :raises TopicError: if the topic is not ``sg/v1/a/{valid agent id}/{kind}``
    """
    if kind not in KINDS:
        raise LocalProtocolError(f"topic kind must be one of {', '.join(KINDS)}")
    shown = topic[:120] if isinstance(topic, str) else repr(topic)[:120]
    if not isinstance(topic, str) or not topic.startswith(TOPIC_PREFIX):
        raise TopicError(f"topic {shown!r} is not under {TOPIC_PREFIX}")
    agent_id, slash, rest = topic[len(TOPIC_PREFIX) :].partition("/")
    if not slash or rest != kind:
        raise TopicError(f"topic {shown!r} is not a {kind!r} topic (sg/v1/a/<agent id>/{kind})")
    if not AGENT_ID_RE.match(agent_id):
        raise TopicError(f"topic {shown!r} has an invalid agent id")
    return agent_id
