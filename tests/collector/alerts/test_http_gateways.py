"""The Twilio sender against a local HTTP server that plays the provider."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qsl

import pytest
from settleguard.collector.alerts.gateway import GatewayUnavailable, SendRejected
from settleguard.collector.alerts.http_gateways import (
    SignatureError,
    TwilioGateway,
    twilio_signature,
)
from settleguard.collector.alerts.providers import gateway_from_url

SID, TOKEN = "AC0123456789abcdef", "twilio-token"


class Provider(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []
    status = 200

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _answer(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # Twilio
        form = dict(parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
        auth = base64.b64decode(self.headers["Authorization"].split()[1]).decode()
        self.requests.append({"path": self.path, "form": form, "auth": auth})
        if self.status != 200:
            return self._answer(self.status, {"message": "no"})
        ok = auth == f"{SID}:{TOKEN}" and self.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
        if not ok:
            return self._answer(401, {"message": "auth"})
        self._answer(201, {"sid": f"SM{len(self.requests):032d}", "status": "queued"})


@pytest.fixture
def provider():
    Provider.requests, Provider.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_documented_signature_vectors():
    # Twilio's security documentation example
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_twilio_send_and_signed_status_callback(provider):
    gateway = gateway_from_url(
        f"twilio+http://{SID}:{TOKEN}@{provider}/?from=%2B15005550006"
        "&callback=https://collector.example/sms/twilio"
    )
    assert isinstance(gateway, TwilioGateway)
    result = gateway.send("+8613800138000", "结算款已到账", client_ref="sg1")
    request = Provider.requests[0]
    assert request["form"]["Body"] == "结算款已到账" and request["form"]["To"] == "+8613800138000"
    assert request["form"]["StatusCallback"] == "https://collector.example/sms/twilio"
    params = {"MessageSid": result.message_ids[0], "MessageStatus": "delivered"}
    url = "https://collector.example/sms/twilio"
    good = base64.b64encode(
        hmac.new(
            TOKEN.encode(),
            (url + "".join(k + params[k] for k in sorted(params))).encode(),
            hashlib.sha1,
        ).digest()
    ).decode()
    with pytest.raises(SignatureError):
        gateway.handle_status_callback(url, {**params, "MessageStatus": "failed"}, good)
    assert gateway.poll_receipts() == []
    receipt = gateway.handle_status_callback(url, params, good)
    assert receipt.state == "delivered"
    assert gateway.poll_receipts() == [receipt]
    assert TOKEN not in repr(gateway)


@pytest.mark.parametrize(
    ("status", "error"), [(503, GatewayUnavailable), (429, GatewayUnavailable), (400, SendRejected)]
)
def test_twilio_errors(provider, status, error):
    Provider.status = status
    gateway = TwilioGateway(SID, TOKEN, "+15005550006", base_url=f"http://{provider}")
    with pytest.raises(error):
        gateway.send("+8613800138000", "x", client_ref="sg1")


def test_unreachable_provider_is_unavailable():
    gateway = TwilioGateway(SID, TOKEN, "+1", base_url="http://127.0.0.1:9")
    with pytest.raises(GatewayUnavailable):
        gateway.send("+8613800138000", "x", client_ref="sg1")
