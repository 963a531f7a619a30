"""HTTP endpoints used by ``settleguard agent enroll`` (blueprint ``enroll``).

The views only translate JSON to :mod:`collector.enrollment.service` calls and errors to 400 answers;
the contract is documented in docs/collector.md ("Enrollment API").
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from settleguard.collector.enrollment import broker
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.enrollment.keys import CollectorKeys, init_keys
from settleguard.collector.store import Row
from settleguard.collector.web.db import get_db
from settleguard.collector.web.users import role_at_least

bp = Blueprint("enroll", __name__, url_prefix="/api/v1")


def _error(message: str, status: int = 400) -> ResponseReturnValue:
    return jsonify({"error": message}), status


def _b64_field(payload: dict[str, Any], name: str) -> bytes:
    value = payload.get(name)
    if not isinstance(value, str):
        raise enrollment.EnrollmentError(f"field {name!r} missing or not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise enrollment.EnrollmentError(f"field {name!r} is not valid base64") from exc


def collector_keys() -> CollectorKeys:
    """The collector's public sealing key and HMAC key (created on first use, files 0600);
    the web process never loads the private sealing key."""
    keys, _ = init_keys(Path(current_app.config["KEYS_DIR"]), sealing_private=False)
    return keys


@bp.post("/enroll")
def enroll_agent() -> ResponseReturnValue:
    """Register an agent: ``{"token", "public_key" (base64 raw Ed25519), "agent_id"?}``."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return _error("body must be a JSON object")
    try:
        token = payload.get("token")
        if not isinstance(token, str) or not token:
            raise enrollment.EnrollmentError("field 'token' missing")
        agent_id = payload.get("agent_id")
        if agent_id is not None and not isinstance(agent_id, str):
            raise enrollment.EnrollmentError("field 'agent_id' must be a string")
        result = enrollment.enroll(
            get_db(),
            token=token,
            public_key=_b64_field(payload, "public_key"),
            agent_id=agent_id,
            collector_user=current_app.config["MQTT_USERNAME"],
        )
    except enrollment.EnrollmentError as exc:
        return _error(str(exc))
    config = current_app.config
    body = {
        "agent_id": result.agent_id,
        "merchant_id": result.merchant_id,
        "key_id": result.key_id,
        "status": result.status,
        "mqtt": {
            "host": config["MQTT_HOST"],
            "port": config["MQTT_PORT"],
            "username": result.broker_username,
            "password": result.broker_password,
            "protocol": config["MQTT_PROTOCOL"],
        },
        "collector_public_key": base64.b64encode(collector_keys().sealing_public).decode(),
    }
    return jsonify(body), 201


# Checked when the agent is unknown, so an unknown id costs what a wrong password costs.
_NO_AGENT_HASH = broker.hash_password(broker.new_password())


def _may_see_agent(row: Row | None, agent_id: str) -> bool:
    """A signed-in user or API token (viewer or above), or the agent itself: HTTP Basic with
    its agent id and the broker password it was given at enrollment."""
    user = g.get("user")
    if user is not None and role_at_least(user["role"], "viewer"):
        return row is not None
    credentials = request.authorization
    if credentials is None or credentials.type != "basic":
        return False
    hashed = row["broker_password"] if row is not None else None
    matches = broker.verify_password(str(credentials.password or ""), hashed or _NO_AGENT_HASH)
    return row is not None and hashed is not None and credentials.username == agent_id and matches


@bp.get("/agents/<agent_id>/status")
def agent_status(agent_id: str) -> ResponseReturnValue:
    """Enrollment state an agent polls while waiting for approval.

    Only for the agent itself (HTTP Basic: agent id and broker password) and signed-in users;
    anyone else gets the answer an unknown id gets, so ids cannot be enumerated.
    """
    row = get_db().query_one(
        "SELECT status, key_id, broker_password FROM agents WHERE agent_id = ?", (agent_id,)
    )
    if not _may_see_agent(row, agent_id):
        return _error("unknown agent", 404)
    assert row is not None
    return jsonify({"agent_id": agent_id, "status": row["status"], "key_id": row["key_id"]})


@bp.post("/agents/<agent_id>/rotate")
def rotate(agent_id: str) -> ResponseReturnValue:
    """Accept a new key signed by the current one: ``{"public_key", "signature"}`` (base64)."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return _error("body must be a JSON object")
    try:
        key_id = enrollment.rotate_key(
            get_db(),
            agent_id,
            _b64_field(payload, "public_key"),
            _b64_field(payload, "signature"),
            grace_s=int(current_app.config["RETIRED_KEY_GRACE_S"]),
        )
    except enrollment.EnrollmentError as exc:
        return _error(str(exc))
    return jsonify({"agent_id": agent_id, "key_id": key_id})


@bp.get("/collector-key")
def collector_key() -> ResponseReturnValue:
    """The X25519 public key agents seal settlement card numbers to (base64 raw)."""
    return jsonify({"public_key": base64.b64encode(collector_keys().sealing_public).decode()})
