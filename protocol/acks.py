"""Application acknowledgements: the collector tells an agent which records it committed.

Theory of operation
-------------------
After the collector has committed a batch of records it publishes, on the agent's ack topic
(:func:`protocol.topics.ack_topic`), one JSON object (RFC 8785 canonical)::

    {"acks":[{"reason":null,"seq":1,"status":"accepted"}, …],"agent_id":"shop-0001"}

``status`` is ``accepted`` (stored now), ``duplicate`` (already stored, same content),
``rejected`` (will never be stored: bad signature, revoked key, malformed body; ``reason``
says why) or ``conflict`` (same key, different content: kept aside and alarmed). Only then may
the agent drop the row from its outbox; a negative ack is kept and shown, not retried forever.

Acks are not signed: the broker's ACL lets only the collector's user publish on ack topics,
so an ack's origin is the broker's authentication (docs/envelope.md, "Acks").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from .canonical import MAX_SAFE_INT, JSONError, canonical_dumps, strict_json_loads
from .envelope import AGENT_ID_RE as _AGENT_ID_RE
from .errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "MAX_ACKS",
    "MAX_ACK_BYTES",
    "Ack",
    "AckError",
    "AckStatus",
    "decode_acks",
    "encode_acks",
]

AckStatus = Literal["accepted", "duplicate", "rejected", "conflict"]
_STATUSES: tuple[str, ...] = get_args(AckStatus)
#: Most acks in one message, and the size limit of an ack payload.
MAX_ACKS = 1000
MAX_ACK_BYTES = 262144
MAX_REASON = 200
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # controls, lone surrogates


class AckError(RemoteProtocolError):
    """An ack payload is malformed. ``offset`` is a byte offset when known."""


@dataclass(frozen=True, slots=True)
class Ack:
    """The collector's verdict on one record, identified by the agent's ``seq``."""

    seq: int
    status: AckStatus
    reason: str | None = None

    def __post_init__(self) -> None:
        if type(self.seq) is not int or not 1 <= self.seq <= MAX_SAFE_INT:
            raise LocalProtocolError("ack seq must be an integer from 1 to 2**53-1")
        if self.status not in _STATUSES:
            raise LocalProtocolError(f"ack status must be one of {', '.join(_STATUSES)}")
        if self.reason is not None and (
            type(self.reason) is not str
            or not 1 <= len(self.reason) <= MAX_REASON
            or _CONTROL_RE.search(self.reason)
        ):
            raise LocalProtocolError(f"ack reason must be 1 to {MAX_REASON} printable characters")

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready object for this ack."""
        return {"seq": self.seq, "status": self.status, "reason": self.reason}


def encode_acks(agent_id: str, acks: Sequence[Ack]) -> bytes:
    """Encode acks for one agent as canonical JSON.

    :param agent_id: the agent the acks are for (must match the ack topic)
    :param acks: 1 to :data:`MAX_ACKS` acks
    :raises LocalProtocolError: for a bad agent id or ack count
    """
    if not isinstance(agent_id, str) or not _AGENT_ID_RE.match(agent_id):
        raise LocalProtocolError(f"agent_id {agent_id!r} does not match {_AGENT_ID_RE.pattern}")
    if not 1 <= len(acks) <= MAX_ACKS:
        raise LocalProtocolError(f"send 1 to {MAX_ACKS} acks per message")
    if not all(isinstance(ack, Ack) for ack in acks):
        raise LocalProtocolError("acks must be Ack objects")
    return canonical_dumps({"acks": [ack.to_json() for ack in acks], "agent_id": agent_id})


def _ack_from_json(index: int, item: Any) -> Ack:
    where = f"acks[{index}]"
    if not isinstance(item, dict) or item.keys() != {"seq", "status", "reason"}:
        raise AckError(f"{where} must be an object with exactly seq, status, reason")
    try:
        return Ack(item["seq"], item["status"], item["reason"])
    except LocalProtocolError as exc:
        raise AckError(f"{where}: {exc.message}") from None


def decode_acks(payload: bytes) -> tuple[str, list[Ack]]:
    """Parse an ack payload strictly.

    Canonical form is what :func:`encode_acks` produces and what other collectors should
    send, but any strict JSON with the right shape is accepted (acks are not signed).

    :param payload: the received bytes
    :returns: ``(agent_id, acks)``
    :raises AckError: for anything malformed, with a byte offset when known
    """
    if len(payload) > MAX_ACK_BYTES:
        raise AckError(f"ack payload is {len(payload)} bytes, limit is {MAX_ACK_BYTES}")
    try:
        obj = strict_json_loads(payload, max_depth=3)
    except JSONError as exc:
        raise AckError(exc.message, exc.offset) from None
    if not isinstance(obj, dict) or obj.keys() != {"agent_id", "acks"}:
        raise AckError("ack payload must be an object with exactly agent_id and acks")
    agent_id = obj["agent_id"]
    if not isinstance(agent_id, str) or not _AGENT_ID_RE.match(agent_id):
        raise AckError(f"agent_id must match {_AGENT_ID_RE.pattern}")
    items = obj["acks"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ACKS:
        raise AckError(f"acks must be a list of 1 to {MAX_ACKS} objects")
    return agent_id, [_ack_from_json(i, item) for i, item in enumerate(items)]
