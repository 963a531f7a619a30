"""Sign and store a record: the one call the terminal commands make.

:func:`record` turns a :mod:`protocol.records` record into a signed envelope and commits it
to the outbox in one transaction (:meth:`agent.outbox.Outbox.append`) before returning its
``seq``. Only then may a command tell the technician "stored".

Times: the envelope's ``created_at`` is the agent's UTC clock; the record body keeps the
terminal's own time (``terminal_local_time``) where the terminal reports one, and it is also
stored in the outbox row. Neither clock decides ordering: ``seq`` does.

Heartbeats (:func:`heartbeat_record`, :func:`seal_heartbeat`) are not outbox records: they are
signed, published on the ``hb`` topic and never acked. Their envelope ``seq`` is the highest
record ``seq`` committed so far (1 before the first record), which lets the collector notice
records it has not seen yet.
"""

from __future__ import annotations

from datetime import UTC, datetime

from settleguard.agent.config import AgentConfig
from settleguard.agent.home import AgentHome
from settleguard.agent.keys import AgentKey, load_or_create_key
from settleguard.agent.outbox import Outbox, Sealed, open_outbox
from settleguard.protocol.envelope import read_header, seal_envelope
from settleguard.protocol.records import Heartbeat, Record, sanitize_free_text

from settleguard import __version__

AGENT_VERSION = __version__


def utc_ms() -> str:
    """The agent's UTC clock as the envelope wants it: ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append_record(outbox: Outbox, key: AgentKey, record: Record) -> int:
    """Seal ``record`` with the next ``seq`` and commit it; return the ``seq``.

    :raises agent.errors.StorageError: disk full, or budget reached for a non-batch record
    """
    created_at = utc_ms()
    body = record.to_body()

    def seal(seq: int) -> Sealed:
        payload = seal_envelope(
            key.private_key,
            record_type=record.RECORD_TYPE,
            agent_id=key.agent_id,
            seq=seq,
            created_at=created_at,
            body=body,
        )
        return Sealed(payload, read_header(payload).signature)

    return outbox.append(
        seal,
        record_type=record.RECORD_TYPE,
        created_at=created_at,
        terminal_time=getattr(record, "terminal_local_time", None),
        meta=_terminal_meta(record),
    )


def _terminal_meta(record: Record) -> dict[str, str | None]:
    """Remember the last terminal id we recorded for (shown by ``status``, sent in heartbeats)."""
    terminal_id = getattr(record, "terminal_id", None) or getattr(record, "new_terminal_id", None)
    return {"terminal_id": terminal_id} if terminal_id else {}


def record(home: AgentHome, record: Record, *, config: AgentConfig | None = None) -> int:
    """Sign ``record`` and commit it to the outbox of ``home``; return its ``seq``.

    Creates the key (and the agent id) on first use, so this works before enrollment.

    :param home: the agent home (:func:`agent.home.agent_home`)
    :param record: any :mod:`protocol.records` record
    :param config: for the disk budget; default settings if ``None``
    :raises agent.errors.StorageError: disk full, key not writable, budget reached (non-batch)
    """
    key = load_or_create_key(home)
    with open_outbox(home, config) as outbox:
        return append_record(outbox, key, record)


def heartbeat_record(
    outbox: Outbox, *, link_state: str, terminal_id: str | None, last_error: str | None = None
) -> Heartbeat:
    """Build the heartbeat from the outbox's current numbers.

    :param link_state: e.g. ``connected``, ``offline``, ``connecting``
    """
    stats = outbox.stats()
    return Heartbeat(
        outbox_pending=stats.pending,
        oldest_unacked_age_s=stats.oldest_pending_age_s,
        link_state=link_state,
        agent_version=AGENT_VERSION,
        terminal_id=terminal_id,
        agent_time=utc_ms(),
        disk_alarm=stats.disk_alarm is not None,
        # Free text in a record refuses control characters and card-number look-alikes.
        last_error=None if last_error is None else sanitize_free_text(last_error, 500),
    )


def seal_heartbeat(key: AgentKey, heartbeat: Heartbeat, high_water_seq: int) -> bytes:
    """Sign a heartbeat for the ``hb`` topic (see the module docstring for its ``seq``)."""
    return seal_envelope(
        key.private_key,
        record_type=Heartbeat.RECORD_TYPE,
        agent_id=key.agent_id,
        seq=max(1, high_water_seq),
        created_at=utc_ms(),
        body=heartbeat.to_body(),
    )
