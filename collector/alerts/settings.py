"""SMS settings: the gateway URL, the registered signature, approved template codes, the acquirer.

Plain data read from the collector's configuration (``SETTLEGUARD_*`` environment, instance
file), so the CLI, the web app's callbacks and tests build the same thing:

- ``SMS_URL`` -- which gateway (``aliyun+https://…``, ``tencent+https://…``, ``smpp://…``,
  ``twilio+https://…``, ``file:///…``; docs/alerts.md);
- ``SMS_SIGN_NAME`` -- the signature registered with the provider (default 结算守护); template
  providers add it from ``SignName``, free-text gateways get it written in front of the text;
- ``SMS_TEMPLATE_CODES`` -- a TOML file of approved codes per provider (:mod:`.approval`);
- ``SMS_ACQUIRER`` -- the acquirer's brand as merchants know it (default 收单机构);
- ``SMS_SIGN_NAME_EN`` -- what English texts start with on free-text gateways (SettleGuard).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from settleguard.collector.alerts.approval import load_codes, missing_codes
from settleguard.collector.alerts.gateway import GatewayConfigError, SmsGateway, template_provider
from settleguard.collector.alerts.planner import (
    DEFAULT_ACQUIRER,
    DEFAULT_SIGN_NAME,
    DEFAULT_SIGN_NAME_EN,
    Wording,
    sendable_templates,
)
from settleguard.collector.alerts.policy import AlertPolicy
from settleguard.collector.alerts.providers import gateway_from_url
from settleguard.collector.alerts.templates import TemplateError, check_sign_name

ENV_PREFIX = "SETTLEGUARD_"


class SmsConfigError(GatewayConfigError):
    """The SMS settings cannot send what the policy needs; the message says what is missing."""


@dataclass(frozen=True, slots=True)
class SmsSettings:
    """What sending merchant SMS needs besides the database."""

    url: str | None = None
    sign_name: str = DEFAULT_SIGN_NAME
    template_codes_file: Path | None = None
    acquirer: str = DEFAULT_ACQUIRER
    sign_name_en: str = DEFAULT_SIGN_NAME_EN

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None = None) -> SmsSettings:
        """From a collector configuration, falling back to the ``SETTLEGUARD_`` variables of the same names.

        :raises SmsConfigError: a signature or acquirer name that cannot be sent
        """

        def get(key: str) -> str | None:
            value = (config or {}).get(key) or os.environ.get(ENV_PREFIX + key)
            return None if value in (None, "") else str(value)

        codes = get("SMS_TEMPLATE_CODES")
        settings = cls(
            get("SMS_URL"),
            get("SMS_SIGN_NAME") or DEFAULT_SIGN_NAME,
            Path(codes) if codes else None,
            get("SMS_ACQUIRER") or DEFAULT_ACQUIRER,
            get("SMS_SIGN_NAME_EN") or DEFAULT_SIGN_NAME_EN,
        )
        try:
            check_sign_name(settings.sign_name)
        except TemplateError as exc:
            raise SmsConfigError(f"SMS_SIGN_NAME: {exc}") from None
        if not 1 <= len(settings.acquirer) <= 6:
            raise SmsConfigError("SMS_ACQUIRER must be 1-6 characters (it goes into templates)")
        return settings

    @property
    def wording(self) -> Wording:
        """The signature and acquirer name the planner writes into texts."""
        templates_only = template_provider(self.url or "") is not None
        return Wording(self.sign_name, self.acquirer, self.sign_name_en, templates_only)

    def template_codes(self) -> dict[str, str]:
        """Approved codes for the URL's provider; ``{}`` for free-text gateways.

        :raises SmsConfigError: a template provider without a readable codes file
        """
        provider = template_provider(self.url or "")
        if provider is None:
            return {}
        if self.template_codes_file is None:
            raise SmsConfigError(
                f"SMS_URL names {provider}, which sends approved templates only: set"
                " SETTLEGUARD_SMS_TEMPLATE_CODES to the file of approved codes"
                " (docs/alerts.md; `settleguard collector alerts templates export`)"
            )
        try:
            return load_codes(self.template_codes_file, provider)
        except TemplateError as exc:
            raise SmsConfigError(str(exc)) from None

    def check_ready(self, policy: AlertPolicy) -> None:
        """Refuse to run when a template the policy can send has no approved code.

        :raises SmsConfigError: naming every such template (never a free-text fallback)
        """
        provider = template_provider(self.url or "")
        if provider is None:
            return
        missing = missing_codes(self.template_codes(), sendable_templates(policy))
        if missing:
            raise SmsConfigError(
                f"no approved {provider} template code for {', '.join(missing)} in"
                f" {self.template_codes_file}; register them (alerts templates export) and add"
                " their codes before running"
            )

    def gateway(self) -> SmsGateway:
        """The configured gateway.

        :raises GatewayConfigError: no URL, an unusable one, or missing template codes
        """
        if not self.url:
            raise SmsConfigError("SETTLEGUARD_SMS_URL is not set (e.g. file:///tmp/sms.jsonl)")
        return gateway_from_url(self.url, self.sign_name, self.template_codes())
