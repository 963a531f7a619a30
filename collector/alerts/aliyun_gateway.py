"""Aliyun SMS (短信服务, Dysms): SendSms with an approved template, signed with ACS3-HMAC-SHA256.

``SendSms`` (API version 2017-05-25) takes ``PhoneNumbers``, ``SignName`` (the registered
signature, which Aliyun puts in front of the text), ``TemplateCode`` (the approved template's
``SMS_…`` code), ``TemplateParam`` (a JSON object of the template's variables by name) and
``OutId`` (our reference). Aliyun's current request-signing documentation is its "V3" method
(``ACS3-HMAC-SHA256``), and it asks callers of the older RPC ``HMAC-SHA1`` signature to move to
it; we sign with V3 (see :func:`acs3_signature`):

    CanonicalRequest = METHOD \\n path \\n sorted, RFC 3986-encoded query \\n
                       "name:value\\n" per signed header, sorted \\n signed header names \\n
                       hex SHA-256 of the body
    Signature        = hex HMAC-SHA256(AccessKeySecret, "ACS3-HMAC-SHA256\\n" +
                       hex SHA-256 of CanonicalRequest)

sent as ``Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=…,
Signature=…``, the signed headers being ``host`` and every ``x-acs-*`` header. The parameters
travel in the query string with an empty body, as Aliyun's own example does. (Source: Alibaba
Cloud, "V3 request structure and signature", help.aliyun.com; SendSms API reference.)

Answers: ``Code`` ``OK`` with a ``BizId`` (the id receipts quote); throttling codes mean "later",
template, signature and number errors are refused for good and escalate (:data:`ERRORS`).
Receipts are pushed to our callback as a JSON array (``biz_id``, ``success``, ``err_code``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from settleguard.collector.alerts.encoding import segment
from settleguard.collector.alerts.gateway import (
    DeliveryReceipt,
    GatewayError,
    GatewayUnavailable,
    SendRejected,
    SendResult,
    SendUncertain,
    TemplateCall,
)
from settleguard.collector.alerts.http_gateways import _check_base, _Receipts, _request, _split

API_VERSION = "2017-05-25"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_THROTTLED = frozenset(
    {"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "Throttling.User", "Throttling"}
)
_NOT_APPROVED = frozenset(
    {
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_SIGN_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.TEMPLATE_PARAMS_ILLEGAL",
        "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
    }
)
_BAD_NUMBER = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT"})


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun's signatures require (space ``%20``, ``~`` kept)."""
    return quote(value, safe="~")


