"""Opening terminal ports by pyserial URL, with errors a technician can act on.

``/dev/ttyUSB0``, ``/dev/serial/by-path/…``, ``socket://host:20007`` and pseudo-terminals all
go through :func:`serial.serial_for_url`, so the agent never branches on "test mode"
(docs/architecture.md §4, "Ports by URL").
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

import serial
from settleguard.agent.errors import PortBusy, PortNotFound, PortPermissionDenied, UsageError

DIALOUT_HINT = (
    "add this user to the 'dialout' group (sudo usermod -aG dialout $USER, then log in again) "
    "or install the udev rule from agent/deploy/"
)
BUSY_HINT = (
    "another program holds it: often ModemManager probing a new USB serial adapter; install "
    "agent/deploy/99-settleguard.rules (ID_MM_DEVICE_IGNORE) or stop the other program"
)


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Line settings for one protocol; ``None`` fields keep pyserial's default."""

    baudrate: int
    bytesize: int = serial.EIGHTBITS
    parity: str = serial.PARITY_NONE
    stopbits: float = serial.STOPBITS_ONE

    def describe(self) -> str:
        """Short form such as ``9600 8N2``."""
        stop = int(self.stopbits) if float(self.stopbits).is_integer() else self.stopbits
        return f"{self.baudrate} {self.bytesize}{self.parity}{stop}"


def is_network_url(url: str) -> bool:
    """True for ``socket://`` URLs (ZVT over TCP/IP uses bare APDUs, no DLE framing)."""
    return url.startswith("socket://")


def open_port(url: str, settings: SerialSettings, *, timeout: float = 0.05) -> serial.SerialBase:
    """Open ``url`` exclusively with ``settings``.

    :param url: a device path or a pyserial URL
    :param settings: baud rate and framing
    :param timeout: read timeout in seconds; reads return early with what arrived
    :raises PortNotFound: the device does not exist
    :raises PortPermissionDenied: no permission (the ``dialout`` hint is in the message)
    :raises PortBusy: another process holds the port
    :raises UsageError: the URL is malformed
    """
    try:
        return serial.serial_for_url(
            url,
            baudrate=settings.baudrate,
            bytesize=settings.bytesize,
            parity=settings.parity,
            stopbits=settings.stopbits,
            timeout=timeout,
            write_timeout=5.0,
            exclusive=True,
        )
    except serial.SerialException as exc:
        raise _translate(url, exc) from exc
    except ValueError as exc:
        raise UsageError(f"{url}: {exc}") from exc


def _translate(url: str, exc: serial.SerialException) -> Exception:
    code = exc.errno
    text = str(exc)
    if code == errno.ENOENT or "No such file" in text:
        return PortNotFound(f"{url}: no such port; check the cable and `settleguard agent probe`")
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return PortPermissionDenied(f"{url}: permission denied; {DIALOUT_HINT}")
    if code in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in text or "busy" in text:
        return PortBusy(f"{url}: port is busy; {BUSY_HINT}")
    if "Connection refused" in text or code == errno.ECONNREFUSED:
        return PortNotFound(f"{url}: connection refused; is the terminal's ECR/TCP port enabled?")
    return PortNotFound(f"{url}: cannot open port: {text}")
