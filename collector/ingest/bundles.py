"""Import of an agent's offline bundle (``settleguard agent export``) through the ingest path.

A bundle is a sequence of signed payloads (:func:`protocol.envelope.decode_bundle`); it has no
topic, so each payload is checked as if it had arrived on its own agent's ``rec`` topic: the
header's key must belong to an approved agent and the envelope's ``agent_id`` must be that agent
(the key owner). Everything else -- verification, idempotency, conflicts, rejected messages --
is :func:`collector.ingest.verify.ingest_batch`, so importing a bundle twice, or a bundle whose records
also arrived over MQTT, changes nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from settleguard.collector.enrollment.keys import CollectorKeys
from settleguard.collector.ingest.verify import IncomingMessage, Keyring, ingest_batch
from settleguard.collector.store import Store
from settleguard.protocol.envelope import EnvelopeError, decode_bundle, read_header
from settleguard.protocol.topics import rec_topic

CHUNK = 500


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Counts per ack status (``accepted``, ``duplicate``, ``rejected``, ``conflict``)."""

    total: int
    by_status: dict[str, int]


def _topic_for(payload: bytes, keyring: Keyring) -> str:
    """The ``rec`` topic of the key owner (``sg/v1/a/?/rec`` if the key is unknown)."""
    try:
        entry = keyring.lookup(read_header(payload).key_id)
    except EnvelopeError:
        entry = None
    return rec_topic(entry.agent_id) if entry is not None else "sg/v1/a/unknown-key/rec"


def import_bundle(
    store: Store, data: bytes, *, source: str, keys: CollectorKeys | None = None
) -> ImportResult:
    """Verify and store every payload of a bundle.

    :param data: the bundle file's bytes
    :param source: recorded with each row (``bundle:<file name>``)
    :raises protocol.envelope.BundleError: when the file itself is not a bundle (with offset)
    """
    payloads = decode_bundle(data)
    keyring = Keyring(store)
    counts: Counter[str] = Counter()
    for start in range(0, len(payloads), CHUNK):
        chunk = payloads[start : start + CHUNK]
        messages = [IncomingMessage(_topic_for(p, keyring), p, source) for p in chunk]
        acks = ingest_batch(store, keyring, messages, keys=keys)
        counts.update(ack.status for _, ack in acks)
        counts["rejected"] += len(chunk) - len(acks)  # refused without a readable seq
    return ImportResult(len(payloads), dict(counts))


def import_bundle_file(store: Store, path: Path, keys: CollectorKeys | None = None) -> ImportResult:
    """:func:`import_bundle` on a file."""
    return import_bundle(store, path.read_bytes(), source=f"bundle:{path.name}", keys=keys)
