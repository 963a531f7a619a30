"""The agent's home directory: key, identity, config, outbox and enrollment state.

``SETTLEGUARD_AGENT_HOME`` wins; otherwise the per-user data directory
(``platformdirs.user_data_dir("settleguard-agent")``, e.g. ``~/.local/share/settleguard-agent``).
The directory is created with mode 0700 because it holds the private key and the broker
password.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

ENV_VAR = "SETTLEGUARD_AGENT_HOME"


@dataclass(frozen=True, slots=True)
class AgentHome:
    """Paths inside one agent home. Build it with :func:`agent_home`."""

    root: Path

    @property
    def config_path(self) -> Path:
        """``config.toml``: the technician-editable settings (:mod:`agent.config`)."""
        return self.root / "config.toml"

    @property
    def outbox_path(self) -> Path:
        """``outbox.db``: the SQLite outbox (:mod:`agent.outbox`)."""
        return self.root / "outbox.db"

    @property
    def keys_dir(self) -> Path:
        """``keys/``: the Ed25519 private keys, mode 0600 each (:mod:`agent.keys`)."""
        return self.root / "keys"

    @property
    def identity_path(self) -> Path:
        """``identity.json``: the agent id fixed at first use and the current key id."""
        return self.root / "identity.json"

    @property
    def enrollment_path(self) -> Path:
        """``enrollment.json``: collector answer incl. broker password, mode 0600."""
        return self.root / "enrollment.json"


def agent_home(root: str | os.PathLike[str] | None = None) -> AgentHome:
    """Return the agent home, creating the directory (mode 0700) if needed.

    :param root: explicit directory; default ``$SETTLEGUARD_AGENT_HOME`` or the user data dir
    """
    if root is None:
        root = os.environ.get(ENV_VAR) or platformdirs.user_data_dir("settleguard-agent")
    path = Path(root).expanduser()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return AgentHome(path)


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 (never readable by others).

    The temporary file is created 0600 from the start, fsynced, then renamed over ``path``,
    so a crash leaves either the old or the new content, and no window where it is world-readable.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
