"""Local fakes of Aliyun SMS and Tencent Cloud SMS that check what the real services check.

Each fake is registered from our own approval sheet (what an operator submits), so it accepts
exactly the approved templates: the signature of every request is verified with code written
here from the providers' published descriptions (separately from the code under test), the
template code must be approved, the parameters must be exactly the template's variables, and the
signature name must be the registered one. What a merchant would receive is kept in ``sent``:
the approved text filled in, after the 【signature】 the provider adds.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from settleguard.collector.alerts.approval import approval_sheet

SIGN_NAME = "结算守护"


@dataclass
class Fake:
    """Shared state of one fake provider."""

    key_id: str
    secret: str
    approved: dict[str, tuple[str, list[str]]]  # code -> (text in provider syntax, variables)
    sign_name: str = SIGN_NAME
    sent: list[tuple[str, str]] = field(default_factory=list)  # (number, text as received)
    refused: list[str] = field(default_factory=list)  # error codes answered
    throttle: int = 0  # answer this many sends with the provider's throttling code
    reports: list[dict[str, Any]] = field(default_factory=list)  # receipts waiting for a pull
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.RLock = field(default_factory=threading.RLock)


def register(provider: str, code_of: dict[str, str]) -> dict[str, tuple[str, list[str]]]:
    """The fake's approved templates from our sheet: code -> (text, variable names in order)."""
    approved = {}
    for row in approval_sheet(provider):
        name = str(row["template"])
        if name in code_of:
            names = [v["name"] for v in row["variables"]]  # type: ignore[attr-defined]
            approved[code_of[name]] = (str(row["text"]), names)
    return approved


class _Handler(BaseHTTPRequestHandler):
    fake: Fake

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))


# -- Aliyun -------------------------------------------------------------------------------------


def aliyun_expected_signature(secret: str, method: str, path: str, query: str,
                              headers: dict[str, str], signed: list[str], body: bytes) -> str:  # fmt: skip
    """ACS3-HMAC-SHA256 as Alibaba Cloud's "V3 request structure and signature" describes it."""

    def enc(text: str) -> str:
        return quote(text, safe="-_.~")

    pairs = sorted((enc(k), enc(v)) for k, v in parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed)
    hashed_body = hashlib.sha256(body).hexdigest()
    request = "\n".join(
        [method, path, canonical_query, canonical_headers, ";".join(signed), hashed_body]
    )
    string_to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(request.encode()).hexdigest()
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


