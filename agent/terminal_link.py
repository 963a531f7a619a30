"""One entry point for talking to a terminal, whatever its protocol.

:func:`read_totals` and :func:`close_batch` open the port with the protocol's line settings,
run the protocol's client (:mod:`agent.zvt_client`, :mod:`agent.poslink_client`) and close
the port again. The clients are thin I/O loops around the sans-I/O state machines in
:mod:`protocol`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import serial

from agent.errors import UsageError
from agent.ports import SerialSettings, is_network_url, open_port
from protocol.totals import TerminalTotals

Progress = Callable[[str], None]
PROTOCOLS = ("zvt", "poslink")
#: ISO 4217 numeric code the agent reports when the terminal's protocol carries no currency
#: (POSLink) and registers with (ZVT, whose terminal then confirms it): Chinese yuan.
DEFAULT_CURRENCY = "156"


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
    protocol: str,
    port: serial.SerialBase,
    *,
    network: bool,
    progress: Progress | None,
    currency: str = DEFAULT_CURRENCY,
) -> TerminalClient:
    """Build the protocol client for an open port."""
    if protocol == "zvt":
        from agent.zvt_client import ZvtClient

        return ZvtClient(port, network=network, progress=progress, currency=int(currency))
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
    currency: str = DEFAULT_CURRENCY,
) -> TerminalTotals:
    """Read the terminal's running totals without closing the batch.

    :param currency: ISO 4217 numeric code of the terminal's currency (see
        :func:`with_currency`)
    :raises agent.errors.AgentError: with a message and exit code for the technician
    """
    settings = default_settings(protocol, baud)
    with open_port(url, settings) as port:
        client = make_client(
            protocol, port, network=is_network_url(url), progress=progress, currency=currency
        )
        return with_currency(client.read_totals(password=password), currency)


def close_batch(
    url: str,
    protocol: str,
    *,
    password: str | None = None,
    baud: int | None = None,
    progress: Progress | None = None,
    currency: str = DEFAULT_CURRENCY,
) -> TerminalTotals:
    """Close the terminal's batch (ZVT End-of-Day, POSLink BatchClose) and return its totals.

    :param currency: as :func:`read_totals`
    :raises agent.errors.AgentError: with a message and exit code for the technician
    """
    settings = default_settings(protocol, baud)
    with open_port(url, settings) as port:
        client = make_client(
            protocol, port, network=is_network_url(url), progress=progress, currency=currency
        )
        return with_currency(client.close_batch(password=password), currency)


def with_currency(totals: TerminalTotals, currency: str) -> TerminalTotals:
    """``totals`` with ``currency`` filled in when the terminal did not say.

    A ZVT terminal names its currency when the agent registers with one (a single-currency
    terminal refuses another, and is then read in euro: see :mod:`agent.zvt_client`); POSLink's
    totals carry none, so the agent's setting is the currency of the amounts.
    """
    return totals if totals.currency is not None else replace(totals, currency=currency)
