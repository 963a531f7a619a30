"""The Mosquitto configuration we ship: ``settleguard collector broker-config --out DIR``.

Theory of operation (docs/architecture.md §3.4, §6, §7): the broker is the first half of the identity
chain. Every agent logs in with its own username (= its ``agent_id``) and password; ACL
``pattern`` lines substitute ``%u`` so an agent can only *write* ``sg/v1/a/<itself>/rec`` and
``…/hb`` and only *read* ``sg/v1/a/<itself>/ack``. The ingest worker then checks the other half:
topic agent = envelope ``agent_id`` = key owner. The collector has its own user that reads every
``rec``/``hb`` (through the shared subscription) and writes every ``ack``. Anonymous clients are
refused. ``set_tcp_nodelay true`` is not optional: without it loopback throughput fell ~30×.

Only *approved* agents appear in the password file; approving or revoking an agent rewrites it
(:func:`write_password_file`) and sends the broker SIGHUP (:func:`reload_broker`), which makes
Mosquitto re-read it. A revoked agent's live connection is not dropped by the reload on every
Mosquitto version, but its next CONNECT is refused and the worker rejects its records as
``revoked`` meanwhile, so nothing it sends after revocation is accepted.

The password file keeps the owner, group and mode it had (or is given to the ``run_as`` user),
because a Mosquitto started as root drops to that user before it reads the file again on a
reload. The collector's line is written last and no agent line may carry its name, so no
agent can take the collector's rights. With client certificates the broker still checks the
user name and password, so revocation (a password-file rewrite) works in that mode too; the
certificate-CN-as-user-name mode has no revocation without a CRL and is not offered.

``max_packet_size`` caps every packet: :data:`MAX_PACKET_SIZE` is sized for the largest
payload on our topics, an ack message (see docs/deploy.md); the broker disconnects a client
that sends more.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from settleguard.protocol.acks import MAX_ACK_BYTES
from settleguard.protocol.envelope import MAX_ENVELOPE_BYTES

PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default for the $7$ (PBKDF2-SHA512) format

#: The broker's ``max_packet_size``: the largest payload on our topics (an ack message, larger
#: than any record envelope) plus room for the fixed header, topic and v5 properties.
MAX_PACKET_SIZE = max(MAX_ENVELOPE_BYTES, MAX_ACK_BYTES) + 4096


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """Paths written by :func:`write_broker_config`."""

    config: Path
    password_file: Path
    acl_file: Path


@dataclass(frozen=True, slots=True)
class TlsListener:
    """Make the listener TLS (``mqtts``): PEM files and the client-certificate policy.

    With ``require_certificate`` a client must present a certificate signed by ``cafile`` and
    still log in with its user name and password from the password file, so approving and
    revoking govern who connects in this mode too.
    """

    cafile: Path
    certfile: Path
    keyfile: Path
    require_certificate: bool = False

    def config_lines(self) -> list[str]:
        """The listener options, for ``mosquitto.conf`` (after the ``listener`` line)."""
        lines = [f"cafile {self.cafile}", f"certfile {self.certfile}", f"keyfile {self.keyfile}"]
        if self.require_certificate:
            lines.append("require_certificate true")
        return lines


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Hash ``password`` in Mosquitto 2's ``$7$`` format (PBKDF2-SHA512, 12-byte salt).

    The result is exactly what ``mosquitto_passwd`` writes after ``username:``; we compute it
    ourselves so that the collector can maintain the password file without the binary.
    """
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """Check ``password`` against a ``$7$`` hash (used by tests and ``agents list``)."""
    try:
        _, kind, iterations, salt_b64, digest_b64 = hashed.split("$")
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        rounds = int(iterations)
    except ValueError:
        return False
    if kind != "7":
        return False
    candidate = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, rounds)
    return secrets.compare_digest(candidate, digest)


def new_password() -> str:
    """A fresh random broker password (≈190 bits)."""
    return secrets.token_urlsafe(24)


def render_acl(collector_user: str) -> str:
    """The ACL file text: the collector's rights, then one pattern per agent right."""
    return (
        "# settleguard broker ACL (generated; see docs/collector.md)\n"
        f"user {collector_user}\n"
        "topic read sg/v1/a/+/rec\n"
        "topic read sg/v1/a/+/hb\n"
        "topic write sg/v1/a/+/ack\n"
        "\n"
        "# every other user is an agent whose username is its agent_id\n"
        "pattern write sg/v1/a/%u/rec\n"
        "pattern write sg/v1/a/%u/hb\n"
        "pattern read sg/v1/a/%u/ack\n"
    )


