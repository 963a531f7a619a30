"""``agent export``: unacked records as one bundle file, for sites without network for days.

The bundle is :func:`protocol.envelope.encode_bundle` over the outbox's pending payloads in
``seq`` order: each payload is the exact signed envelope the agent would publish, so the
collector verifies every record exactly as if it had come over MQTT (format in
``docs/agent.md`` and ``docs/envelope.md``). Exporting does not ack anything: the rows stay
pending and are still sent when the network returns; the collector's idempotent insert by
``(agent_id, seq)`` answers ``duplicate`` for what it already imported from the bundle.

The file is written to a temporary name, fsynced and renamed, so a half-written bundle never
appears under the requested name.
"""

from __future__ import annotations

import os
from pathlib import Path

from settleguard.agent.config import AgentConfig
from settleguard.agent.errors import StorageError
from settleguard.agent.home import AgentHome
from settleguard.agent.recorder import open_outbox
from settleguard.protocol.envelope import encode_bundle


def export_bundle(home: AgentHome, out: Path, *, config: AgentConfig | None = None) -> int:
    """Write every pending record of ``home`` to ``out``; return how many.

    :raises agent.errors.StorageError: if the file cannot be written (disk full, permissions)
    """
    payloads: list[bytes] = []
    with open_outbox(home, config) as outbox:
        after = 0
        while chunk := outbox.pending(after_seq=after, limit=1000):
            payloads.extend(payload for _, payload in chunk)
            after = chunk[-1][0]
    data = encode_bundle(payloads)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write bundle {out}: {exc.strerror or exc}") from exc
    return len(payloads)
