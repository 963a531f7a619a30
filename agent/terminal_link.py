"""One entry point for talking to a terminal, whatever its protocol.

:func:`read_totals` and :func:`close_batch` open the port with the protocol's line settings,
run the protocol's client (:mod:`agent.zvt_client`, :mod:`agent.poslink_client`) and close
the port again. The clients are thin I/O loops around the sans-I/O state machines in
:mod:`protocol`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import serial

from agent.errors import UsageError
from agent.ports import SerialSettings, is_network_url, open_port
from protocol.totals import TerminalTotals

Progress = Callable[[str], None]
PROTOCOLS = ("zvt", "poslink")


class TerminalClient(Protocol):
    """What every protocol client offers the agent."""

    def read_totals(self, *, password: str | None) -> TerminalTotals: ...

    def close_batch(self, *, password: str | None) -> TerminalTotals: ...


def default_settings(protocol: str, baud: int | None = None) -> SerialSettings:
    """The line settings a protocol uses unless the technician overrides the baud rate.

    ZVT: 9600 8N2 (PA00P016, serial interface). POSLink: 9600 8N1 (firmware_notes/pax-poslink.md).
    """
    if protocol == "zvt":
        return SerialSettings(
            baud or 9600, serial.EIGHTBITS, serial.PARITY_NONE, serial.STOPBITS_TWO
        )
    if protocol == "poslink":
        return SerialSettings(
            baud or 9600, serial.EIGHTBITS, serial.PARITY_NONE, serial.STOPBITS_ONE
        )
    raise UsageError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def make_client(
    protocol: str, port: serial.SerialBase, *, network: bool, progress: Progress | None
) -> TerminalClient:
    """Build the protocol client for an open port."""
    if protocol == "zvt":
        from agent.zvt_client import ZvtClient

        return ZvtClient(port, network=network, progress=progress)
    if protocol == "poslink":
        from agent.poslink_client import PosLinkClient

        return PosLinkClient(port, progress=progress)
    raise UsageError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def read_totals(
    url: str,
    protocol: str,
    *,
    password: str | None = None,
    baud: int | None = None,
    progress: Progress | None = None,
) -> TerminalTotals:
    """Read the terminal's running totals without closing the batch.

    :raises agent.errors.AgentError: with a message and exit code for the technician
    """
    settings = default_settings(protocol, baud)
    with open_port(url, settings) as port:
        client = make_client(protocol, port, network=is_network_url(url), progress=progress)
        return client.read_totals(password=password)


def close_batch(
    url: str,
    protocol: str,
    *,
    password: str | None = None,
    baud: int | None = None,
    progress: Progress | None = None,
) -> TerminalTotals:
    """Close the terminal's batch (ZVT End-of-Day, POSLink BatchClose) and return its totals.

    :raises agent.errors.AgentError: with a message and exit code for the technician
    """
    settings = default_settings(protocol, baud)
    with open_port(url, settings) as port:
        client = make_client(protocol, port, network=is_network_url(url), progress=progress)
        return client.close_batch(password=password)