def render_config(
    files: BrokerFiles,
    *,
    port: int,
    bind: str = "127.0.0.1",
    pid_file: Path | None = None,
    run_as: str | None = None,
    tls: TlsListener | None = None,
) -> str:
    """The ``mosquitto.conf`` text for one listener: plain TCP, or TLS with ``tls``."""
    lines = [
        "# settleguard Mosquitto configuration (generated by `settleguard collector broker-config`)",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {files.password_file}",
        f"acl_file {files.acl_file}",
        "persistence false",
        "max_inflight_messages 100",
        "max_queued_messages 10000",
        f"max_packet_size {MAX_PACKET_SIZE}",
        f"listener {port} {bind}",
        "protocol mqtt",
        # Nagle + delayed ACK on loopback cut throughput many times over (docs/architecture.md §7).
        "set_tcp_nodelay true",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
    ]
    if tls is not None:
        at = lines.index("protocol mqtt") + 1
        lines[at:at] = tls.config_lines()
    if pid_file is not None:
        lines.insert(1, f"pid_file {pid_file}")
    if run_as is not None:
        # Started as root, Mosquitto drops to this user; broker-config gives it passwd and acl.
        lines.insert(1, f"user {run_as}")
    return "\n".join(lines) + "\n"


def owner_of(user: str) -> tuple[int, int]:
    """``(uid, gid)`` of a system user (its primary group).

    :raises ValueError: no such user
    """
    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise ValueError(f"no system user {user!r}") from exc
    return entry.pw_uid, entry.pw_gid


def password_lines(collector_user: str, collector_hash: str, agents: dict[str, str]) -> str:
    """The password file text: agents sorted, the collector's line last.

    :raises ValueError: an agent entry carries the collector's user name
    """
    if collector_user in agents:
        raise ValueError(f"agent id {collector_user!r} is the collector's broker user name")
    lines = [f"{user}:{hashed}\n" for user, hashed in sorted(agents.items())]
    return "".join(lines) + f"{collector_user}:{collector_hash}\n"


def write_private_file(path: Path, text: str, *, owner: tuple[int, int] | None = None) -> None:
    """Atomically replace ``path``; the new file keeps the old one's owner, group and mode.

    A new file is mode 0600 owned by ``owner`` (else by us); an ``owner`` wins over the old
    file's. Group write and every world bit are dropped. Only root can give a file to another
    user; anyone else keeps at least the group when it is a member (e.g. a ``root:mosquitto``
    0640 file rewritten by a collector user in group ``mosquitto``).

    :param owner: ``(uid, gid)`` the broker runs as (``run_as``), or ``None``
    """
    mode, keep = 0o600, None
    try:
        old = path.stat()
        mode, keep = old.st_mode & 0o640, (old.st_uid, old.st_gid)
    except FileNotFoundError:
        pass
    owner = owner or keep
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            if owner is not None:
                _give(handle.fileno(), *owner)
            os.fchmod(handle.fileno(), mode | 0o600)
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _give(fd: int, uid: int, gid: int) -> None:
    try:
        os.fchown(fd, uid, gid)
    except PermissionError:
        try:
            os.fchown(fd, -1, gid)
        except PermissionError:
            pass


def write_password_file(
    path: Path,
    collector: tuple[str, str],
    agents: dict[str, str],
    *,
    owner: tuple[int, int] | None = None,
) -> None:
    """Atomically replace the password file with ``username:hash`` lines.

    :param collector: the collector's ``(user name, $7$ hash)``
    :param agents: ``agent_id -> $7$ hash`` of every approved agent
    :param owner: see :func:`write_private_file`
    :raises ValueError: an agent id equals the collector's user name
    """
    write_private_file(path, password_lines(*collector, agents), owner=owner)


