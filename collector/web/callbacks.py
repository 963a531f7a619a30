"""HTTP endpoints for SMS providers' delivery callbacks (Twilio status, Aliyun report).

Theory of operation (docs/alerts.md "Delivery callbacks"): an HTTP provider tells us about
delivery by calling the collector's web app, which may be another process than the dispatcher.
The endpoints therefore only *verify* the callback and store the receipt in the collector's
``alert_receipts`` table (:meth:`AlertStore.record_receipt`: duplicates ignored,
receipts before the submit response kept); the dispatcher applies them on its next pass.

- ``POST /api/sms/twilio/status``: form POST signed with ``X-Twilio-Signature`` over the URL
  Twilio called (the ``callback=`` option of ``SETTLEGUARD_SMS_URL`` when set, else the
  request URL) and the form fields; a bad or missing signature is answered 403.
- ``POST /api/sms/aliyun/report?token=…``: the JSON array Aliyun pushes. Aliyun does not sign
  these pushes, so the URL carries a shared secret, ``SMS_CALLBACK_TOKEN`` in the collector
  configuration (``SETTLEGUARD_SMS_CALLBACK_TOKEN``); without it configured the endpoint is
  closed (403). Answered with Aliyun's expected ``{"code": 0, "msg": "成功"}``.

Both live under ``/api/``: no session, no CSRF form token (they are machine callers), and each
is refused with 404 unless ``SETTLEGUARD_SMS_URL`` names that provider.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from settleguard.collector.alerts.aliyun_gateway import AliyunGateway
from settleguard.collector.alerts.gateway import GatewayError, SmsGateway
from settleguard.collector.alerts.http_gateways import SignatureError, TwilioGateway
from settleguard.collector.alerts.providers import gateway_from_url
from settleguard.collector.alerts.store import AlertStore

bp = Blueprint("sms_callbacks", __name__, url_prefix="/api/sms")

_GATEWAY_KEY = "settleguard.sms_callback_gateway"
_CALLBACK_SCHEMES = ("twilio+http://", "twilio+https://", "aliyun+http://", "aliyun+https://")


def _gateway() -> SmsGateway | None:
    url = current_app.config.get("SMS_URL")
    # Only the HTTP providers: building an SMPP gateway here would bind to the SMSC.
    if not url or not str(url).startswith(_CALLBACK_SCHEMES):
        return None
    cached: tuple[str, SmsGateway] | None = current_app.extensions.get(_GATEWAY_KEY)
    if cached is None or cached[0] != url:
        try:
            cached = (url, gateway_from_url(str(url)))
        except GatewayError:
            return None
        current_app.extensions[_GATEWAY_KEY] = cached
    return cached[1]


def _alerts() -> AlertStore:
    from settleguard.collector.web.db import get_db

    return AlertStore(get_db())


@bp.post("/twilio/status")
def twilio_status() -> Any:
    """A Twilio status callback: verify its signature, store the receipt."""
    gateway = _gateway()
    if not isinstance(gateway, TwilioGateway):
        abort(404)
    url = gateway.status_callback or request.url
    params = {key: request.form[key] for key in request.form}
    try:
        receipt = gateway.handle_status_callback(
            url, params, request.headers.get("X-Twilio-Signature", "")
        )
    except SignatureError:
        abort(403, "X-Twilio-Signature does not match")
    gateway.poll_receipts()  # the store is the queue here, not the gateway's memory
    if not receipt.message_id:
        abort(400, "MessageSid missing")
    _alerts().record_receipt(receipt, datetime.now(UTC))
    return "", 204


@bp.post("/aliyun/report")
def aliyun_report() -> Any:
    """An Aliyun receipt push: check the shared token, store every receipt in it."""
    gateway = _gateway()
    if not isinstance(gateway, AliyunGateway):
        abort(404)
    expected = str(current_app.config.get("SMS_CALLBACK_TOKEN") or "")
    given = request.args.get("token", "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        abort(403, "callback token missing or wrong")
    try:
        receipts = gateway.handle_report(request.get_data())
    except GatewayError as exc:
        abort(400, str(exc))
    gateway.poll_receipts()
    store, now = _alerts(), datetime.now(UTC)
    for receipt in receipts:
        store.record_receipt(receipt, now)
    return jsonify({"code": 0, "msg": "成功"})


def register(app: Any) -> None:
    """Attach the callback endpoints to the collector app."""
    app.register_blueprint(bp)