class AliyunHandler(_Handler):
    def do_POST(self) -> None:
        fake, body = self.fake, self._body()
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        match = re.fullmatch(
            r"ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})",
            headers.get("authorization", ""),
        )
        if match is None or match.group(1) != fake.key_id:
            return self._refuse(401, "InvalidAccessKeyId.NotFound")
        signed = match.group(2).split(";")
        must_sign = {"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date",
                     "x-acs-signature-nonce", "x-acs-version"}  # fmt: skip
        if not must_sign <= set(signed) or signed != sorted(signed):
            return self._refuse(400, "IncompleteSignature")
        if headers.get("x-acs-content-sha256") != hashlib.sha256(body).hexdigest():
            return self._refuse(400, "SignatureDoesNotMatch")
        expected = aliyun_expected_signature(
            fake.secret, "POST", parts.path, parts.query, headers, signed, body
        )
        if not hmac.compare_digest(expected, match.group(3)):
            return self._refuse(400, "SignatureDoesNotMatch")
        if (headers["x-acs-action"], headers["x-acs-version"]) != ("SendSms", "2017-05-25"):
            return self._refuse(400, "InvalidAction.NotFound")
        self._send_sms(dict(parse_qsl(parts.query)))

    def _refuse(self, status: int, code: str) -> None:
        with self.fake.lock:
            self.fake.refused.append(code)
        self._answer(status, {"Code": code, "Message": code})

    def _send_sms(self, params: dict[str, str]) -> None:
        fake = self.fake
        approved = fake.approved.get(params.get("TemplateCode", ""))
        if params.get("SignName") != fake.sign_name:
            return self._refuse(200, "isv.SMS_SIGNATURE_ILLEGAL")
        if approved is None:
            return self._refuse(200, "isv.SMS_TEMPLATE_ILLEGAL")
        text, names = approved
        values = json.loads(params.get("TemplateParam", "{}"))
        if not isinstance(values, dict) or sorted(values) != sorted(names):
            return self._refuse(200, "isv.TEMPLATE_PARAMS_ILLEGAL")
        if not re.fullmatch(r"1[0-9]{10}", params.get("PhoneNumbers", "")):
            return self._refuse(200, "isv.MOBILE_NUMBER_ILLEGAL")
        with fake.lock:
            if fake.throttle:
                fake.throttle -= 1
                return self._refuse(200, "isv.BUSINESS_LIMIT_CONTROL")
            filled = re.sub(r"\$\{(\w+)\}", lambda m: str(values[m.group(1)]), text)
            fake.sent.append((params["PhoneNumbers"], f"【{fake.sign_name}】{filled}"))
            biz_id = f"{next(fake.ids):06d}^0"
        self._answer(200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": "r"})


# -- Tencent Cloud ------------------------------------------------------------------------------


def tencent_expected_signature(secret_key: str, timestamp: int, headers: dict[str, str],
                               signed: list[str], body: bytes) -> str:  # fmt: skip
    """TC3-HMAC-SHA256 as Tencent Cloud's API 3.0 "Signature v3" describes it."""
    canonical_headers = "".join(f"{n}:{headers[n].strip().lower()}\n" for n in signed)
    request = "POST\n/\n\n" + canonical_headers + "\n" + ";".join(signed) + "\n"
    request += hashlib.sha256(body).hexdigest()
    day = datetime.fromtimestamp(timestamp, UTC).date().isoformat()
    scope = f"{day}/sms/tc3_request"
    to_sign = (
        f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
    )

    def mac(key: bytes, text: str) -> bytes:
        return hmac.new(key, text.encode(), hashlib.sha256).digest()

    signing = mac(mac(mac(("TC3" + secret_key).encode(), day), "sms"), "tc3_request")
    return hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()


class TencentHandler(_Handler):
    app_id = "1400000001"

    def do_POST(self) -> None:
        fake, body = self.fake, self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        match = re.fullmatch(
            r"TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/sms/tc3_request, "
            r"SignedHeaders=([a-z;-]+), Signature=([0-9a-f]{64})",
            headers.get("authorization", ""),
        )
        if match is None or match.group(1) != fake.key_id:
            return self._error("AuthFailure.SecretIdNotFound")
        signed = match.group(3).split(";")
        timestamp = int(headers.get("x-tc-timestamp", "0"))
        if not {"content-type", "host"} <= set(signed):
            return self._error("AuthFailure.SignatureFailure")
        expected = tencent_expected_signature(fake.secret, timestamp, headers, signed, body)
        if not hmac.compare_digest(expected, match.group(4)):
            return self._error("AuthFailure.SignatureFailure")
        if headers.get("x-tc-version") != "2021-01-11":
            return self._error("InvalidParameter")
        request = json.loads(body)
        if request.get("SmsSdkAppId") != self.app_id:
            return self._error("UnauthorizedOperation.SmsSdkAppIdVerifyFail")
        if headers.get("x-tc-action") == "PullSmsSendStatus":
            with fake.lock:
                reports, fake.reports = fake.reports, []
            return self._answer(200, {"Response": {"PullSmsSendStatusSet": reports,
                                                   "RequestId": "r"}})  # fmt: skip
        if headers.get("x-tc-action") != "SendSms":
            return self._error("InvalidAction")
        self._send_sms(request)

    def _error(self, code: str) -> None:
        with self.fake.lock:
            self.fake.refused.append(code)
        self._answer(
            200, {"Response": {"Error": {"Code": code, "Message": code}, "RequestId": "r"}}
        )

    def _status(self, number: str, code: str, serial: str = "") -> None:
        if code != "Ok":
            with self.fake.lock:
                self.fake.refused.append(code)
        entry = {"SerialNo": serial, "PhoneNumber": number, "Fee": 1 if serial else 0,
                 "SessionContext": "", "Code": code, "Message": code, "IsoCode": "CN"}  # fmt: skip
        self._answer(200, {"Response": {"SendStatusSet": [entry], "RequestId": "r"}})

    def _send_sms(self, request: dict[str, Any]) -> None:
        fake = self.fake
        [number] = request.get("PhoneNumberSet") or [""]
        if request.get("SignName") != fake.sign_name:
            return self._status(number, "FailedOperation.SignatureIncorrectOrUnapproved")
        approved = fake.approved.get(str(request.get("TemplateId")))
        if approved is None:
            return self._status(number, "FailedOperation.TemplateIncorrectOrUnapproved")
        text, names = approved
        values = request.get("TemplateParamSet") or []
        if len(values) != len(names) or not all(isinstance(v, str) for v in values):
            return self._status(number, "FailedOperation.TemplateParamSetNotMatchApprovedTemplate")
        if not re.fullmatch(r"\+861[0-9]{10}", number):
            return self._status(number, "InvalidParameterValue.IncorrectPhoneNumber")
        with fake.lock:
            if fake.throttle:
                fake.throttle -= 1
                return self._status(number, "LimitExceeded.PhoneNumberThirtySecondLimit")
            filled = re.sub(r"\{(\d+)\}", lambda m: values[int(m.group(1)) - 1], text)
            fake.sent.append((number, f"【{fake.sign_name}】{filled}"))
            serial = f"2645:{next(fake.ids):010d}"
        self._status(number, "Ok", serial)


def serve(handler: type[_Handler], fake: Fake) -> tuple[ThreadingHTTPServer, str]:
    """Start *handler* on a free loopback port; returns the server and ``host:port``."""
    bound = type(handler.__name__, (handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), bound)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"
