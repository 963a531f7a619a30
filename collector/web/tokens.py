"""API tokens (``settleguard collector tokens create --role …``), stored hashed.

Theory of operation: a token is ``sgt_<id>_<secret>`` with 8 random hex characters of id and
32 random bytes of secret. It lives in the ``users`` table as the user ``token:<id>`` with
its role, so disabling, listing and auditing work the same as for people. The stored hash is
SHA-256 of the whole token: the secret has 256 bits of entropy, so a slow, memory-hard hash
(which people's passwords need) adds nothing here and would slow every API request.
The clear token is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from settleguard.collector.store import Store
from settleguard.collector.web.users import ROLES, UserError

PREFIX = "sgt_"
_HASH_TAG = "sha256$"


def _digest(token: str) -> str:
    return _HASH_TAG + hashlib.sha256(token.encode()).hexdigest()


def create_token(store: Store, role: str, *, actor: str, label: str = "") -> str:
    """Create an API token with ``role`` and return it (the only time it is readable).

    :param role: one of :data:`collector.web.users.ROLES`
    :param actor: who creates it (audit log)
    :param label: a note kept in the audit log (what the token is for)
    :raises UserError: unknown role
    """
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    token_id = secrets.token_hex(4)
    token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    with store.transaction() as tx:
        tx.insert(
            "users",
            {"username": f"token:{token_id}", "password_hash": _digest(token), "role": role},
        )
        detail = {"before": None, "after": {"role": role, "label": label}}
        tx.insert(
            "audit_log",
            {
                "actor": actor,
                "action": "token.create",
                "target": f"token:{token_id}",
                "detail": json.dumps(detail),
            },
        )
    return token


def authenticate_token(store: Store, token: str) -> dict[str, Any] | None:
    """The enabled token identity for ``token``, else ``None`` (constant-time compare)."""
    parts = token.removeprefix(PREFIX).split("_", 1)
    if not token.startswith(PREFIX) or len(parts) != 2 or len(parts[0]) != 8:
        return None
    row = store.query_one(
        "SELECT id, username, role, disabled, password_hash FROM users WHERE username = ?",
        (f"token:{parts[0]}",),
    )
    if row is None or row["disabled"]:
        return None
    if not hmac.compare_digest(row["password_hash"], _digest(token)):
        return None
    return {"id": row["id"], "username": row["username"], "role": row["role"]}
