"""HTTP SMS providers: what they share (requests, receipts kept from callbacks) and Twilio.

Aliyun and Tencent Cloud live in :mod:`.aliyun_gateway` and :mod:`.tencent_gateway`.

Twilio (public REST docs): ``POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json``, form
fields ``To``/``From``/``Body``/``StatusCallback``, HTTP basic auth with the account SID and auth
token; status callbacks are form POSTs signed with ``X-Twilio-Signature`` = base64 HMAC-SHA1,
keyed by the auth token, of the full callback URL followed by every POST parameter name and
value, sorted by name.

No provider API takes an idempotency key for sending, which is why the dispatcher never retries a
send whose outcome is unknown (a timeout after the request left us).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

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
    normalise_state,
)

log = logging.getLogger("settleguard.alerts.http")


class SignatureError(GatewayError):
    """A provider callback's signature did not verify: ignore the callback."""


def _check_base(base_url: str) -> str:
    if not base_url.startswith(("http://", "https://")):
        raise GatewayConfigError(f"provider base URL must be http(s), not {base_url!r}")
    return base_url.rstrip("/")


def _post(url: str, data: bytes, headers: dict[str, str], timeout: float) -> Any:
    # url is built from a base checked by _check_base: http(s) only
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
    return _request(request, timeout)


def _request(request: urllib.request.Request, timeout: float) -> Any:
    """Perform *request*; map failures to what the dispatcher may do next."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        body = exc.read()[:300].decode("utf-8", "replace")
        if exc.code == 429 or exc.code >= 500:
            # the provider answered but did not take it: nothing went out
            raise GatewayUnavailable(f"provider answered HTTP {exc.code}") from None
        raise SendRejected(f"provider refused: HTTP {exc.code} {body}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError | socket.gaierror):
            raise GatewayUnavailable(f"provider unreachable: {exc.reason}") from None
        raise SendUncertain(f"request may have reached the provider: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise SendUncertain(f"no answer from the provider: {type(exc).__name__}") from None
    except ValueError:
        raise SendUncertain("provider answered with something that is not JSON") from None


class _Receipts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._receipts: list[DeliveryReceipt] = []

    def _add(self, receipt: DeliveryReceipt) -> None:
        with self._lock:
            self._receipts.append(receipt)

    def poll_receipts(self) -> list[DeliveryReceipt]:
        """Receipts delivered by callbacks since the last call."""
        with self._lock:
            receipts, self._receipts = self._receipts, []
        return receipts

    def lookup(self, client_ref: str) -> SendResult | None:
        """These providers cannot be asked by our reference: None."""
        return None

    def close(self) -> None:
        """Nothing to release."""


def _split(url: str, scheme: str) -> tuple[str, str, str, dict[str, str]]:
    parts = urlsplit(url)
    if parts.username is None or parts.password is None or not parts.hostname:
        raise GatewayConfigError(f"{scheme} URL needs {scheme}+https://ID:SECRET@host/?…")
    transport = parts.scheme.split("+", 1)[1]
    try:
        port = parts.port
    except ValueError as exc:
        raise GatewayConfigError(f"bad {scheme} URL: {exc}") from None
    base = f"{transport}://{parts.hostname}" + (f":{port}" if port else "")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return unquote(parts.username), unquote(parts.password), base, query


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` value for a callback to *url* with form *params*."""
    payload = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class TwilioGateway(_Receipts):
    """Twilio-shaped sender: ``twilio+https://SID:TOKEN@api.twilio.com/?from=+1…``."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        sender: str,
        *,
        base_url: str = "https://api.twilio.com",
        status_callback: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.account_sid, self._auth_token, self.sender = account_sid, auth_token, sender
        self.base_url, self.status_callback = _check_base(base_url), status_callback
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"TwilioGateway({self.account_sid!r}, base_url={self.base_url!r})"

    @classmethod
    def from_url(cls, url: str) -> TwilioGateway:
        """Options: ``from`` (sender), ``callback`` (our status callback URL), ``timeout``."""
        sid, token, base, query = _split(url, "twilio")
        if "from" not in query:
            raise GatewayConfigError("twilio URL needs ?from=<sender number or id>")
        return cls(
            sid,
            token,
            query["from"],
            base_url=base,
            status_callback=query.get("callback"),
            timeout=float(query.get("timeout", 10)),
        )

    def send(
        self, to: str, text: str, *, client_ref: str, template: TemplateCall | None = None
    ) -> SendResult:
        """Create one message; Twilio splits it into parts itself."""
        form = {"To": to, "From": self.sender, "Body": text}
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        credentials = base64.b64encode(f"{self.account_sid}:{self._auth_token}".encode()).decode()
        answer = _post(
            f"{self.base_url}/2010-04-01/Accounts/{quote(self.account_sid)}/Messages.json",
            urlencode(form).encode(),
            {
                "Authorization": f"Basic {credentials}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            self.timeout,
        )
        sid = answer.get("sid") if isinstance(answer, dict) else None
        if not isinstance(sid, str):
            raise SendUncertain("provider answer has no message sid")
        seg = segment(text)
        log.info("provider accepted %s as %s", client_ref, sid)
        return SendResult((sid,), seg.part_count, seg.encoding)

    def handle_status_callback(
        self, url: str, params: Mapping[str, str], signature: str
    ) -> DeliveryReceipt:
        """Verify and record a status callback.

        :param url: the full URL Twilio called (scheme, host, path and query)
        :raises SignatureError: the signature does not match
        """
        expected = twilio_signature(self._auth_token, url, params)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise SignatureError("X-Twilio-Signature does not match")
        receipt = DeliveryReceipt(
            params.get("MessageSid", ""),
            normalise_state(params.get("MessageStatus", "")),
            params.get("ErrorCode") or None,
            raw_state=params.get("MessageStatus", ""),
        )
        self._add(receipt)
        return receipt
