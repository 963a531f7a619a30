"""Where and how the agent connects to the broker, parsed from a URL.

Kept apart from :mod:`settleguard.agent.sync` so that reading it (``agent status``) does not
load the MQTT client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from settleguard.agent.errors import UsageError


@dataclass(frozen=True, slots=True)
class BrokerTarget:
    """Where and how to connect. Build it with :meth:`from_url`."""

    host: str
    port: int
    tls: bool
    username: str = ""  # may stay empty with a client certificate (broker: identity = CN)
    password: str = ""
    protocol: int = 5  # 5 = MQTT v5, 4 = MQTT 3.1.1
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> BrokerTarget:
        """Parse ``mqtt://host:port`` or ``mqtts://host:port`` (TLS).

        :raises agent.errors.UsageError: for any other scheme or a missing host
        """
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise UsageError(f"broker URL {url!r}: use mqtt://host:port or mqtts://host:port")
        tls = parts.scheme == "mqtts"
        return cls(parts.hostname, parts.port or (8883 if tls else 1883), tls, **kwargs)