def acs3_signature(
    secret: str,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body_sha256: str = EMPTY_SHA256,
) -> tuple[str, str]:
    """The V3 signature over a request, and the signed header names.

    :param headers: every header to sign, any case (``host`` and the ``x-acs-*`` ones)
    :returns: ``(signature hex, "host;x-acs-…")``
    """
    canonical_query = "&".join(
        f"{percent_encode(k)}={percent_encode(query[k])}" for k in sorted(query)
    )
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    signed = ";".join(sorted(lowered))
    canonical_headers = "".join(f"{k}:{lowered[k]}\n" for k in sorted(lowered))
    canonical = f"{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed}\n{body_sha256}"
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    digest = hmac.new(secret.encode(), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return digest, signed


class AliyunGateway(_Receipts):
    """``aliyun+https://KEY:SECRET@dysmsapi.aliyuncs.com`` with approved codes per template.

    :param template_codes: our template name -> Aliyun ``SMS_…`` code
    """

    def __init__(
        self,
        access_key_id: str,
        secret: str,
        sign_name: str,
        template_codes: Mapping[str, str],
        *,
        base_url: str = "https://dysmsapi.aliyuncs.com",
        timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.access_key_id, self._secret = access_key_id, secret
        self.sign_name, self.template_codes = sign_name, dict(template_codes)
        self.base_url, self.timeout = _check_base(base_url), timeout

    def __repr__(self) -> str:
        return f"AliyunGateway({self.access_key_id!r}, base_url={self.base_url!r})"

    @classmethod
    def from_url(cls, url: str, sign_name: str, template_codes: Mapping[str, str]) -> AliyunGateway:
        """Build from the URL (credentials, endpoint, ``timeout``) and the SMS settings."""
        key, secret, base, query = _split(url, "aliyun")
        return cls(
            key,
            secret,
            sign_name,
            template_codes,
            base_url=base,
            timeout=float(query.get("timeout", 10)),
        )

    def signed_request(
        self,
        to: str,
        template: TemplateCall,
        client_ref: str,
        *,
        now: datetime | None = None,
        nonce: str | None = None,
    ) -> urllib.request.Request:
        """The SendSms request with its Authorization header.

        :raises SendRejected: the template has no approved code
        """
        code = self.template_codes.get(template.name)
        if code is None:
            raise SendRejected(f"template {template.name} has no approved Aliyun code")
        query = {
            "OutId": client_ref,
            "PhoneNumbers": to.removeprefix("+86").lstrip("+"),
            "SignName": self.sign_name,
            "TemplateCode": code,
            "TemplateParam": json.dumps(dict(template.params), ensure_ascii=False),
        }
        headers = {
            "host": urlsplit(self.base_url).netloc,
            "x-acs-action": "SendSms",
            "x-acs-content-sha256": EMPTY_SHA256,
            "x-acs-date": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "x-acs-signature-nonce": nonce or secrets.token_hex(16),
            "x-acs-version": API_VERSION,
        }
        signature, signed = acs3_signature(self._secret, "POST", "/", query, headers)
        headers["Authorization"] = (
            f"ACS3-HMAC-SHA256 Credential={self.access_key_id},SignedHeaders={signed},"
            f"Signature={signature}"
        )
        encoded = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in query.items())
        url = f"{self.base_url}/?{encoded}"
        return urllib.request.Request(url, data=b"", headers=headers, method="POST")  # noqa: S310

    def send(
        self, to: str, text: str, *, client_ref: str, template: TemplateCall | None = None
    ) -> SendResult:
        """Call SendSms with the approved template; the ``BizId`` is the message id.

        :raises SendRejected: no template or no approved code (never sent as free text),
            template or signature not approved, or a bad number
        :raises GatewayUnavailable: throttled by Aliyun
        """
        if template is None:
            raise SendRejected("Aliyun sends approved templates only; this message has none")
        answer = _request(self.signed_request(to, template, client_ref), self.timeout)
        if not isinstance(answer, dict):
            raise SendUncertain("provider answer is not a JSON object")
        code = str(answer.get("Code", ""))
        if code != "OK":
            raise _error(code, str(answer.get("Message", "")))
        biz_id = answer.get("BizId")
        if not isinstance(biz_id, str):
            raise SendUncertain("provider answer has no BizId")
        seg = segment(text)
        return SendResult((biz_id,), seg.part_count, seg.encoding)

    def handle_report(self, body: bytes) -> list[DeliveryReceipt]:
        """Record a pushed receipt report (a JSON array of ``biz_id``/``success``/``err_code``).

        :raises GatewayError: the body is not such a report
        """
        try:
            reports = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise GatewayError(f"receipt report is not JSON: {exc}") from None
        if not isinstance(reports, list):
            raise GatewayError("receipt report must be a JSON array")
        receipts = []
        for index, item in enumerate(reports):
            if not isinstance(item, dict) or not isinstance(item.get("biz_id"), str):
                raise GatewayError(f"receipt report item {index} has no biz_id")
            ok = item.get("success") in (True, "true")
            code = str(item.get("err_code", ""))
            receipt = DeliveryReceipt(
                item["biz_id"],
                "delivered" if ok else "failed",
                None if ok else code,
                raw_state=code,
            )
            self._add(receipt)
            receipts.append(receipt)
        return receipts


def _error(code: str, message: str) -> GatewayError:
    """Aliyun's refusal as what the dispatcher may do next."""
    if code in _THROTTLED:
        return GatewayUnavailable(f"Aliyun throttled the send: {code}")
    if code in _NOT_APPROVED:
        return SendRejected(f"template or signature not approved by Aliyun: {code}")
    if code in _BAD_NUMBER:
        return SendRejected(f"invalid number for Aliyun: {code}")
    if not code:
        return SendUncertain("provider answer has no Code")
    return SendRejected(f"Aliyun refused: {code} {message[:120]}")
