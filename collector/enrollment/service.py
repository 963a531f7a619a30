"""Agent enrollment, approval, revocation and key rotation (docs/architecture.md §4 "Keys", §6).

Theory of operation: an operator issues a one-time token for a merchant (``agents token``); the
technician's ``agent enroll`` posts it with the agent's Ed25519 public key. The token is burned
in the same transaction that creates the agent as ``pending`` with a fresh broker password (only
its ``$7$`` hash is kept). An operator then approves the agent: only approved agents are written
to the broker's password file, so a pending or revoked agent cannot even connect, and the ingest
worker rejects anything signed by a key whose agent is not approved. A rotation is accepted only
when the previous key signs ``ROTATION_DOMAIN + agent_id + "\\n" + new_public_key``; the old key is
kept as ``retired`` so records it signed before the rotation (still in the agent's outbox) verify.

A retired key is bounded, so rotating away from a leaked key stops the leak: it verifies records
up to ``max_seq`` (the agent's last seq the collector had seen at the rotation) and, during a
grace period (``RETIRED_KEY_GRACE_S``, one hour by default), also later seqs, because the
agent's outbox may still hold records it signed before rotating that have not arrived yet.
:func:`revoke_retired_keys` (``collector agents revoke-key``, the dashboard and the API) ends
the grace period at once. docs/security.md, "Fixes: keys, tokens and secrets", says why.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from settleguard.collector.enrollment import broker
from settleguard.collector.store import Row, Store
from settleguard.protocol.ed25519 import public_key_problem
from settleguard.protocol.enroll_token import bind_token
from settleguard.protocol.envelope import AGENT_ID_RE, key_id_for

ROTATION_DOMAIN = b"settleguard/v1 rotate\n"
RESERVED_AGENT_IDS = frozenset({"collector", "admin", "root", "unknown-key"})
#: How long after a rotation a retired key still verifies records beyond its ``max_seq``.
DEFAULT_RETIRED_KEY_GRACE_S = 3600


class EnrollmentError(Exception):
    """An enrollment step was refused; the message says why (shown to technician/operator)."""


@dataclass(frozen=True, slots=True)
class Enrollment:
    """What an agent receives once when it enrolls."""

    agent_id: str
    merchant_id: str
    key_id: str
    status: str
    broker_username: str
    broker_password: str


def utc_now() -> datetime:
    """Current time, timezone-aware UTC (the one clock this module reads)."""
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_id_of(public_key: bytes) -> str:
    """The envelope key id of a raw Ed25519 public key (:func:`protocol.envelope.key_id_for`)."""
    return key_id_for(public_key)


def issue_token(
    store: Store,
    merchant_id: str,
    *,
    ttl_s: int,
    sealing_public: bytes | None = None,
    now: datetime | None = None,
) -> str:
    """Create a one-time enrollment token for ``merchant_id``; only its hash is stored.

    :param ttl_s: seconds until the token expires
    :param sealing_public: the collector's X25519 sealing public key; its fingerprint goes into
        the token (:mod:`protocol.enroll_token`) and ``agent enroll`` refuses a collector that
        answers with another key, or a token without one. ``None`` only for callers that
        enroll in-process, without the agent.
    """
    if not merchant_id or len(merchant_id) > 64:
        raise EnrollmentError("merchant id must be 1-64 characters")
    now = now or utc_now()
    token = secrets.token_urlsafe(24)
    if sealing_public is not None:
        token = bind_token(token, sealing_public)
    with store.transaction() as tx:
        tx.insert(
            "merchants", {"merchant_id": merchant_id}, ignore_conflict=True, returning="merchant_id"
        )
        tx.execute(
            "INSERT INTO enrollment_tokens (token_hash, merchant_id, expires_at) VALUES (?, ?, ?)",
            (_token_hash(token), merchant_id, _iso(now + timedelta(seconds=ttl_s))),
        )
    return token


def _load_public_key(public_key: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as exc:
        raise EnrollmentError("public key must be a raw 32-byte Ed25519 key") from exc
    problem = public_key_problem(public_key)
    if problem is not None:
        raise EnrollmentError(f"public key refused: {problem}")


def enroll(
    store: Store,
    *,
    token: str,
    public_key: bytes,
    agent_id: str | None = None,
    collector_user: str = "collector",
    now: datetime | None = None,
) -> Enrollment:
    """Register an agent's public key with a one-time token; the agent starts ``pending``.

    :param agent_id: the id the agent already signs with (it may have queued records before
        enrolling); a random one is assigned when ``None``
    :param collector_user: the collector's broker user name (``MQTT_USERNAME``), reserved: an
        agent of that name would share the collector's broker login and rights
    :raises EnrollmentError: bad key or id, or a token that is unknown, used or expired
    """
    _load_public_key(public_key)
    agent_id = agent_id or f"ag-{secrets.token_hex(8)}"
    if not AGENT_ID_RE.match(agent_id):
        raise EnrollmentError(f"agent id {agent_id!r} is not allowed ([a-z0-9_-], 3-64)")
    if agent_id in RESERVED_AGENT_IDS or agent_id == collector_user:
        raise EnrollmentError(f"agent id {agent_id!r} is not allowed (a reserved name)")
    key_id = key_id_of(public_key)
    password = broker.new_password()
    now_iso = _iso(now or utc_now())
    with store.transaction() as tx:
        # Burn the token in the statement that reads it: of two enrollments racing for one
        # token, the second UPDATE waits for the first to commit, then finds used_at set and
        # changes nothing (PostgreSQL re-checks the WHERE on the row it waited for; SQLite
        # runs one write transaction at a time). A refusal below rolls the burn back.
        token_row = tx.query_one(
            "UPDATE enrollment_tokens SET used_at = ?, agent_id = ? WHERE token_hash = ?"
            " AND used_at IS NULL AND expires_at > ? RETURNING merchant_id",
            (now_iso, agent_id, _token_hash(token), now_iso),
        )
        if token_row is None:
            raise EnrollmentError("enrollment token unknown, already used or expired")
        if tx.query_one("SELECT 1 AS x FROM agents WHERE agent_id = ?", (agent_id,)):
            raise EnrollmentError(f"agent id {agent_id!r} is already enrolled")
        if tx.query_one("SELECT 1 AS x FROM agent_keys WHERE key_id = ?", (key_id,)):
            raise EnrollmentError("this public key is already enrolled")
        merchant_id = token_row["merchant_id"]
        tx.execute(
            "INSERT INTO agents (agent_id, merchant_id, status, key_id, public_key,"
            " broker_password, enrolled_at) VALUES (?, ?, 'pending', ?, ?, ?, ?)",
            (agent_id, merchant_id, key_id, public_key, broker.hash_password(password), now_iso),
        )
        tx.execute(
            "INSERT INTO agent_keys (key_id, agent_id, public_key, created_at) VALUES (?, ?, ?, ?)",
            (key_id, agent_id, public_key, now_iso),
        )
        tx.insert(
            "audit_log",
            {"actor": agent_id, "action": "settleguard.agent.enroll", "target": agent_id},
        )
    return Enrollment(agent_id, merchant_id, key_id, "pending", agent_id, password)


_STATUS_FIELDS = "SELECT status, approved_at, revoked_at FROM agents WHERE agent_id = ?"


def _set_status(store: Store, agent_id: str, status: str, column: str, actor: str) -> Row:
    """Change the status and write its one audit line (before and after) in one transaction;
    the CLI and the dashboard both come here, so each change is audited exactly once."""
    with store.transaction() as tx:
        before = tx.query_one(_STATUS_FIELDS, (agent_id,))
        if before is None:
            raise EnrollmentError(f"no agent {agent_id!r}")
        tx.execute(
            f"UPDATE agents SET status = ?, {column} = ? WHERE agent_id = ?",  # noqa: S608
            (status, _iso(utc_now()), agent_id),
        )
        after = tx.query_one(_STATUS_FIELDS, (agent_id,))
        tx.insert(
            "audit_log",
            {
                "actor": actor,
                "action": f"agent.{status}",
                "target": f"agent:{agent_id}",
                "detail": json.dumps({"before": before, "after": after}, default=str),
            },
        )
        row = tx.query_one("SELECT * FROM agents WHERE agent_id = ?", (agent_id,))
    assert row is not None
    return row


def approve(store: Store, agent_id: str, *, actor: str) -> Row:
    """Approve an enrolled agent (it may now connect and its records are accepted)."""
    return _set_status(store, agent_id, "approved", "approved_at", actor)


def revoke(store: Store, agent_id: str, *, actor: str) -> Row:
    """Revoke an agent: its broker login goes and every later record is rejected."""
    return _set_status(store, agent_id, "revoked", "revoked_at", actor)


def list_agents(store: Store) -> list[Row]:
    """Every agent with its status, key id, last seen and last seq."""
    return store.query(
        "SELECT agent_id, merchant_id, status, key_id, enrolled_at, approved_at, revoked_at,"
        " last_seen, last_seq FROM agents ORDER BY agent_id"
    )


def rotation_message(agent_id: str, new_public_key: bytes) -> bytes:
    """The bytes the previous key signs to announce ``new_public_key``."""
    return ROTATION_DOMAIN + agent_id.encode() + b"\n" + new_public_key


def rotate_key(
    store: Store,
    agent_id: str,
    new_public_key: bytes,
    signature: bytes,
    *,
    grace_s: int = DEFAULT_RETIRED_KEY_GRACE_S,
) -> str:
    """Replace an agent's key when the current key signed the announcement.

    The old key is retired with the agent's last seen seq as its ceiling and a grace period
    of ``grace_s`` seconds (see the module's theory of operation).

    :returns: the new key id
    :raises EnrollmentError: unknown/revoked agent, bad new key or a signature that fails
    """
    _load_public_key(new_public_key)
    new_key_id = key_id_of(new_public_key)
    with store.transaction() as tx:
        agent = tx.query_one("SELECT * FROM agents WHERE agent_id = ?", (agent_id,))
        if agent is None or agent["status"] == "revoked":
            raise EnrollmentError(f"agent {agent_id!r} is unknown or revoked")
        current = Ed25519PublicKey.from_public_bytes(bytes(agent["public_key"]))
        try:
            current.verify(signature, rotation_message(agent_id, new_public_key))
        except InvalidSignature as exc:
            raise EnrollmentError("rotation not signed by the agent's current key") from exc
        if tx.query_one("SELECT 1 AS x FROM agent_keys WHERE key_id = ?", (new_key_id,)):
            raise EnrollmentError("this public key is already enrolled")
        now = utc_now()
        now_iso = _iso(now)
        tx.execute(
            "UPDATE agent_keys SET status = 'retired', retired_at = ?, max_seq = ?,"
            " grace_until = ? WHERE agent_id = ? AND status = 'active'",
            (now_iso, agent["last_seq"] or 0, _iso(now + timedelta(seconds=grace_s)), agent_id),
        )
        tx.execute(
            "INSERT INTO agent_keys (key_id, agent_id, public_key, created_at, rotation_signature)"
            " VALUES (?, ?, ?, ?, ?)",
            (new_key_id, agent_id, new_public_key, now_iso, signature),
        )
        tx.execute(
            "UPDATE agents SET key_id = ?, public_key = ? WHERE agent_id = ?",
            (new_key_id, new_public_key, agent_id),
        )
        tx.insert("audit_log", {"actor": agent_id, "action": "agent.rotate", "target": new_key_id})
    return new_key_id


@dataclass(frozen=True, slots=True)
class BrokerUpdate:
    """What an approval or revocation did to the broker, for the operator to read.

    :ivar written: the password file was rewritten
    :ivar reloaded: the broker was sent SIGHUP
    :ivar missing: what was not done and how to finish it (``None`` when all was done)
    """

    password_file: Path
    agents: int
    written: bool
    reloaded: bool
    missing: str | None = None


def revoke_retired_keys(store: Store, agent_id: str, *, actor: str) -> list[str]:
    """End the grace period of the agent's retired keys now: each then verifies only records
    up to its ``max_seq``. For a leaked key: rotate on the agent, then call this.

    :returns: the key ids revoked now (empty when every retired key was revoked already)
    :raises EnrollmentError: unknown agent
    """
    now_iso = _iso(utc_now())
    with store.transaction() as tx:
        if tx.query_one("SELECT 1 AS x FROM agents WHERE agent_id = ?", (agent_id,)) is None:
            raise EnrollmentError(f"no agent {agent_id!r}")
        rows = tx.query(
            "UPDATE agent_keys SET revoked_at = ? WHERE agent_id = ? AND status = 'retired'"
            " AND revoked_at IS NULL RETURNING key_id, max_seq",
            (now_iso, agent_id),
        )
        revoked = sorted(r["key_id"] for r in rows)
        detail = {
            "before": [
                {"key_id": r["key_id"], "max_seq": r["max_seq"], "revoked_at": None} for r in rows
            ],
            "after": [
                {"key_id": r["key_id"], "max_seq": r["max_seq"], "revoked_at": now_iso}
                for r in rows
            ],
        }
        tx.insert(
            "audit_log",
            {
                "actor": actor,
                "action": "agent.revoke_keys",
                "target": f"agent:{agent_id}",
                "detail": json.dumps(detail),
            },
        )
    return revoked


def sync_broker_passwords(
    store: Store, password_file: Path, *, collector_user: str, pid_file: Path | None = None
) -> BrokerUpdate:
    """Rewrite the broker password file from the approved agents and reload the broker.

    The collector's line is kept as it is in the existing file and written last; an approved
    agent whose id is the collector's user name is left out. The file keeps its owner, group
    and mode, so a broker that dropped privileges can read it again. When ``pid_file`` is
    ``None`` the ``pid_file`` named by ``mosquitto.conf`` beside the password file is used.

    :returns: what was done, and what was not with the step that finishes it
    """
    collector_hash = None
    if password_file.exists():
        for line in password_file.read_text().splitlines():
            user, _, hashed = line.partition(":")
            if user == collector_user:
                collector_hash = hashed
    if collector_hash is None:
        return BrokerUpdate(
            password_file,
            0,
            written=False,
            reloaded=False,
            missing=(
                f"no broker password file with the collector's user {collector_user!r} at "
                f"{password_file}: run `settleguard collector broker-config --out DIR` and set "
                "SETTLEGUARD_BROKER_DIR to that DIR, then approve or revoke again"
            ),
        )
    rows = store.query(
        "SELECT agent_id, broker_password FROM agents WHERE status = 'approved'"
        " AND broker_password IS NOT NULL"
    )
    agents = {r["agent_id"]: r["broker_password"] for r in rows if r["agent_id"] != collector_user}
    broker.write_password_file(password_file, (collector_user, collector_hash), agents)
    pid_file = pid_file or broker.configured_pid_file(password_file.with_name("mosquitto.conf"))
    if broker.reload_broker(pid_file=pid_file):
        return BrokerUpdate(password_file, len(agents), written=True, reloaded=True)
    where = f"no running broker in pid file {pid_file}" if pid_file else "no pid file known"
    return BrokerUpdate(
        password_file,
        len(agents),
        written=True,
        reloaded=False,
        missing=(
            f"the broker was not reloaded ({where}): reload it (`systemctl reload mosquitto` or "
            "`kill -HUP <broker pid>`), or set SETTLEGUARD_BROKER_PID_FILE"
        ),
    )


def update_broker(store: Store, config: Mapping[str, Any]) -> BrokerUpdate:
    """:func:`sync_broker_passwords` with the collector's settings (``BROKER_DIR``,
    ``BROKER_PID_FILE``, ``MQTT_USERNAME``): what approve and revoke call, from the CLI and
    the dashboard alike."""
    pid = config.get("BROKER_PID_FILE")
    return sync_broker_passwords(
        store,
        Path(config["BROKER_DIR"]) / "passwd",
        collector_user=config["MQTT_USERNAME"],
        pid_file=Path(pid) if pid else None,
    )
