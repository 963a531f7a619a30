"""Enrollment with the collector, offline-first; key-rotation delivery.

Theory of operation
-------------------
docs/architecture.md §4 ("Keys"). The agent already has its key and fixed agent id (:mod:`agent.keys`);
enrollment *registers* them with the operator's one-time token:

``POST {collector}/api/v1/enroll`` with ``{"token", "agent_id", "public_key" (base64 raw
Ed25519), "agent_version"}``. The collector (``collector/web/enroll.py``) answers 201 with
``{"agent_id", "merchant_id", "key_id", "status": "pending"|"approved", "mqtt": {"host",
"port", "username", "password", "protocol", "tls"?}, "collector_public_key"}`` or 400 with
``{"error"}``. The answer, including the broker password, is stored in ``enrollment.json``
with mode 0600.

If the collector cannot be reached, the token and URL are stored (state ``queued``) and
:class:`~agent.errors.CollectorUnreachable` is raised; the agent keeps signing and queueing
records under its fixed id, and ``run`` (or ``enroll`` again) completes the enrollment later.
An agent stays ``pending`` until an operator approves it; the broker refuses it until then,
and ``run`` polls ``GET /api/v1/agents/{id}/status`` (HTTP Basic: agent id and the broker
password from the answer; the collector shows an agent's state to nobody else).

A pending key rotation (:func:`agent.keys.rotate_key`) is delivered with
``POST /api/v1/agents/{id}/rotate`` ``{"public_key", "signature"}``.

The answer carries the broker password and the key card numbers are sealed to, so the
collector is reached over https (plain http only on loopback), and the token carries the
fingerprint of the collector's sealing key (:mod:`protocol.enroll_token`): an answer with
another key is refused and nothing of it is kept.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from settleguard.agent.broker_target import BrokerTarget
from settleguard.agent.config import AgentConfig
from settleguard.agent.errors import CollectorUnreachable, EnrollmentError, StorageError, UsageError
from settleguard.agent.home import AgentHome, write_private_file
from settleguard.agent.keys import clear_pending_rotation, identity_info, load_or_create_key
from settleguard.protocol.enroll_token import is_loopback, key_fingerprint, token_fingerprint

from settleguard import __version__


def check_collector_url(url: str) -> None:
    """Refuse a collector URL the enrollment answer could be read or changed on.

    :raises UsageError: not https (http is accepted for 127.0.0.0/8, ::1 and localhost only)
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return
    raise UsageError(
        f"collector URL {url!r} must start with https:// (http:// only for 127.0.0.1, ::1 or"
        " localhost): the answer carries the broker password and the collector's sealing key"
    )


def _check_sealing_key(expected: str, answer: dict[str, Any]) -> None:
    try:
        received = base64.b64decode(str(answer.get("collector_public_key")), validate=True)
    except (binascii.Error, ValueError):
        received = b""
    if len(received) != 32 or key_fingerprint(received) != expected:
        raise EnrollmentError(
            "the collector answered with a sealing key that does not match the token: something"
            " between this agent and the collector may be answering in its place; nothing was"
            " stored. Check the collector URL and network, then ask for a new token"
        )


