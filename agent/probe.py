"""``agent probe``: find the terminal's port, protocol and line settings, or say why not.

Without a port it lists candidate serial ports (with USB vendor/product where the kernel knows
them) and tries each. For each port it tries the protocols and baud rates in the order a site
is most likely to use, stops at the first answer, and keeps the reason each attempt failed so
the technician sees "permission denied" or "busy" instead of a bare "nothing found".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from agent.errors import AgentError, NoAnswer, PortBusy, PortNotFound, PortPermissionDenied
from agent.ports import SerialSettings, is_network_url, open_port
from agent.terminal_link import default_settings

#: (protocol, baud) in the order tried: the factory defaults first.
DEFAULT_ATTEMPTS: tuple[tuple[str, int], ...] = (
    ("mispos", 9600),
    ("zvt", 9600),
    ("poslink", 9600),
    ("poslink", 115200),
    ("zvt", 19200),
    ("poslink", 19200),
    ("zvt", 38400),
    ("poslink", 38400),
    ("zvt", 115200),
)
# Errors that no other baud rate or protocol can cure: stop trying this port.
_FATAL = (PortNotFound, PortPermissionDenied, PortBusy)


@dataclass(frozen=True, slots=True)
class PortInfo:
    """A candidate port as the OS describes it."""

    device: str
    description: str | None = None
    usb_id: str | None = None  # "0403:6001"
    serial_number: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One protocol/baud tried on a port, and how it ended."""

    protocol: str
    settings: str
    ok: bool
    detail: str


@dataclass(slots=True)
class ProbeResult:
    """Everything learnt about one port."""

    port: PortInfo
    attempts: list[Attempt] = field(default_factory=list)
    protocol: str | None = None
    settings: str | None = None
    terminal_id: str | None = None

    @property
    def found(self) -> bool:
        """True when a terminal answered."""
        return self.protocol is not None

    def to_json(self) -> dict[str, object]:
        """The ``--json`` form."""
        return {
            "port": self.port.device,
            "description": self.port.description,
            "usb_id": self.port.usb_id,
            "found": self.found,
            "protocol": self.protocol,
            "settings": self.settings,
            "terminal_id": self.terminal_id,
            "attempts": [
                {"protocol": a.protocol, "settings": a.settings, "ok": a.ok, "detail": a.detail}
                for a in self.attempts
            ],
        }


def list_candidate_ports() -> list[PortInfo]:
    """Serial ports worth trying: USB adapters and CDC-ACM first, plain UARTs last."""
    from serial.tools import list_ports

    ports = []
    for info in list_ports.comports():
        usb_id = f"{info.vid:04x}:{info.pid:04x}" if info.vid is not None else None
        description = None if info.description in (None, "n/a") else info.description
        ports.append(PortInfo(info.device, description, usb_id, info.serial_number))
    return sorted(ports, key=lambda p: (p.usb_id is None, p.device))


Identify = Callable[[str, object, bool], str | None]


def _identify(protocol: str, port: object, network: bool) -> str | None:
    """Ask the terminal who it is with the cheapest request of its protocol."""
    if protocol == "zvt":
        from agent.zvt_client import ZvtClient

        return ZvtClient(port, network=network).status_enquiry()  # type: ignore[arg-type]
    if protocol == "mispos":
        from agent.mispos_client import MisposClient

        return MisposClient(port).probe()  # type: ignore[arg-type]
    from agent.poslink_client import PosLinkClient

    PosLinkClient(port).probe()  # type: ignore[arg-type]
    return None  # POSLink's cheap requests do not carry the terminal id


def probe_port(
    port: PortInfo,
    attempts: Iterable[tuple[str, int]] = DEFAULT_ATTEMPTS,
    *,
    identify: Identify = _identify,
    progress: Callable[[str], None] | None = None,
) -> ProbeResult:
    """Try each protocol/baud on ``port`` until a terminal answers.

    :param identify: asks the terminal for its id over an open port; raises
        :class:`~agent.errors.AgentError` when nothing sensible answers
    """
    result = ProbeResult(port)
    network = is_network_url(port.device)
    tried: set[tuple[str, int | None]] = set()
    for protocol, baud in attempts:
        settings: SerialSettings = default_settings(protocol, baud)
        key = (protocol, None if network else baud)
        if key in tried:  # baud rates mean nothing on TCP
            continue
        tried.add(key)
        label = "tcp" if network else settings.describe()
        if progress:
            progress(f"{port.device}: trying {protocol} at {label}")
        try:
            with open_port(port.device, settings) as handle:
                terminal_id = identify(protocol, handle, network)
        except _FATAL as exc:
            result.attempts.append(Attempt(protocol, label, False, exc.message))
            return result
        except AgentError as exc:
            result.attempts.append(Attempt(protocol, label, False, exc.message))
            continue
        result.attempts.append(Attempt(protocol, label, True, "terminal answered"))
        result.protocol, result.settings, result.terminal_id = protocol, label, terminal_id
        return result
    return result


def probe(
    ports: Sequence[str] | None = None,
    *,
    attempts: Iterable[tuple[str, int]] = DEFAULT_ATTEMPTS,
    identify: Identify = _identify,
    progress: Callable[[str], None] | None = None,
) -> list[ProbeResult]:
    """Probe the given ports, or every candidate port when none is given.

    :raises NoAnswer: there is no serial port at all on this machine
    """
    infos = [PortInfo(p) for p in ports] if ports else list_candidate_ports()
    if not infos:
        raise NoAnswer("no serial ports found: is the USB cable plugged in? (see `dmesg | tail`)")
    attempt_list = list(attempts)
    return [probe_port(info, attempt_list, identify=identify, progress=progress) for info in infos]
