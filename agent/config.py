"""The agent's TOML configuration: defaults, loading with clear errors, and ``init``.

Every setting has a default, so a fresh agent runs without a file. ``settleguard agent init``
writes :data:`DEFAULT_TOML` (every setting, commented) to ``<home>/config.toml``. Unknown
sections or keys and wrong types are refused with the file, section and key named, so a typo
never silently falls back to a default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from settleguard.agent.errors import UsageError


@dataclass(frozen=True, slots=True)
class TerminalSettings:
    """``[terminal]``: where the terminal is and which protocol it speaks."""

    port: str = ""
    protocol: str = "zvt"
    baud: int = 0  # 0: the protocol's default
    password: str = ""  # ZVT password for End-of-Day; empty: the client's default


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    """``[collector]``: the collector's base URL (enrollment, key rotation)."""

    url: str = ""
    timeout_s: int = 15


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """``[broker]``: overrides for what enrollment returned; TLS files."""

    url: str = ""  # mqtt://host:1883 or mqtts://host:8883; empty: from enrollment
    username: str = ""
    password: str = ""
    protocol: int = 0  # 5 (MQTT v5) or 4 (3.1.1); 0: from enrollment, else 5
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """``[sync]``: the MQTT sync loop."""

    window: int = 500  # records published and not yet app-acked (100 left the link idle
    # waiting for acks: benchmarks/agent_backlog.py flushed 2.4k/s at 100, 3.0k/s at 500)
    ack_timeout_s: float = 30.0  # resend an unacked record after this long
    keepalive_s: int = 60
    session_expiry_s: int = 7 * 24 * 3600
    backoff_min_s: float = 1.0
    backoff_max_s: float = 300.0
    connect_on_demand: bool = False
    on_demand_interval_s: float = 300.0
    heartbeat_interval_s: float = 60.0


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """``[outbox]``: retention of acked rows and the disk budget."""

    retention_days: float = 30.0
    disk_budget_mb: float = 256.0


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    """``[schedule]``: optional daily End-of-Day, local time ``HH:MM``; empty: off."""

    end_of_day: str = ""


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """The whole configuration."""

    terminal: TerminalSettings = field(default_factory=TerminalSettings)
    collector: CollectorSettings = field(default_factory=CollectorSettings)
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)


DEFAULT_TOML = """\
# settleguard agent configuration. Every setting shows its default; uncomment to change.
# Docs: docs/agent.md

[terminal]
# Serial port by pyserial URL: /dev/ttyUSB0, /dev/serial/by-path/..., socket://host:20007
# port = ""
# protocol = "zvt"          # mispos, zvt or poslink
# baud = 0                  # 0 = protocol default (9600)
# password = ""             # ZVT password for the scheduled End-of-Day (empty = default)

[collector]
# Base URL of the collector, used by `enroll` and to finish enrollment later.
# url = ""
# timeout_s = 15

[broker]
# Normally filled in by enrollment; set here only to override.
# url = ""                  # mqtt://host:1883 or mqtts://host:8883 (TLS)
# username = ""
# password = ""
# protocol = 0              # 5 = MQTT v5, 4 = MQTT 3.1.1, 0 = as enrollment said (else 5)
# ca_file = ""              # CA bundle for mqtts:// (empty: system CAs)
# cert_file = ""            # client certificate (PEM); docs/agent.md "TLS and client certificates"
# key_file = ""             # its private key (PEM, unencrypted, mode 0600)

[sync]
# window = 500              # records in flight (published, not yet acked by the collector)
# ack_timeout_s = 30.0      # resend a record the collector has not acked after this long
# keepalive_s = 60
# session_expiry_s = 604800 # broker keeps our ack subscription this long while we are away
# backoff_min_s = 1.0       # reconnect back-off (jittered, doubling up to the max)
# backoff_max_s = 300.0
# connect_on_demand = false # connect, send, wait for acks, disconnect (for huge fleets)
# on_demand_interval_s = 300.0
# heartbeat_interval_s = 60.0

[outbox]
# retention_days = 30.0     # keep acked records this long (for `status` and audits)
# disk_budget_mb = 256.0    # above this, new non-batch records are refused (batches never)

[schedule]
# end_of_day = ""           # daily End-of-Day at local time "HH:MM"; empty = off
"""


def _section(name: str, cls: type, values: Any, path: Path) -> Any:
    if not isinstance(values, dict):
        raise UsageError(f"{path}: [{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise UsageError(f"{path}: [{name}] unknown setting {key!r}")
        default = known[key].default
        expected = type(default)
        if expected is float and type(value) is int:
            value = float(value)
        if type(value) is not expected:
            raise UsageError(
                f"{path}: [{name}] {key} must be {expected.__name__}, got {type(value).__name__}"
            )
        kwargs[key] = value
    return cls(**kwargs)


def load_config(path: Path) -> AgentConfig:
    """Load ``path``; a missing file means all defaults.

    :raises agent.errors.UsageError: on TOML syntax errors (with line) or unknown/mistyped keys
    """
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return AgentConfig()
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read ({exc})") from exc
    sections: dict[str, type] = {
        "terminal": TerminalSettings,
        "collector": CollectorSettings,
        "broker": BrokerSettings,
        "sync": SyncSettings,
        "outbox": OutboxSettings,
        "schedule": ScheduleSettings,
    }
    kwargs: dict[str, Any] = {}
    for name, values in data.items():
        if name not in sections:
            raise UsageError(f"{path}: unknown section [{name}]")
        kwargs[name] = _section(name, sections[name], values, path)
    config = AgentConfig(**kwargs)
    _check(config, path)
    return config


def _check(config: AgentConfig, path: Path) -> None:
    if config.broker.protocol not in (0, 4, 5):
        raise UsageError(f"{path}: [broker] protocol must be 5, 4 or 0")
    if config.sync.window < 1:
        raise UsageError(f"{path}: [sync] window must be at least 1")
    eod = config.schedule.end_of_day
    if eod and not _parse_hhmm(eod):
        raise UsageError(f"{path}: [schedule] end_of_day must be HH:MM, got {eod!r}")


def _parse_hhmm(text: str) -> tuple[int, int] | None:
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        return None
    hour, minute = int(parts[0]), int(parts[1])
    return (hour, minute) if hour < 24 and minute < 60 else None


def end_of_day_time(config: AgentConfig) -> tuple[int, int] | None:
    """The scheduled End-of-Day as ``(hour, minute)``, or ``None`` when off."""
    return _parse_hhmm(config.schedule.end_of_day) if config.schedule.end_of_day else None


def write_default_config(path: Path, *, force: bool = False) -> bool:
    """Write the commented default config; keep an existing file unless ``force``.

    :return: ``True`` if written
    """
    if path.exists() and not force:
        return False
    path.write_text(DEFAULT_TOML, "utf-8")
    return True
