"""Dashboard users: add, list, disable, authenticate (the library behind ``collector users``).

Passwords are hashed with Argon2id (argon2-cffi's defaults: memory-hard, salted, the
parameters stored in the hash so they can be raised later; :func:`verify` re-hashes on login
when they change). Roles are ordered: a ``viewer`` reads, an ``operator`` also acts on gaps,
agents and imports, an ``admin`` also manages users and tokens.
"""

from __future__ import annotations

import json
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from settleguard.collector.store import Store

ROLES = ("viewer", "operator", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
_HASHER = PasswordHasher()
# Compared against when the user does not exist, so a miss costs as much as a hit and the
# response time does not tell an attacker which usernames exist.
_DUMMY_HASH = _HASHER.hash("settleguard-no-such-user")
MIN_PASSWORD_LENGTH = 10


class UserError(ValueError):
    """A user operation cannot be done (unknown role, duplicate name, weak password)."""


def role_at_least(role: str, needed: str) -> bool:
    """Whether ``role`` includes the rights of ``needed``.

    :raises UserError: unknown role names
    """
    if role not in _RANK or needed not in _RANK:
        raise UserError(f"unknown role {role!r} or {needed!r}; use one of {', '.join(ROLES)}")
    return _RANK[role] >= _RANK[needed]


def hash_password(password: str) -> str:
    """Argon2id hash of ``password`` (a self-describing string)."""
    return _HASHER.hash(password)


def add_user(store: Store, username: str, role: str, password: str, *, actor: str) -> int:
    """Create a user.

    :param username: 1–64 printable characters, no spaces, not starting with ``token:``
    :param role: one of :data:`ROLES`
    :param password: at least :data:`MIN_PASSWORD_LENGTH` characters
    :param actor: who adds it (audit log)
    :raises UserError: bad name, role or password, or the name is taken
    """
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if not (0 < len(username) <= 64) or not username.isprintable() or " " in username:
        raise UserError("username must be 1-64 printable characters without spaces")
    if username.startswith("token:"):
        raise UserError("usernames starting with 'token:' are reserved for API tokens")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    with store.transaction() as tx:
        if tx.query_one("SELECT id FROM users WHERE username = ?", (username,)):
            raise UserError(f"user {username!r} exists already")
        user_id = tx.insert(
            "users", {"username": username, "password_hash": hash_password(password), "role": role}
        )
        detail = {"before": None, "after": {"username": username, "role": role}}
        tx.insert(
            "audit_log",
            {
                "actor": actor,
                "action": "user.add",
                "target": username,
                "detail": json.dumps(detail),
            },
        )
    return int(user_id)


def list_users(store: Store) -> list[dict[str, Any]]:
    """Every user and API token (name, role, disabled, created), without hashes."""
    return store.query(
        "SELECT id, username, role, disabled, created_at FROM users ORDER BY username"
    )


def disable_user(store: Store, username: str, *, actor: str) -> None:
    """Disable a user or token: it can no longer log in or call the API.

    :raises UserError: no such user
    """
    with store.transaction() as tx:
        row = tx.query_one("SELECT disabled FROM users WHERE username = ?", (username,))
        if row is None:
            raise UserError(f"no user {username!r}")
        tx.execute("UPDATE users SET disabled = 1 WHERE username = ?", (username,))
        detail = {"before": {"disabled": bool(row["disabled"])}, "after": {"disabled": True}}
        tx.insert(
            "audit_log",
            {
                "actor": actor,
                "action": "user.disable",
                "target": username,
                "detail": json.dumps(detail),
            },
        )


def authenticate(store: Store, username: str, password: str) -> dict[str, Any] | None:
    """The enabled user named ``username`` if ``password`` is theirs, else ``None``.

    Takes the same time whether or not the user exists.
    """
    row = store.query_one(
        "SELECT id, username, role, disabled, password_hash FROM users WHERE username = ?",
        (username,),
    )
    if row is None or username.startswith("token:"):
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(row["password_hash"], password) or row["disabled"]:
        return None
    if _HASHER.check_needs_rehash(row["password_hash"]):
        with store.transaction() as tx:
            tx.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?",
                (hash_password(password), row["id"]),
            )
    return {"id": row["id"], "username": row["username"], "role": row["role"]}


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
