"""Tencent Cloud SMS (腾讯云短信): SendSms with an approved template, signed with TC3-HMAC-SHA256.

``SendSms`` (API version 2021-01-11, ``POST`` JSON to ``sms.tencentcloudapi.com``) takes
``PhoneNumberSet`` (E.164), ``SmsSdkAppId`` (the SMS application), ``SignName`` (the registered
signature's content, which Tencent puts in front of the text), ``TemplateId`` (the approved
template's id) and ``TemplateParamSet`` (the variables' values **in template order**: Tencent
numbers variables ``{1}``, ``{2}``…), plus ``SessionContext`` (our reference). Requests are
signed with TC3-HMAC-SHA256 (see :func:`tc3_signature`):

    CanonicalRequest = "POST\\n/\\n\\n" + "name:value\\n" per signed header + "\\n" +
                       signed header names + "\\n" + hex SHA-256 of the JSON body
    StringToSign     = "TC3-HMAC-SHA256\\n" + timestamp + "\\n" + date/service/tc3_request +
                       "\\n" + hex SHA-256 of CanonicalRequest
    key              = HMAC chain "TC3"+SecretKey -> UTC date -> service -> "tc3_request"
    Signature        = hex HMAC-SHA256(key, StringToSign)

sent as ``Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<date>/sms/tc3_request,
SignedHeaders=content-type;host;x-tc-action, Signature=…`` with ``X-TC-Action``,
``X-TC-Timestamp``, ``X-TC-Version`` and ``X-TC-Region``. (Source: Tencent Cloud API 3.0
"Signature v3" and the SMS SendSms and PullSmsSendStatus references, cloud.tencent.com.)

Answers: a request-level ``Response.Error`` (signature, auth, request limit) or one
``SendStatusSet`` entry per number with ``Code`` ``Ok`` and the ``SerialNo`` receipts quote.
Receipts are pulled (``PullSmsSendStatus``) by :meth:`TencentGateway.poll_receipts`, each with
``ReportStatus`` ``SUCCESS`` or ``FAIL``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from settleguard.collector.alerts.encoding import segment
from settleguard.collector.alerts.gateway import (
    DeliveryReceipt,
    GatewayConfigError,
    GatewayError,
    GatewayUnavailable,
    SendRejected,
    SendResult,
    SendUncertain,
    TemplateCall,
)
from settleguard.collector.alerts.http_gateways import _check_base, _request, _split

API_VERSION = "2021-01-11"
SERVICE = "sms"
CONTENT_TYPE = "application/json; charset=utf-8"
log = logging.getLogger("settleguard.alerts.tencent")
_THROTTLED_PREFIXES = ("LimitExceeded.", "RequestLimitExceeded")
_NOT_APPROVED = frozenset(
    {
        "FailedOperation.TemplateIncorrectOrUnapproved",
        "FailedOperation.SignatureIncorrectOrUnapproved",
        "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
        "InvalidParameterValue.TemplateParameterFormatError",
        "InvalidParameterValue.TemplateParameterLengthLimit",
        "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
    }
)
_BAD_NUMBER = frozenset(
    {
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.PhoneNumberParseFail",
        "UnsupportedOperation.UnsupportedRegion",
    }
)


def tc3_signature(
    secret_key: str,
    service: str,
    timestamp: int,
    headers: Mapping[str, str],
    body: bytes,
) -> tuple[str, str]:
    """The TC3 signature of a ``POST /`` request, and the signed header names.

    :param headers: the headers to sign (``content-type``, ``host``, ``x-tc-action``); names and
        values are signed in lower case
    :returns: ``(signature hex, "content-type;host;x-tc-action")``
    """
    lowered = {k.lower(): v.strip().lower() for k, v in headers.items()}
    names = sorted(lowered)
    signed = ";".join(names)
    canonical_headers = "".join(f"{k}:{lowered[k]}\n" for k in names)
    payload_hash = hashlib.sha256(body).hexdigest()
    canonical = f"POST\n/\n\n{canonical_headers}\n{signed}\n{payload_hash}"
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{day}/{service}/tc3_request"
    to_sign = (
        f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n"
        + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    )
    key = hmac.new(f"TC3{secret_key}".encode(), day.encode(), hashlib.sha256).digest()
    for part in (service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest(), signed


class TencentGateway:
    """``tencent+https://SECRET_ID:SECRET_KEY@sms.tencentcloudapi.com/?app_id=1400…``.

    :param template_codes: our template name -> Tencent template id (digits)
    """

    def __init__(
        self,
        secret_id: str,
        secret_key: str,
        app_id: str,
        sign_name: str,
        template_codes: Mapping[str, str],
        *,
        base_url: str = "https://sms.tencentcloudapi.com",
        region: str = "ap-guangzhou",
        timeout: float = 10.0,
    ) -> None:
        self.secret_id, self._secret_key, self.app_id = secret_id, secret_key, app_id
        self.sign_name, self.template_codes = sign_name, dict(template_codes)
        self.base_url, self.region, self.timeout = _check_base(base_url), region, timeout

    def __repr__(self) -> str:
        return f"TencentGateway({self.secret_id!r}, base_url={self.base_url!r})"

    @classmethod
    def from_url(
        cls, url: str, sign_name: str, template_codes: Mapping[str, str]
    ) -> TencentGateway:
        """Options: ``app_id`` (the SmsSdkAppId, required), ``region``, ``timeout``."""
        secret_id, secret_key, base, query = _split(url, "tencent")
        if "app_id" not in query:
            raise GatewayConfigError("tencent URL needs ?app_id=<SmsSdkAppId>")
        return cls(
            secret_id,
            secret_key,
            query["app_id"],
            sign_name,
            template_codes,
            base_url=base,
            region=query.get("region", "ap-guangzhou"),
            timeout=float(query.get("timeout", 10)),
        )

    def signed_request(
        self, action: str, body: dict[str, Any], *, now: datetime | None = None
    ) -> urllib.request.Request:
        """A signed API request for *action* with the JSON *body*."""
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int((now or datetime.now(UTC)).timestamp())
        signed_headers = {
            "Content-Type": CONTENT_TYPE,
            "Host": urlsplit(self.base_url).netloc,
            "X-TC-Action": action,
        }
        signature, names = tc3_signature(self._secret_key, SERVICE, timestamp, signed_headers, data)
        day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        headers = {
            **signed_headers,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": API_VERSION,
            "X-TC-Region": self.region,
            "Authorization": (
                f"TC3-HMAC-SHA256 Credential={self.secret_id}/{day}/{SERVICE}/tc3_request, "
                f"SignedHeaders={names}, Signature={signature}"
            ),
        }
        return urllib.request.Request(  # noqa: S310
            f"{self.base_url}/", data=data, headers=headers, method="POST"
        )

    def send_body(self, to: str, template: TemplateCall, client_ref: str) -> dict[str, Any]:
        """The SendSms body: the approved template id and the values in template order.

        :raises SendRejected: the template has no approved id
        """
        code = self.template_codes.get(template.name)
        if code is None:
            raise SendRejected(f"template {template.name} has no approved Tencent template id")
        number = to if to.startswith("+") else f"+86{to}"
        return {
            "PhoneNumberSet": [number],
            "SmsSdkAppId": self.app_id,
            "SignName": self.sign_name,
            "TemplateId": code,
            "TemplateParamSet": [value for _, value in template.params],
            "SessionContext": client_ref,
        }

    def send(
        self, to: str, text: str, *, client_ref: str, template: TemplateCall | None = None
    ) -> SendResult:
        """Call SendSms with the approved template; the ``SerialNo`` is the message id.

        :raises SendRejected: no template or no approved id (never sent as free text),
            template or signature not approved, or a bad number
        :raises GatewayUnavailable: throttled by Tencent Cloud
        """
        if template is None:
            raise SendRejected("Tencent Cloud sends approved templates only; this message has none")
        body = self.send_body(to, template, client_ref)
        answer = _response(_request(self.signed_request("SendSms", body), self.timeout))
        statuses = answer.get("SendStatusSet")
        if (
            not isinstance(statuses, list)
            or len(statuses) != 1
            or not isinstance(statuses[0], dict)
        ):
            raise SendUncertain("provider answer has no SendStatusSet entry")
        status = statuses[0]
        code = str(status.get("Code", ""))
        if code != "Ok":
            raise _error(code, str(status.get("Message", "")))
        serial = status.get("SerialNo")
        if not isinstance(serial, str) or not serial:
            raise SendUncertain("provider answer has no SerialNo")
        seg = segment(text)
        return SendResult((serial,), seg.part_count, seg.encoding)

    def poll_receipts(self) -> list[DeliveryReceipt]:
        """Pull the delivery reports Tencent holds for us (``PullSmsSendStatus``).

        A failed pull is logged and yields nothing: the reports wait at Tencent for the next.
        """
        body = {"Limit": 100, "SmsSdkAppId": self.app_id}
        try:
            answer = _response(
                _request(self.signed_request("PullSmsSendStatus", body), self.timeout)
            )
        except GatewayError as exc:
            log.warning("pulling Tencent delivery reports failed: %s", exc)
            return []
        receipts = []
        for item in answer.get("PullSmsSendStatusSet") or []:
            if not isinstance(item, dict) or not isinstance(item.get("SerialNo"), str):
                continue
            ok = item.get("ReportStatus") == "SUCCESS"
            receipts.append(
                DeliveryReceipt(
                    item["SerialNo"],
                    "delivered" if ok else "failed",
                    None if ok else str(item.get("Description", "FAIL"))[:80],
                    raw_state=str(item.get("ReportStatus", "")),
                )
            )
        return receipts

    def lookup(self, client_ref: str) -> SendResult | None:
        """Tencent cannot be asked by our reference: None."""
        return None

    def close(self) -> None:
        """Nothing to release."""


def _response(answer: Any) -> dict[str, Any]:
    """The ``Response`` object, or the request-level error as a gateway error."""
    response = answer.get("Response") if isinstance(answer, dict) else None
    if not isinstance(response, dict):
        raise SendUncertain("provider answer has no Response object")
    error = response.get("Error")
    if isinstance(error, dict):
        raise _error(str(error.get("Code", "")), str(error.get("Message", "")))
    return response


def _error(code: str, message: str) -> GatewayError:
    """Tencent's refusal as what the dispatcher may do next."""
    if code.startswith(_THROTTLED_PREFIXES):
        return GatewayUnavailable(f"Tencent Cloud throttled the send: {code}")
    if code in _NOT_APPROVED:
        return SendRejected(f"template or signature not approved by Tencent Cloud: {code}")
    if code in _BAD_NUMBER:
        return SendRejected(f"invalid number for Tencent Cloud: {code}")
    if not code:
        return SendUncertain("provider answer has no Code")
    return SendRejected(f"Tencent Cloud refused: {code} {message[:120]}")