def load_enrollment(home: AgentHome) -> dict[str, Any] | None:
    """The stored enrollment state, or ``None`` if the agent never tried to enroll."""
    try:
        return dict(json.loads(home.enrollment_path.read_text("utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StorageError(f"{home.enrollment_path}: unreadable ({exc})") from exc


def _save(home: AgentHome, state: dict[str, Any]) -> None:
    text = json.dumps(state, indent=2, sort_keys=True) + "\n"
    try:
        write_private_file(home.enrollment_path, text.encode("utf-8"))
    except OSError as exc:
        raise StorageError(f"cannot write {home.enrollment_path}: {exc}") from exc


def _call(
    method: str,
    url: str,
    body: dict[str, Any] | None,
    timeout: float,
    auth: tuple[str, str] | None = None,
) -> dict[str, Any]:
    check_collector_url(url)
    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    # urllib.request loads the HTTP stack: only enrollment needs it, not ``agent status``
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error") or exc.reason
        except (ValueError, AttributeError):
            message = exc.reason
        if exc.code >= 500:
            raise CollectorUnreachable(f"collector {url} failed ({exc.code}): {message}") from exc
        raise EnrollmentError(f"collector refused: {message} (HTTP {exc.code})") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CollectorUnreachable(f"cannot reach collector {url}: {reason}") from exc


def mqtt_protocol(value: object) -> int:
    """The collector says ``"5"`` or ``"3.1.1"`` (its MQTT_PROTOCOL); we keep 5 or 4.

    :raises EnrollmentError: anything else
    """
    text = str(value).strip()
    if text in ("5", "5.0"):
        return 5
    if text in ("3.1.1", "4", "311"):
        return 4
    raise EnrollmentError(f"the collector named an unknown MQTT protocol {text!r}")


def _broker_url(mqtt: dict[str, Any]) -> str:
    scheme = "mqtts" if mqtt.get("tls") or int(mqtt.get("port", 1883)) == 8883 else "mqtt"
    return f"{scheme}://{mqtt['host']}:{int(mqtt['port'])}"


def enroll(
    home: AgentHome, collector_url: str, token: str, *, timeout: float = 15.0
) -> dict[str, Any]:
    """Register this agent's key with a one-time token; queue it if the collector is away.

    :return: the stored enrollment state (``status`` pending or approved)
    :raises agent.errors.CollectorUnreachable: queued; ``run`` or a second ``enroll`` retries
    :raises agent.errors.EnrollmentError: the collector refused (bad/used token, taken id)
    """
    key = load_or_create_key(home)
    base = collector_url.rstrip("/")
    check_collector_url(base)
    fingerprint = token_fingerprint(token)
    if fingerprint is None:
        raise UsageError(
            "this enrollment token does not name the collector's key (no '.<fingerprint>' at"
            " its end); copy the whole token, or ask the operator for a new one"
        )
    previous = load_enrollment(home)
    if previous and previous.get("status") in ("pending", "approved"):
        raise EnrollmentError(f"already enrolled as {previous['agent_id']} ({previous['status']})")
    queued = {"status": "queued", "collector": base, "token": token, "agent_id": key.agent_id}
    body = {
        "token": token,
        "agent_id": key.agent_id,
        "public_key": key.public_b64,
        "agent_version": __version__,
    }
    try:
        answer = _call("POST", f"{base}/api/v1/enroll", body, timeout)
    except CollectorUnreachable:
        _save(home, queued)
        raise
    except EnrollmentError as exc:
        _save(home, {**queued, "status": "failed", "token": None, "error": exc.message})
        raise
    if answer.get("agent_id") != key.agent_id:
        raise EnrollmentError(
            f"collector registered {answer.get('agent_id')!r}, not our id {key.agent_id}"
        )
    _check_sealing_key(fingerprint, answer)
    mqtt = answer.get("mqtt") or answer.get("broker") or {}
    state = {
        "status": answer.get("status", "pending"),
        "collector": base,
        "agent_id": key.agent_id,
        "merchant_id": answer.get("merchant_id"),
        "key_id": answer.get("key_id", key.key_id),
        "broker": {
            "url": mqtt.get("url") or _broker_url(mqtt),
            "username": mqtt["username"],
            "password": mqtt["password"],
            "protocol": mqtt_protocol(mqtt.get("protocol", 5)),
        },
        "collector_public_key": answer.get("collector_public_key"),
        "enrolled_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    _save(home, state)
    return state


def retry_pending(home: AgentHome, *, timeout: float = 15.0) -> dict[str, Any] | None:
    """What ``run`` calls: finish a queued enrollment, refresh a pending one, send a rotation.

    :return: the enrollment state after the attempt (``None`` if never enrolled)
    :raises agent.errors.CollectorUnreachable: still away (state kept)
    :raises agent.errors.EnrollmentError: the collector refused
    """
    state = load_enrollment(home)
    if state is None:
        return None
    if state["status"] == "queued":
        return enroll(home, state["collector"], state["token"], timeout=timeout)
    if state["status"] == "pending":
        answer = _call(
            "GET",
            f"{state['collector']}/api/v1/agents/{state['agent_id']}/status",
            None,
            timeout,
            auth=(state["agent_id"], state["broker"]["password"]),
        )
        if answer.get("status") != state["status"]:
            state["status"] = str(answer.get("status"))
            _save(home, state)
    _deliver_rotation(home, state, timeout)
    return state


def _deliver_rotation(home: AgentHome, state: dict[str, Any], timeout: float) -> None:
    identity = identity_info(home) or {}
    announcement = identity.get("pending_rotation")
    if not announcement or state.get("status") not in ("pending", "approved"):
        return
    _call(
        "POST",
        f"{state['collector']}/api/v1/agents/{state['agent_id']}/rotate",
        {"public_key": announcement["public_key"], "signature": announcement["signature"]},
        timeout,
    )
    clear_pending_rotation(home)


def broker_target(home: AgentHome, config: AgentConfig) -> BrokerTarget | None:
    """The broker to sync with: ``[broker]`` overrides on top of the enrollment answer.

    :return: ``None`` when neither enrollment nor config names a broker yet
    """
    stored = (load_enrollment(home) or {}).get("broker") or {}
    settings = config.broker
    url = settings.url or stored.get("url")
    if not url:
        return None
    protocol = settings.protocol or int(stored.get("protocol", 5))
    return BrokerTarget.from_url(
        url,
        username=settings.username or stored.get("username", ""),
        password=settings.password or stored.get("password", ""),
        protocol=protocol,
        ca_file=settings.ca_file,
        cert_file=settings.cert_file,
        key_file=settings.key_file,
    )
