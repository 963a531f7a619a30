"""The agent's Ed25519 signing key and its fixed identity.

Theory of operation
-------------------
docs/architecture.md §3.3 and §4 ("Keys"). The private key is generated **on the device** the first time
anything needs it (``read``/``close`` on a fresh box work before enrollment) and written as
PKCS#8 PEM with mode 0600 under ``keys/``. At the same moment the agent id is fixed:
``"a-" + key_id`` of that first key (e.g. ``a-k1f0c…``), stored in ``identity.json``.

Why fixed and not assigned by the collector: the envelope signature covers ``agent_id``, and
records queued before enrollment must still be deliverable afterwards without re-signing.
So enrollment *registers* this id with the collector instead of receiving a new one. The id
never changes, not even on key rotation (the topic, MQTT username and outbox stay valid).

Rotation (:func:`rotate_key`): a new key is generated and an announcement — the new public key
and key id, signed by the **old** key under its own domain prefix — is stored until the
collector has taken it (:mod:`agent.enroll`). Old private keys are kept so that the status page
can show which key signed what; records already in the outbox keep their old signature, which
the collector accepts under the old key id for a grace period after the rotation and, after it
or once an operator revokes the old key, only up to the last seq it had seen at the rotation.

A file lock (``.identity.lock``) makes first-use creation safe when the daemon and a technician
command start at the same moment.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from settleguard.agent.errors import StorageError
from settleguard.agent.home import AgentHome, write_private_file
from settleguard.protocol.ed25519 import key_id_for

ROTATION_DOMAIN = b"settleguard/v1 rotate\n"


@dataclass(frozen=True, slots=True)
class AgentKey:
    """The current signing key and the agent id it belongs to."""

    agent_id: str
    key_id: str
    private_key: Ed25519PrivateKey
    created_at: str

    @property
    def public_raw(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_b64(self) -> str:
        """The raw public key in standard base64, as the enrollment API expects it."""
        return base64.b64encode(self.public_raw).decode("ascii")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@contextmanager
def _locked(home: AgentHome) -> Iterator[None]:
    fd = os.open(home.root / ".identity.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_identity(home: AgentHome) -> dict[str, Any] | None:
    try:
        return dict(json.loads(home.identity_path.read_text("utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StorageError(f"{home.identity_path}: unreadable identity file ({exc})") from exc


def _write_identity(home: AgentHome, identity: dict[str, Any]) -> None:
    text = json.dumps(identity, indent=2, sort_keys=True) + "\n"
    write_private_file(home.identity_path, text.encode("utf-8"))


def _key_path(home: AgentHome, key_id: str) -> os.PathLike[str]:
    return home.keys_dir / f"{key_id}.pem"


def _new_key(home: AgentHome) -> tuple[Ed25519PrivateKey, str]:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_id = key_id_for(private.public_key())
    try:
        write_private_file(home.keys_dir / f"{key_id}.pem", pem)
    except OSError as exc:
        raise StorageError(f"cannot write the agent key under {home.keys_dir}: {exc}") from exc
    return private, key_id


def _load_private(home: AgentHome, key_id: str) -> Ed25519PrivateKey:
    path = _key_path(home, key_id)
    try:
        with open(path, "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
    except (OSError, ValueError) as exc:
        raise StorageError(f"{path}: cannot load the agent key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise StorageError(f"{path}: not an Ed25519 key")
    return key


def load_or_create_key(home: AgentHome) -> AgentKey:
    """Return the current key, generating key and agent id on first use.

    :raises agent.errors.StorageError: if the key cannot be written or read back
    """
    identity = _read_identity(home)
    if identity is None:
        with _locked(home):
            identity = _read_identity(home)
            if identity is None:
                private, key_id = _new_key(home)
                identity = {
                    "agent_id": f"a-{key_id}",
                    "key_id": key_id,
                    "created_at": _now(),
                    "previous_keys": [],
                    "pending_rotation": None,
                }
                _write_identity(home, identity)
                return AgentKey(identity["agent_id"], key_id, private, identity["created_at"])
    key_id = str(identity["key_id"])
    return AgentKey(
        str(identity["agent_id"]),
        key_id,
        _load_private(home, key_id),
        str(identity.get("key_created_at", identity["created_at"])),
    )


def identity_info(home: AgentHome) -> dict[str, Any] | None:
    """The identity file as stored (agent id, key id, previous keys, pending rotation)."""
    return _read_identity(home)


def rotate_key(home: AgentHome) -> dict[str, Any]:
    """Generate a new key and store its announcement, signed by the current key.

    The new key signs everything recorded from now on. The announcement stays in
    ``identity.json`` under ``pending_rotation`` until :mod:`agent.enroll` delivers it.

    :return: the announcement (``public_key`` and ``signature`` in base64, as the collector's
        ``POST /api/v1/agents/{agent_id}/rotate`` takes them)
    :raises agent.errors.StorageError: if the key cannot be written
    """
    old = load_or_create_key(home)
    with _locked(home):
        identity = _read_identity(home) or {}
        private, key_id = _new_key(home)
        new_public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        # The collector's format (collector/enrollment/service.py rotation_message):
        # ROTATION_DOMAIN + agent_id + "\n" + raw new public key, signed by the old key.
        signature = old.private_key.sign(
            ROTATION_DOMAIN + old.agent_id.encode("ascii") + b"\n" + new_public
        )
        announcement = {
            "agent_id": old.agent_id,
            "old_key_id": old.key_id,
            "new_key_id": key_id,
            "public_key": base64.b64encode(new_public).decode("ascii"),
            "signature": base64.b64encode(signature).decode("ascii"),
            "rotated_at": _now(),
        }
        identity["previous_keys"] = [*identity.get("previous_keys", []), old.key_id]
        identity["key_id"] = key_id
        identity["key_created_at"] = announcement["rotated_at"]
        identity["pending_rotation"] = announcement
        _write_identity(home, identity)
    return announcement


def clear_pending_rotation(home: AgentHome) -> None:
    """Forget the rotation announcement once the collector has accepted it."""
    with _locked(home):
        identity = _read_identity(home)
        if identity is not None:
            identity["pending_rotation"] = None
            _write_identity(home, identity)
