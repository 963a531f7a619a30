"""``agent probe``: find the terminal's port, protocol and line settings, or say why not.

Without a port it lists candidate serial ports (with USB vendor/product where the kernel knows
them) and tries them all at once, one thread per port. On each port it tries the protocols and
baud rates in the order a site is most likely to use, each with a short wait for the
terminal's acknowledgement (a terminal acknowledges at once; only a silent line waits the whole
time), stops at the first answer, and keeps the reason each attempt failed. Each port ends with
one short verdict (:meth:`ProbeResult.verdict`): the terminal found, the one reason no attempt
could cure ("permission denied", "busy"), or "nothing answered" with one hint.

A protocol plugs in by adding an entry to :data:`IDENTIFIERS` (how to ask a terminal who it
is, with probe timers) and its (protocol, baud) pairs to :data:`DEFAULT_ATTEMPTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from settleguard.agent.errors import (
    AgentError,
    NoAnswer,
    PortBusy,
    PortNotFound,
    PortPermissionDenied,
)
from settleguard.agent.ports import SerialSettings, is_network_url, open_port
from settleguard.agent.terminal_link import default_settings

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
#: Seconds a probe waits for a terminal to acknowledge a request, once, without repeating.
PROBE_ACK_WAIT_S = 0.8
#: Said once per port when nothing answered at any protocol and baud rate.
SILENT_HINT = "check the cable, that ECR mode is on, and that the terminal is on this port"


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
    silent: bool = False  # nothing came back at all (as opposed to garbage or a refusal)


@dataclass(slots=True)
class ProbeResult:
    """Everything learnt about one port."""

    port: PortInfo
    attempts: list[Attempt] = field(default_factory=list)
    protocol: str | None = None
    settings: str | None = None
    terminal_id: str | None = None
    stopped: str | None = None  # why no other attempt was made (missing, permission, busy)

    @property
    def found(self) -> bool:
        """True when a terminal answered."""
        return self.protocol is not None

    def verdict(self) -> str:
        """One short line for this port: what answered, or the one reason nothing did."""
        if self.found:
            return (
                f"{self.protocol} terminal {self.terminal_id or '(id not reported)'} "
                f"at {self.settings}"
            )
        if self.stopped is not None:
            return self.stopped
        spoke = [a for a in self.attempts if not a.silent]
        if spoke:
            first = spoke[0]
            return (
                f"something answered but no terminal we know ({first.protocol} "
                f"{first.settings}: {first.detail})"
            )
        protocols = ", ".join(dict.fromkeys(a.protocol for a in self.attempts))
        return f"nothing answered ({protocols}, {len(self.attempts)} line settings): {SILENT_HINT}"

    def to_json(self) -> dict[str, object]:
        """The ``--json`` form."""
        return {
            "port": self.port.device,
            "description": self.port.description,
            "usb_id": self.port.usb_id,
            "found": self.found,
            "verdict": self.verdict(),
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


def _identify_zvt(port: object, network: bool) -> str | None:
    from settleguard.agent.zvt_client import ZvtClient, ZvtTimers

    timers = ZvtTimers(t2=PROBE_ACK_WAIT_S, repeats=0)
    return ZvtClient(port, network=network, timers=timers).status_enquiry()  # type: ignore[arg-type]


def _identify_poslink(port: object, network: bool) -> str | None:
    from settleguard.agent.poslink_client import PosLinkClient
    from settleguard.protocol.poslink.connection import PosLinkTimers

    timers = PosLinkTimers(ack_timeout=PROBE_ACK_WAIT_S, max_attempts=1)
    PosLinkClient(port, timers=timers).probe()  # type: ignore[arg-type]
    return None  # POSLink's cheap requests do not carry the terminal id


def _identify_mispos(port: object, network: bool) -> str | None:
    from settleguard.agent.mispos_client import MisposClient

    # the port search (MANAGER 07) waits its own 3 s: a MIS-POS terminal sends no acknowledgement
    return MisposClient(port).probe()  # type: ignore[arg-type]


#: protocol name → asks a terminal on an open port who it is (probe timers: short, no repeats).
IDENTIFIERS: dict[str, Callable[[object, bool], str | None]] = {
    "mispos": _identify_mispos,
    "zvt": _identify_zvt,
    "poslink": _identify_poslink,
}


def identify(url: str, protocol: str, *, baud: int | None = None) -> str | None:
    """Ask the terminal on ``url`` who it is with its cheapest request (MIS-POS: the port
    search), with the probe's short timers."""
    with open_port(url, default_settings(protocol, baud)) as port:
        return _identify(protocol, port, is_network_url(url))


def _identify(protocol: str, port: object, network: bool) -> str | None:
    """Ask the terminal who it is with the cheapest request of its protocol."""
    return IDENTIFIERS[protocol](port, network)


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
            result.stopped = exc.message
            return result
        except NoAnswer as exc:
            result.attempts.append(Attempt(protocol, label, False, exc.message, silent=True))
            continue
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
    """Probe the given ports, or every candidate port when none is given, all at once.

    Each port gets its own thread (a port is one line: its attempts run one after another);
    the results come back in the order of the ports.

    :raises NoAnswer: there is no serial port at all on this machine
    """
    infos = [PortInfo(p) for p in ports] if ports else list_candidate_ports()
    if not infos:
        raise NoAnswer("no serial ports found: is the USB cable plugged in? (see `dmesg | tail`)")
    attempt_list = list(attempts)

    def one(info: PortInfo) -> ProbeResult:
        result = probe_port(info, attempt_list, identify=identify, progress=progress)
        if progress:
            progress(f"{info.device}: {result.verdict()}")
        return result

    with ThreadPoolExecutor(max_workers=len(infos), thread_name_prefix="probe") as pool:
        return list(pool.map(one, infos))
