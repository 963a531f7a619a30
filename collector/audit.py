"""The audit log: one line per operator action, written inside the action's transaction."""

from __future__ import annotations

import json
from typing import Any

from settleguard.collector.store import Tx


def audit(
    tx: Tx, actor: str, action: str, target: str, before: Any, after: Any, **extra: Any
) -> None:
    """Append one audit line inside ``tx``: who, what, the target, ``{"before", "after", …}``."""
    detail = {"before": before, "after": after, **extra}
    tx.insert(
        "audit_log",
        {
            "actor": actor,
            "action": action,
            "target": target,
            "detail": json.dumps(detail, ensure_ascii=False, default=str),
        },
    )
