"""Verification and idempotent storage of incoming envelopes, without any I/O of its own.

Theory of operation (docs/architecture.md §3.3, §5): :func:`ingest_batch` takes the raw
messages a worker collected (from MQTT or a bundle file), decides each one in this order, and
writes all of them in ONE transaction; only after it returns (committed) may the caller publish
the acks it returns.

1. Topic: must be ``sg/v1/a/<agent>/rec`` (or ``…/hb``). The broker's ACL already guarantees the
   topic agent is the MQTT username that published it.
2. Size and header, then the key by the header's key id; the key must belong to an *approved*
   agent and that agent must be the topic's agent (key owner = topic agent). A retired key
   (:mod:`collector.enrollment.service`) carries a ceiling: past its grace period it verifies no
   ``seq`` above it (checked in step 4, where the ``seq`` is read).
3. Ed25519 over the received bytes, for a whole batch in one call
   (:func:`protocol.ed25519.verify_many`); only then strict parsing
   (:func:`protocol.envelope.parse_verified`; the header is read once per message).
4. The envelope's ``agent_id`` must be the topic's agent (body = topic = key owner), and a
   ``merchant_id`` in the body must be the merchant the agent was enrolled for. Batch and
   turnover amounts must be plausible (:func:`implausible_amounts`): a ceiling per bucket
   amount and per batch, and a limit on buckets, so no agent can break a sum downstream.
5. Idempotent write (:func:`collector.store.records.write_envelope`); the store may still
   refuse a record it can only judge with the collector's keys (a card change whose masked
   number does not match the sealed one), and that refusal is kept like the others.

Every refusal is stored in ``rejected_messages`` with its reason and answered with a negative
ack *to the topic's agent* when a ``seq`` can be read. For a message that failed verification the
``seq`` is read from the unverified bytes: that is safe because the ack topic is the publisher's
own, so a forged ack can only reach the forger. Nothing a peer sends can raise out of this
function: every failure becomes a reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from settleguard.collector.enrollment.keys import CollectorKeys
from settleguard.collector.store import Store
from settleguard.collector.store.records import (
    REJECTED,
    STORE_REFUSALS,
    WriteBatch,
    write_envelopes,
)
from settleguard.protocol.acks import Ack
from settleguard.protocol.canonical import strict_json_loads
from settleguard.protocol.ed25519 import verify_many
from settleguard.protocol.envelope import (
    DOMAIN,
    MAX_ENVELOPE_BYTES,
    Envelope,
    EnvelopeError,
    SignedHeader,
    key_id_for,
    parse_verified,
    read_header,
)
from settleguard.protocol.errors import ProtocolError
from settleguard.protocol.record_fields import contains_pan
from settleguard.protocol.records import BatchSummary, Record, TurnoverReading
from settleguard.protocol.topics import agent_id_from_topic

log = logging.getLogger(__name__)

PAYLOAD_HEAD_BYTES = 512  # how much of a refused payload is kept for the operator

#: Plausibility limits for batch and turnover totals (minor units). A terminal batch of a
#: billion yuan is a broken parser or a hostile agent, not trade. With these ceilings the
#: dashboard's 64-bit sums hold about 92 million such batches; its sums are also exact past
#: that (collector/web/read_models.py).
MAX_BUCKETS = 32
MAX_BUCKET_AMOUNT = 100_000_000_000  # per sale/refund/void amount of one bucket: ¥1,000,000,000.00
MAX_BATCH_AMOUNT = 100_000_000_000  # Σ sale + refund + void amounts of one batch


class Message(Protocol):
    """What :func:`verify_messages` needs of a received message (an :class:`IncomingMessage`,
    or the MQTT link's own :class:`~collector.ingest.mqtt_link.Received`, saving a copy per message)."""

    @property
    def topic(self) -> str: ...

    @property
    def payload(self) -> bytes: ...

    @property
    def source(self) -> str:
        """``mqtt`` or ``bundle:<file>``."""
        ...


class IncomingMessage(msgspec.Struct, frozen=True, gc=False):
    """One received payload and where it came from (``mqtt`` or ``bundle:<file>``)."""

    topic: str
    payload: bytes
    source: str = "mqtt"


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """A registered agent key as the worker needs it."""

    agent_id: str
    public_key: Ed25519PublicKey
    agent_status: str
    key_id: str  # key_id_for(public_key), computed once when the key is cached
    raw: bytes  # the 32 raw public key bytes (for protocol.ed25519.verify_many)
    #: the highest seq this key may sign: ``None`` for the agent's current key and for a
    #: retired key still in its grace period, else its ``max_seq`` (collector/enrollment/service.py)
    seq_limit: int | None = None
    merchant_id: str | None = None  # the merchant the agent was enrolled for


def _seq_limit(row: dict[str, object], now_iso: str) -> int | None:
    """The ``seq_limit`` of a stored key row at ``now_iso`` (an ISO UTC text, like the row's)."""
    if row["key_status"] == "active":
        return None
    grace = row["grace_until"]
    if row["revoked_at"] is None and isinstance(grace, str) and grace > now_iso:
        return None
    ceiling = row["max_seq"]
    return int(ceiling) if isinstance(ceiling, int) else 0


class Keyring:
    """Agent keys by key id, read from the store and cached for ``ttl_s`` seconds.

    A short TTL bounds how long a revocation takes to reach a running worker; an unknown key id
    is looked up again at once (a freshly approved agent is not refused for ``ttl_s``).
    """

    def __init__(
        self, store: Store, *, ttl_s: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, KeyEntry | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, key_id: str) -> KeyEntry | None:
        """The key with this id, or ``None`` if no agent ever registered it."""
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < self._ttl_s and hit[1] is not None:
            return hit[1]
        row = self._store.query_one(
            "SELECT k.agent_id, k.public_key, a.status, a.merchant_id, k.status AS key_status,"
            " k.max_seq, k.grace_until, k.revoked_at FROM agent_keys k"
            " JOIN agents a ON a.agent_id = k.agent_id WHERE k.key_id = ?",
            (key_id,),
        )
        entry = None
        if row is not None:
            raw = bytes(row["public_key"])
            key = Ed25519PublicKey.from_public_bytes(raw)
            limit = _seq_limit(row, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
            entry = KeyEntry(
                row["agent_id"], key, row["status"], key_id_for(key), raw, limit, row["merchant_id"]
            )
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key_id] = (now, entry)
        return entry

    def forget(self) -> None:
        """Drop the cache (after approve/revoke in the same process)."""
        with self._lock:
            self._cache.clear()


class Verified(msgspec.Struct, frozen=True):
    """A message that passed every check before the store."""

    message: Message
    envelope: Envelope
    record: Record


class Refused(msgspec.Struct, frozen=True):
    """A message refused before the store, with the reason operators see."""

    message: Message
    reason: str
    detail: str
    topic_agent: str | None
    seq_hint: int | None


def _peek_seq(payload: bytes, header: SignedHeader | None = None) -> int | None:
    """The ``seq`` field of unverified bytes, if they are readable at all (ack routing only)."""
    try:
        obj = strict_json_loads((header or read_header(payload)).signed_bytes)
    except ProtocolError:
        return None
    seq = obj.get("seq") if isinstance(obj, dict) else None
    return seq if type(seq) is int and 1 <= seq <= 2**53 - 1 else None


def verify_message(
    message: Message, keyring: Keyring, *, max_size: int = MAX_ENVELOPE_BYTES
) -> Verified | Refused:
    """Run steps 1-4 of the theory of operation on one message. Never raises."""
    return verify_messages([message], keyring, max_size=max_size)[0]


#: A message that passed every check before its signature: (message, topic agent, topic kind,
#: header, key).
_Pending = tuple[Message, str, str, SignedHeader, KeyEntry]


def verify_messages(
    messages: Sequence[Message],
    keyring: Keyring,
    *,
    max_size: int = MAX_ENVELOPE_BYTES,
    before_signatures: Callable[[], object] | None = None,
) -> list[Verified | Refused]:
    """Steps 1-4 for a batch, in order; never raises (but for ``before_signatures`` and running
    out of memory).

    Every check before the signature runs per message, then all signatures are verified in
    one :func:`protocol.ed25519.verify_many` call (``cryptography`` releases the GIL inside
    each verify), then the messages whose signature holds are parsed.
    Unauthenticated bytes still never reach the JSON parser.

    :param before_signatures: called once right before that call (if any signature is left to
        check): the moment from which other threads get the GIL during each verify;
        the worker hands its previous batch to the writer thread there
    """
    decided: list[Verified | Refused | None] = []
    pending: list[tuple[int, _Pending]] = []
    for message in messages:
        checked = _before_signature(message, keyring, max_size)
        if isinstance(checked, Refused):
            decided.append(checked)
        else:
            pending.append((len(decided), checked))
            decided.append(None)
    if pending:
        if before_signatures is not None:
            before_signatures()
        valid = verify_many(
            [p[4].raw for _, p in pending],
            [p[3].signature for _, p in pending],
            [DOMAIN + p[3].signed_bytes for _, p in pending],
        )
        for (i, item), ok in zip(pending, valid, strict=True):
            decided[i] = _after_signature(item, bool(ok))
    return decided  # type: ignore[return-value]  # every None was replaced above


def _refused(
    message: Message,
    reason: str,
    detail: str,
    topic_agent: str | None,
    header: SignedHeader | None = None,
) -> Refused:
    return Refused(message, reason, detail, topic_agent, _peek_seq(message.payload, header))


#: Topics already read: topic -> (agent id, kind). A worker sees a few per agent.
_TOPICS: dict[str, tuple[str, str]] = {}


def _read_topic(topic: str) -> tuple[str, str]:
    """``(agent id, "rec" or "hb")`` of an ingest topic.

    :raises ProtocolError: for any other topic
    """
    known = _TOPICS.get(topic) if type(topic) is str else None
    if known is not None:
        return known
    kind = topic.rsplit("/", 1)[-1] if isinstance(topic, str) else ""
    kind = "hb" if kind == "hb" else "rec"
    known = (agent_id_from_topic(topic, kind), kind)
    if len(_TOPICS) >= 100_000:
        _TOPICS.clear()
    _TOPICS[topic] = known
    return known


def _before_signature(message: Message, keyring: Keyring, max_size: int) -> Refused | _Pending:
    """Steps 1-2: topic, size, header, key (owner = topic agent, approved)."""
    try:
        topic_agent, kind = _read_topic(message.topic)
    except ProtocolError as exc:
        return Refused(message, "wrong_topic", exc.message, None, None)
    if len(message.payload) > max_size:
        return Refused(
            message, "too_large", f"{len(message.payload)} > {max_size} bytes", topic_agent, None
        )
    try:
        header = read_header(message.payload)
    except EnvelopeError as exc:
        return _refused(message, exc.reason, exc.message, topic_agent)
    entry = keyring.lookup(header.key_id)
    if entry is None:
        return _refused(
            message, "unknown_key", "no agent registered this key id", topic_agent, header
        )
    if entry.agent_status != "approved":
        return _refused(
            message,
            "revoked" if entry.agent_status == "revoked" else "not_approved",
            f"agent {entry.agent_id} is {entry.agent_status}",
            topic_agent,
            header,
        )
    if entry.agent_id != topic_agent:
        return _refused(
            message,
            "wrong_topic",
            f"key belongs to {entry.agent_id}, topic to {topic_agent}",
            topic_agent,
            header,
        )
    if entry.key_id != header.key_id:  # a stored key whose id is not the one it is filed under
        return _refused(
            message,
            "unknown_key",
            f"payload is signed by {header.key_id}, not this key",
            topic_agent,
            header,
        )
    return message, topic_agent, kind, header, entry


def _after_signature(item: _Pending, signature_ok: bool) -> Verified | Refused:
    """Steps 3 (its outcome) and 4: strict parse, body agent = topic agent, record schema,
    body merchant = the agent's merchant, plausible amounts."""
    message, topic_agent, kind, header, entry = item
    if not signature_ok:
        return _refused(
            message, "bad_signature", "Ed25519 signature does not verify", topic_agent, header
        )
    try:
        envelope = parse_verified(header)
        if entry.seq_limit is not None and envelope.seq > entry.seq_limit:
            return _refused(
                message,
                "retired_key",
                f"key {entry.key_id} is retired and signs no seq above {entry.seq_limit}",
                topic_agent,
                header,
            )
        if envelope.agent_id != topic_agent:
            return _refused(
                message,
                "agent_mismatch",
                f"body agent_id {envelope.agent_id!r} ≠ topic agent",
                topic_agent,
                header,
            )
        if kind == "hb" and envelope.record_type != "heartbeat":
            return _refused(
                message,
                "wrong_topic",
                f"{envelope.record_type} sent on the heartbeat topic",
                topic_agent,
                header,
            )
        record = envelope.record()  # the body schema, checked before we open a transaction
    except EnvelopeError as exc:
        return _refused(message, exc.reason, exc.message, topic_agent, header)
    except ProtocolError as exc:
        return _refused(message, "bad_field", exc.message, topic_agent, header)
    named = getattr(record, "merchant_id", None)
    if named is not None and named != entry.merchant_id:
        return _refused(
            message,
            "wrong_merchant",
            f"the body names another merchant than {entry.merchant_id!r}, the one"
            f" agent {topic_agent} was enrolled for",
            topic_agent,
            header,
        )
    if isinstance(record, BatchSummary | TurnoverReading):
        problem = implausible_amounts(record)
        if problem is not None:
            return _refused(message, "implausible_amount", problem, topic_agent, header)
    return Verified(message, envelope, record)


def _yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def implausible_amounts(record: BatchSummary | TurnoverReading) -> str | None:
    """Why ``record``'s totals cannot be real (which limit, which field), or ``None``.

    The message names the field and the limit, never the value (a hostile amount may be
    chosen to look like a card number).
    """
    buckets = record.buckets
    if len(buckets) > MAX_BUCKETS:
        return f"{len(buckets)} buckets; a batch has at most {MAX_BUCKETS}"
    for i, bucket in enumerate(buckets):
        if max(bucket.sale_amount, bucket.refund_amount, bucket.void_amount) > MAX_BUCKET_AMOUNT:
            name = next(
                n
                for n in ("sale_amount", "refund_amount", "void_amount")
                if getattr(bucket, n) > MAX_BUCKET_AMOUNT
            )
            return (
                f"buckets[{i}].{name} is above the ceiling of"
                f" {_yuan(MAX_BUCKET_AMOUNT)} per bucket amount"
            )
    if sum(b.sale_amount + b.refund_amount + b.void_amount for b in buckets) > MAX_BATCH_AMOUNT:
        return (
            f"sale, refund and void amounts add up to more than {_yuan(MAX_BATCH_AMOUNT)},"
            " the ceiling per batch"
        )
    return None


def _payload_head(refused: Refused) -> bytes | None:
    """The first bytes of a refused payload for the operator, or ``None`` when it was refused
    for holding a card number or its first bytes hold something that looks like one (then
    none of it is kept). The check reads a little past the head, so a number the cut would
    split is still seen whole."""
    if "card number" in refused.detail:
        return None
    head = bytes(refused.message.payload[: PAYLOAD_HEAD_BYTES + 32])
    if contains_pan(head.decode("utf-8", "replace")):
        return None
    return head[:PAYLOAD_HEAD_BYTES]


def _store_refusal(tx_insert: Callable[..., object], refused: Refused) -> None:
    tx_insert(
        "rejected_messages",
        {
            "source": refused.message.source,
            "claimed_agent_id": refused.topic_agent,
            "reason": refused.reason,
            "detail": refused.detail[:1000],
            "payload_size": len(refused.message.payload),
            "payload_head": _payload_head(refused),
        },
    )


#: A record may be stamped this far ahead of the collector's clock before it is flagged.
MAX_AHEAD = timedelta(minutes=5)
#: A heartbeat (sent live, never queued) may lag this much before the agent's clock is flagged.
MAX_HEARTBEAT_BEHIND = timedelta(minutes=10)


def clock_skew(record_type: str, created_at: str, now: datetime) -> tuple[str, int] | None:
    """The flag for an envelope time beyond our limits, as ``(detail, skew_s)``, else None.

    Records may be old (an agent offline for days sends them late), so only times ahead of us
    count for them; heartbeats are sent as they are made, so lagging ones show a slow clock.
    Skew never rejects anything: a batch from an agent with a wrong clock is still a real batch.
    """
    stamped = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    skew = stamped - now
    if skew > MAX_AHEAD:
        return f"agent clock ahead: created_at {created_at} is {skew} ahead of the collector", int(
            skew.total_seconds()
        )
    if record_type == "heartbeat" and -skew > MAX_HEARTBEAT_BEHIND:
        return f"agent clock behind: heartbeat stamped {created_at}, {-skew} before receipt", int(
            skew.total_seconds()
        )
    return None


def ingest_batch(
    store: Store,
    keyring: Keyring,
    messages: Sequence[Message],
    *,
    keys: CollectorKeys | None = None,
    max_size: int = MAX_ENVELOPE_BYTES,
    now: datetime | None = None,
) -> list[tuple[str, Ack]]:
    """Verify and store ``messages`` in one transaction; return the acks to publish afterwards.

    :param now: the collector's clock for the skew check (default: the current UTC time)
    :returns: ``(agent_id, Ack)`` per message that can be answered, in message order
    :raises Exception: only store failures (the transaction is rolled back; publish no ack)
    """
    decided = verify_messages(messages, keyring, max_size=max_size)
    return store_decided(store, decided, keys=keys, now=now)


def store_decided(
    store: Store,
    decided: Sequence[Verified | Refused],
    *,
    keys: CollectorKeys | None = None,
    now: datetime | None = None,
) -> list[tuple[str, Ack]]:
    """Step 5 for messages :func:`verify_message` decided: refusals and records in ONE
    transaction; return the acks to publish once it committed (see :func:`ingest_batch`)."""
    now = now or datetime.now(UTC)
    acks: list[tuple[str, Ack]] = []
    shared = WriteBatch()
    with store.transaction() as tx:
        verified = [item for item in decided if isinstance(item, Verified)]
        results = iter(
            write_envelopes(
                tx,
                [(v.envelope, v.message.payload, v.message.source, v.record) for v in verified],
                keys,
                shared,
            )
        )
        for item in decided:
            if isinstance(item, Refused):
                _store_refusal(tx.insert, item)
                if item.topic_agent and item.seq_hint:
                    acks.append((item.topic_agent, Ack(item.seq_hint, "rejected", item.reason)))
                continue
            status, reason = next(results)
            if status == REJECTED:
                assert reason is not None
                refused = Refused(
                    item.message,
                    reason,
                    STORE_REFUSALS[reason],
                    item.envelope.agent_id,
                    item.envelope.seq,
                )
                _store_refusal(tx.insert, refused)
                acks.append((item.envelope.agent_id, Ack(item.envelope.seq, "rejected", reason)))
                continue
            acks.append((item.envelope.agent_id, Ack(item.envelope.seq, status, reason)))  # type: ignore[arg-type]
            skew = clock_skew(item.envelope.record_type, item.envelope.created_at, now)
            if skew is not None:
                log.warning("clock skew from %s: %s", item.envelope.agent_id, skew[0])
                tx.insert(
                    "ingest_flags",
                    {
                        "agent_id": item.envelope.agent_id,
                        "seq": item.envelope.seq,
                        "kind": "clock_skew",
                        "detail": skew[0],
                        "skew_s": skew[1],
                    },
                )
        shared.flush(tx)
    return acks


def group_acks(acks: Iterable[tuple[str, Ack]], limit: int = 1000) -> list[tuple[str, list[Ack]]]:
    """Group acks per agent in chunks of at most ``limit`` (one ack message each)."""
    per_agent: dict[str, list[Ack]] = {}
    for agent_id, ack in acks:
        per_agent.setdefault(agent_id, []).append(ack)
    return [
        (agent_id, items[i : i + limit])
        for agent_id, items in per_agent.items()
        for i in range(0, len(items), limit)
    ]
