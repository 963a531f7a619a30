"""The SMS gateway a ``SETTLEGUARD_SMS_URL`` names (its scheme picks the provider).

Each implementation imports the interface in :mod:`collector.alerts.gateway`; this module is
the only one that imports the implementations, each only when its scheme is asked for.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from settleguard.collector.alerts.gateway import TEMPLATE_SCHEMES, GatewayConfigError, SmsGateway


def gateway_from_url(
    url: str, sign_name: str = "", template_codes: dict[str, str] | None = None
) -> SmsGateway:
    """Build the gateway named by *url*.

    Schemes: ``file:///path``, ``smpp://user:pw@host:port?bind=trx|tx&window=10&sar=0``,
    ``twilio+https://SID:TOKEN@host/?from=…``, ``aliyun+https://KEY:SECRET@host/``,
    ``tencent+https://SECRET_ID:SECRET_KEY@host/?app_id=…`` (``+http`` for a local test
    provider).

    :param sign_name: the registered signature, for the template providers
    :param template_codes: our template name -> the provider's approved code, for them
    :raises GatewayConfigError: unknown scheme or missing options
    """
    try:
        return _build(url, urlsplit(url).scheme, sign_name, template_codes or {})
    except ValueError as exc:  # urllib's own complaints about a malformed URL
        raise GatewayConfigError(f"bad SETTLEGUARD_SMS_URL: {exc}") from None


def _build(url: str, scheme: str, sign_name: str, codes: dict[str, str]) -> SmsGateway:
    if scheme == "file":
        from settleguard.collector.alerts.file_gateway import FileGateway

        return FileGateway.from_url(url)
    if scheme == "smpp":
        from settleguard.collector.alerts.smpp_gateway import SmppGateway

        return SmppGateway.from_url(url)
    if scheme in ("twilio+https", "twilio+http"):
        from settleguard.collector.alerts.http_gateways import TwilioGateway

        return TwilioGateway.from_url(url)
    if TEMPLATE_SCHEMES.get(scheme) == "aliyun":
        from settleguard.collector.alerts.aliyun_gateway import AliyunGateway

        return AliyunGateway.from_url(url, sign_name, codes)
    if TEMPLATE_SCHEMES.get(scheme) == "tencent":
        from settleguard.collector.alerts.tencent_gateway import TencentGateway

        return TencentGateway.from_url(url, sign_name, codes)
    raise GatewayConfigError(f"unknown SMS gateway scheme {scheme!r} in SETTLEGUARD_SMS_URL")
