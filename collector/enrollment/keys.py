"""The collector's own secrets: the sealing key pair and the account-matching HMAC key.

* ``sealing.key`` / ``sealing.pub`` -- X25519 (:mod:`protocol.sealed`). Agents encrypt the full
  settlement card number of a card change to ``sealing.pub``; only the collector can open it,
  and only in memory (docs/architecture.md §6).
* ``secret_key`` (in the instance folder) -- 256 random bits that sign the dashboard's session
  cookies (Flask ``SECRET_KEY``), made with the instance and kept, so a restart keeps sessions.
* ``hmac.key`` -- 256 random bits. :func:`collector.account_numbers.account_hmac` of an account
  number (its digits, and an IBAN's letters) lets the statement importers find credits to an
  account without ever storing the number in clear.

Files are created with mode 0600 (``O_EXCL``, so an existing key is never overwritten) and are
refused on load when group or others can read them. Each process loads only what it uses: the
dashboard and the statement importers need the HMAC key and the sealing *public* key
(``sealing_private=False``); only the ingest worker, which opens card changes, reads
``sealing.key``. Rotation is documented in docs/collector.md:
a new sealing key is added while the old private key is kept to open older tokens; rotating the
HMAC key means recomputing every stored HMAC from the sealed ciphertexts.
"""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from settleguard.collector.account_numbers import account_hmac as _account_hmac
from settleguard.protocol.sealed import card_change_context, generate_keypair, open_sealed

HMAC_KEY_BYTES = 32  # ≥ 128 bit required; we use 256
SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name
SECRET_KEY_BYTES = 32


class KeyFileError(Exception):
    """A key file is missing, unreadable, malformed or too widely readable."""


@dataclass(frozen=True, slots=True)
class CollectorKeys:
    """The collector's key material, held in memory only."""

    sealing_private: bytes | None  # None in a process that never opens card changes
    sealing_public: bytes
    hmac_key: bytes

    def account_hmac(self, account_number: str) -> str:
        """Keyed digest of an account number (layout-free; see :func:`account_hmac`)."""
        return account_hmac(self.hmac_key, account_number)

    def open_card_change(self, change_id: str, token: str) -> str:
        """Decrypt the new settlement account number of a card change (in memory only).

        :raises protocol.sealed.SealedError: when the token is altered or not for us
        :raises KeyFileError: when this process loaded the keys without the private key
        """
        if self.sealing_private is None:
            raise KeyFileError("this process did not load sealing.key; it cannot open card changes")
        plain = open_sealed(self.sealing_private, token, context=card_change_context(change_id))
        return plain.decode("utf-8")


def account_hmac(key: bytes, account_number: str) -> str:
    """HMAC-SHA256 hex digest of ``account_number``.

    Kept for callers of this module; the definition is
    :func:`collector.account_numbers.account_hmac` (digits, plus an IBAN's letters).
    """
    return _account_hmac(key, account_number)


def mask_account(account_number: str) -> str:
    """Masked form of a settlement account: last four digits only (docs/architecture.md §6)."""
    digits = "".join(ch for ch in account_number if ch.isdigit())
    return "*" * max(len(digits) - 4, 0) + digits[-4:]


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(base64.b64encode(data) + b"\n")


def _create_secret(path: Path, data: bytes) -> None:
    """Write ``path`` (0600) unless it exists; a concurrent creator never sees half a file:
    the content goes to a private temporary file that is then hard-linked into place."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    _write_secret(staging, data)
    try:
        os.link(staging, path)
    except FileExistsError:
        pass  # another process made it first: theirs is the one every process reads
    finally:
        staging.unlink()


def load_or_create_secret_key(instance: Path) -> bytes:
    """The session-signing secret of an instance: ``<instance>/secret_key``, made on first use.

    :raises KeyFileError: the file is malformed or group/world-readable
    """
    path = instance / SECRET_KEY_FILE
    if not path.exists():
        _create_secret(path, os.urandom(SECRET_KEY_BYTES))
    return _read_secret(path, SECRET_KEY_BYTES, private=True)


def _read_secret(path: Path, size: int, *, private: bool) -> bytes:
    try:
        mode = path.stat().st_mode
        text = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(
            f"{path}: {exc.strerror}; run `settleguard collector keys init`"
        ) from exc
    if private and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path}: mode {stat.S_IMODE(mode):o} is too open; chmod 600 it")
    try:
        data = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise KeyFileError(f"{path}: not base64") from exc
    if len(data) != size:
        raise KeyFileError(f"{path}: expected {size} bytes, found {len(data)}")
    return data


def init_keys(directory: Path, *, sealing_private: bool = True) -> tuple[CollectorKeys, bool]:
    """Create the key files in ``directory`` unless they already exist.

    :param sealing_private: load ``sealing.key`` too (see :func:`load_keys`)
    :returns: the keys and whether they were created now (``False``: already present)
    :raises KeyFileError: when only some of the files exist (a half-initialised directory)
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    names = [directory / n for n in ("sealing.key", "sealing.pub", "hmac.key")]
    present = [p.exists() for p in names]
    if any(present):
        if sealing_private and not all(present):
            raise KeyFileError(f"{directory}: some key files exist and some do not; fix by hand")
        return load_keys(directory, sealing_private=sealing_private), False
    private, public = generate_keypair()
    _write_secret(names[0], private)
    _write_secret(names[1], public)
    _write_secret(names[2], os.urandom(HMAC_KEY_BYTES))
    return load_keys(directory, sealing_private=sealing_private), True


def load_keys(directory: Path, *, sealing_private: bool = True) -> CollectorKeys:
    """Read the collector's keys from ``directory``.

    :param sealing_private: read ``sealing.key``; ``False`` in processes that never open a card
        change (the dashboard, statement imports), so the private key is not in their memory
    :raises KeyFileError: missing, malformed or group/world-readable files
    """
    return CollectorKeys(
        sealing_private=(
            _read_secret(directory / "sealing.key", 32, private=True) if sealing_private else None
        ),
        sealing_public=_read_secret(directory / "sealing.pub", 32, private=False),
        hmac_key=_read_secret(directory / "hmac.key", HMAC_KEY_BYTES, private=True),
    )