def write_broker_config(
    out_dir: Path,
    *,
    port: int = 1883,
    bind: str = "127.0.0.1",
    collector_user: str = "collector",
    collector_password_hash: str,
    agents: dict[str, str] | None = None,
    pid_file: Path | None = None,
    run_as: str | None = None,
    tls: TlsListener | None = None,
) -> BrokerFiles:
    """Write ``mosquitto.conf``, ``acl`` and ``passwd`` into ``out_dir``.

    :param collector_password_hash: ``$7$`` hash of the collector's broker password
    :param agents: ``agent_id -> $7$ hash`` of every approved agent
    :param pid_file: where the broker writes its pid; a missing folder is created (and given
        to ``run_as``, since Mosquitto writes the file after dropping privileges)
    :param run_as: the ``user`` Mosquitto drops to when started as root; passwd and acl are
        given to that user (when we are root) so it can read them again on a reload
    :param tls: make the listener TLS (:class:`TlsListener`); default plain TCP
    :raises ValueError: ``run_as`` is not a system user, or an agent id equals
        ``collector_user``
    """
    owner = owner_of(run_as) if run_as is not None else None
    out_dir.mkdir(parents=True, exist_ok=True)
    files = BrokerFiles(
        config=out_dir / "mosquitto.conf",
        password_file=(out_dir / "passwd").resolve(),
        acl_file=(out_dir / "acl").resolve(),
    )
    if pid_file is not None:
        _pid_folder(pid_file.parent, owner)
    write_private_file(files.acl_file, render_acl(collector_user), owner=owner)
    write_password_file(
        files.password_file, (collector_user, collector_password_hash), agents or {}, owner=owner
    )
    files.config.write_text(
        render_config(files, port=port, bind=bind, pid_file=pid_file, run_as=run_as, tls=tls)
    )
    return files


def _pid_folder(folder: Path, owner: tuple[int, int] | None) -> None:
    """Create the pid file's folder; one we create is given to the broker's user, because
    Mosquitto writes its pid file after it has dropped privileges."""
    if folder.exists():
        return
    folder.mkdir(parents=True, mode=0o755)
    if owner is not None and os.geteuid() == 0:
        os.chown(folder, *owner)


def configured_pid_file(config: Path) -> Path | None:
    """The ``pid_file`` a ``mosquitto.conf`` names, or ``None`` (no such file or line)."""
    try:
        text = config.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.strip().partition(" ")
        if name == "pid_file" and value.strip():
            return Path(value.strip())
    return None


def reload_broker(pid_file: Path | None = None, pid: int | None = None) -> bool:
    """Send SIGHUP so Mosquitto re-reads its password and ACL files.

    :returns: ``False`` when no broker process is known (nothing to reload)
    """
    if pid is None and pid_file is not None and pid_file.exists():
        text = pid_file.read_text().strip()
        pid = int(text) if text.isdigit() else None
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_listening(process: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    """Wait until ``process`` listens on ``port``; False if it exited or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if accepts(port):
            return True
        time.sleep(0.02)
    return False


def start_mosquitto(config: Path, port: int, *, timeout: float = 15.0) -> subprocess.Popen[bytes]:
    """Run ``mosquitto -c config`` (its log: ``mosquitto.log`` beside the config) and return
    once it listens on ``port``.

    :raises BrokerStartError: no mosquitto binary, or it exited or did not listen in time (the
        message names the log)
    """
    binary = mosquitto_binary()
    if binary is None:
        raise BrokerStartError("mosquitto is not installed (Debian: apt-get install mosquitto)")
    log_path = config.parent / "mosquitto.log"
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen([binary, "-c", str(config)], stdout=log, stderr=log)
    if not wait_listening(process, port, timeout):
        stop_process(process)
        raise BrokerStartError(f"mosquitto did not start listening on {port}; see {log_path}")
    return process


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate ``process`` and wait for it; kill it if it does not end within ``timeout``."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class BrokerStartError(RuntimeError):
    """The broker could not be started."""


def mosquitto_binary() -> str | None:
    """Path of the ``mosquitto`` executable, if installed."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )


def check_config(files: BrokerFiles) -> None:
    """Check that every password-file line has the ``username:$7$…`` shape.

    :raises ValueError: naming the first bad line
    """
    for number, line in enumerate(files.password_file.read_text().splitlines(), start=1):
        user, _, hashed = line.partition(":")
        if not user or not hashed.startswith("$7$"):
            raise ValueError(f"{files.password_file}:{number}: not a username:$7$ line")
