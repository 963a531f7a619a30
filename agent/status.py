"""What ``settleguard agent status`` shows: read from the agent's home, never the network.

It loads neither the MQTT client nor the terminal protocols, so the command answers quickly on
a small terminal-side box.
"""

from __future__ import annotations

from typing import Any

from settleguard.agent.broker_target import BrokerTarget
from settleguard.agent.config import AgentConfig
from settleguard.agent.enroll import broker_target, load_enrollment
from settleguard.agent.home import AgentHome
from settleguard.agent.keys import identity_info
from settleguard.agent.outbox import open_outbox


def _enrollment_status(enrollment: dict[str, Any], last_accepted_at: str | None) -> str:
    """The stored enrollment state, or ``approved`` once the collector accepted a record of
    ours after we enrolled: it accepts records only from approved agents, so a ``pending``
    that ``run`` has not polled away yet is out of date."""
    stored = str(enrollment.get("status", "not_enrolled"))
    enrolled_at = str(enrollment.get("enrolled_at") or "")
    if stored == "pending" and last_accepted_at and last_accepted_at >= enrolled_at[:19]:
        return "approved"
    return stored


def status(home: AgentHome, config: AgentConfig) -> dict[str, Any]:
    """Everything ``agent status --json`` shows. Reads only; never touches the network."""
    identity = identity_info(home) or {}
    enrollment = load_enrollment(home) or {}
    with open_outbox(home, config) as outbox:
        stats = outbox.stats()
        rejected = outbox.rejected()
        names = ("link_state", "last_error", "last_sync_at", "last_accepted_at")
        meta = {k: outbox.get_meta(k) for k in names}
        terminal_id = outbox.get_meta("terminal_id")
    target = broker_target(home, config)
    return {
        "agent_id": identity.get("agent_id"),
        "key": {
            "key_id": identity.get("key_id"),
            "created_at": identity.get("key_created_at", identity.get("created_at")),
            "previous_keys": identity.get("previous_keys", []),
            "rotation_pending": bool(identity.get("pending_rotation")),
            "enrollment": _enrollment_status(enrollment, meta["last_accepted_at"]),
            "collector": enrollment.get("collector") or config.collector.url or None,
            "merchant_id": enrollment.get("merchant_id"),
        },
        "outbox": {
            "pending": stats.pending,
            "oldest_age_s": stats.oldest_pending_age_s,
            "acked": stats.acked,
            "rejected": stats.rejected,
            "next_seq": stats.next_seq,
            "used_bytes": stats.used_bytes,
            "disk_budget_bytes": int(config.outbox.disk_budget_mb * 1024 * 1024),
            "disk_alarm": stats.disk_alarm,
        },
        "rejected": rejected,
        "last_sync_at": meta["last_sync_at"],
        "broker": {
            "url": None if target is None else _redacted_url(target),
            "username": None if target is None else target.username,
            "protocol": None if target is None else target.protocol,
            "link_state": meta["link_state"] or "not_running",
            "last_error": meta["last_error"],
        },
        "terminal": {
            "port": config.terminal.port or None,
            "protocol": config.terminal.protocol,
            "terminal_id": terminal_id,
        },
    }


def _redacted_url(target: BrokerTarget) -> str:
    return f"{'mqtts' if target.tls else 'mqtt'}://{target.host}:{target.port}"
