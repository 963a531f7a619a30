"""Twilio- and Aliyun-shaped senders against a local HTTP server that plays the provider."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from collector.alerts.gateway import GatewayUnavailable, SendRejected, gateway_from_url
from collector.alerts.http_gateways import (
    AliyunGateway,
    SignatureError,
    TwilioGateway,
    aliyun_signature,
    twilio_signature,
)

SID, TOKEN = "AC0123456789abcdef", "twilio-token"
KEY, SECRET = "LTAI-test", "aliyun-secret"


def independent_aliyun_signature(secret: str, params: dict[str, str]) -> str:
    # written from the public description, separately from the code under test
    enc = lambda s: quote(s, safe="").replace("%7E", "~")  # noqa: E731
    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    message = "GET&%2F&" + enc(canonical)
    mac = hmac.new((secret + "&").encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


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

    def do_GET(self) -> None:  # Aliyun
        params = dict(parse_qsl(urlsplit(self.path).query))
        self.requests.append({"params": params})
        signature = params.pop("Signature", "")
        if signature != independent_aliyun_signature(SECRET, params):
            return self._answer(400, {"Code": "SignatureDoesNotMatch"})
        if params["PhoneNumbers"].startswith("000"):
            return self._answer(200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "bad"})
        self._answer(200, {"Code": "OK", "BizId": f"9{len(self.requests):05d}^0"})


@pytest.fixture
def provider():
    Provider.requests, Provider.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_documented_signature_vectors():
    # Twilio's security documentation example and Aliyun's SMS signature example
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    aliyun = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert aliyun_signature("testSecret", aliyun) == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


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


def test_aliyun_send_signed_and_receipt_report(provider):
    gateway = gateway_from_url(
        f"aliyun+http://{KEY}:{SECRET}@{provider}/?sign_name=结算守护&template_code=SMS_123"
    )
    assert isinstance(gateway, AliyunGateway)
    result = gateway.send("+8613800138000", "您的结算款 ¥1,234.56 已到账 & ok", client_ref="sg7")
    params = Provider.requests[0]["params"]
    assert params["TemplateCode"] == "SMS_123" and params["SignName"] == "结算守护"
    assert json.loads(params["TemplateParam"]) == {"content": "您的结算款 ¥1,234.56 已到账 & ok"}
    assert params["OutId"] == "sg7" and params["PhoneNumbers"] == "8613800138000"
    report = json.dumps(
        [
            {
                "phone_number": "8613800138000",
                "success": True,
                "err_code": "DELIVERED",
                "biz_id": result.message_ids[0],
                "out_id": "sg7",
            },
            {"biz_id": "other", "success": False, "err_code": "MOBILE_NOT_ON_SERVICE"},
        ]
    )
    receipts = gateway.handle_report(report.encode())
    assert [(r.state, r.error) for r in receipts] == [
        ("delivered", None),
        ("failed", "MOBILE_NOT_ON_SERVICE"),
    ]
    with pytest.raises(SendRejected, match="MOBILE_NUMBER_ILLEGAL"):
        gateway.send("0001", "x", client_ref="sg8")


def test_aliyun_wrong_secret_is_refused_by_provider(provider):
    gateway = AliyunGateway(KEY, "wrong", "s", "SMS_1", base_url=f"http://{provider}")
    with pytest.raises(SendRejected, match="HTTP 400"):
        gateway.send("+8613800138000", "x", client_ref="sg1")
