"""One interface for every SMS gateway, chosen by URL (``SETTLEGUARD_SMS_URL``).

The dispatcher only sees :class:`SmsGateway`: ``send`` returns the provider's message id per
part, or raises one of three errors that say what the dispatcher may do next:

- :class:`GatewayUnavailable` - nothing left our process; safe to try again later;
- :class:`SendRejected` - the provider refused the message for good; do not retry;
- :class:`SendUncertain` - something may have gone out; never resend automatically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

ReceiptState = Literal["delivered", "failed", "expired", "pending"]


class GatewayError(Exception):
    """Base class for gateway failures."""


class GatewayConfigError(GatewayError):
    """The gateway URL or its options are wrong."""


class GatewayUnavailable(GatewayError):
    """The message was not handed to the provider; retrying later cannot double-send."""


class SendRejected(GatewayError):
    """The provider refused the message permanently (bad number, bad template...)."""


class SendUncertain(GatewayError):
    """Some or all parts may have been sent; the outcome is unknown.

    :param accepted: provider ids of the parts we know were accepted
    """

    def __init__(self, message: str, accepted: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.accepted = accepted


@dataclass(frozen=True, slots=True)
class SendResult:
    """Provider ids, one per part accepted (for SMPP), or one for the whole message (HTTP)."""

    message_ids: tuple[str, ...]
    parts: int = 1
    encoding: str = "gsm7"


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """A delivery report for one provider message id.

    :param state: normalised ``delivered``/``failed``/``expired``, or ``pending`` for interim
    :param error: provider error code or text, if any
    """

    message_id: str
    state: ReceiptState
    error: str | None = None
    raw_state: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class TemplateCall:
    """An approved template by our name, with its parameters in template order.

    Template gateways (Aliyun, Tencent Cloud) send this and look up the provider's code for
    *name*; free-text gateways (SMPP, Twilio, file) send the text instead.
    """

    name: str
    params: tuple[tuple[str, str], ...]


@runtime_checkable
class SmsGateway(Protocol):
    """What the dispatcher needs from a gateway."""

    def send(
        self, to: str, text: str, *, client_ref: str, template: TemplateCall | None = None
    ) -> SendResult:
        """Submit one message; return once the provider accepted every part.

        :param text: the SMS as the merchant reads it, signature included
        :param template: the same message as an approved template, where there is one
        """
        ...

    def poll_receipts(self) -> list[DeliveryReceipt]:
        """Delivery receipts received since the last call."""
        ...

    def lookup(self, client_ref: str) -> SendResult | None:
        """Whether a message with *client_ref* went out (None: the gateway cannot tell)."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...


# SMPP 3.4 Appendix B "stat" values and §5.2.28 message_state names, normalised.
_STATE_WORDS: dict[str, ReceiptState] = {
    "DELIVRD": "delivered",
    "DELIVERED": "delivered",
    "EXPIRED": "expired",
    "DELETED": "failed",
    "UNDELIV": "failed",
    "UNDELIVERABLE": "failed",
    "REJECTD": "failed",
    "REJECTED": "failed",
    "FAILED": "failed",
    "UNDELIVERED": "failed",
    "ACCEPTD": "pending",
    "ENROUTE": "pending",
    "UNKNOWN": "pending",
    "SENT": "pending",
    "QUEUED": "pending",
    "SENDING": "pending",
}


def normalise_state(word: str) -> ReceiptState:
    """Map a provider's state word (DELIVRD, undelivered, ...) to our receipt state."""
    return _STATE_WORDS.get(word.strip().upper(), "pending")


_RECEIPT_FIELD = re.compile(r"(id|stat|err):\s*(\S+)", re.IGNORECASE)


def parse_receipt_text(text: str) -> DeliveryReceipt | None:
    """Parse an SMPP 3.4 Appendix B receipt text (``id:… sub:… stat:DELIVRD err:…``).

    :returns: the receipt, or None when the text is not a receipt
    """
    fields: dict[str, str] = {}
    for match in _RECEIPT_FIELD.finditer(text):
        fields.setdefault(match.group(1).lower(), match.group(2))
    if "id" not in fields or "stat" not in fields:
        return None
    error = fields.get("err")
    return DeliveryReceipt(
        fields["id"], normalise_state(fields["stat"]), error, raw_state=fields["stat"]
    )


def message_id_aliases(message_id: str) -> set[str]:
    """Forms under which a receipt may quote *message_id*.

    Many SMSCs answer submit_sm with a hex id and quote it in decimal in the receipt text (or
    the reverse), with or without leading zeros; we match on any of these forms.
    """
    base = message_id.strip().lower()
    aliases = {base, base.lstrip("0") or "0"}
    if re.fullmatch(r"[0-9a-f]{1,32}", base):
        aliases.add(str(int(base, 16)))
    if re.fullmatch(r"[0-9]{1,39}", base):
        aliases.add(format(int(base), "x"))
    return aliases


#: Gateways that send only provider-approved templates (never free text).
TEMPLATE_SCHEMES = {
    "aliyun+https": "aliyun",
    "aliyun+http": "aliyun",
    "tencent+https": "tencent",
    "tencent+http": "tencent",
}


def template_provider(url: str) -> str | None:
    """``"aliyun"``/``"tencent"`` when *url* names a template provider, else None."""
    return TEMPLATE_SCHEMES.get(urlsplit(url).scheme)
