"""One entry point for talking to a terminal, whatever its protocol.

:func:`read_totals` and :func:`close_batch` open the port with the protocol's line settings,
run the protocol's client (:mod:`agent.zvt_client`, :mod:`agent.poslink_client`) and close
the port again. The clients are thin I/O loops around the sans-I/O state machines in
:mod:`protocol`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import serial
from settleguard.agent.errors import UsageError
from settleguard.agent.ports import SerialSettings, is_network_url, open_port
from settleguard.protocol.totals import TerminalTotals

Progress = Callable[[str], None]
PROTOCOLS = ("mispos", "zvt", "poslink")
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
    MIS-POS: 9600 8N1, no flow control (firmware_notes/mispos.md).
    """
    if protocol == "zvt":
        return SerialSettings(
            baud or 9600, serial.EIGHTBITS, serial.PARITY_NONE, serial.STOPBITS_TWO
        )
    if protocol in ("poslink", "mispos"):
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
        from settleguard.agent.zvt_client import ZvtClient

        return ZvtClient(port, network=network, progress=progress, currency=int(currency))
    if protocol == "poslink":
        from settleguard.agent.poslink_client import PosLinkClient

        return PosLinkClient(port, progress=progress)
    if protocol == "mispos":
        from settleguard.agent.mispos_client import MisposClient

        return MisposClient(port, progress=progress)
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
    if protocol == "mispos":
        from settleguard.agent.mispos_client import NO_TOTALS_QUERY

        raise UsageError(NO_TOTALS_QUERY)
    with _client(url, protocol, baud, progress, None, currency) as client:
        return with_currency(client.read_totals(password=password), currency)


def close_batch(
    url: str,
    protocol: str,
    *,
    password: str | None = None,
    baud: int | None = None,
    progress: Progress | None = None,
    save_raw: Path | None = None,
    recover: bool = False,
    currency: str = DEFAULT_CURRENCY,
) -> TerminalTotals:
    """Close the terminal's batch (MIS-POS 14, ZVT End-of-Day, POSLink BatchClose).

    :param save_raw: write every byte the terminal sent to this file (MIS-POS)
    :param recover: MIS-POS only: do not settle; take the batch of an earlier close whose
        reply was lost from the reprint (19)

    :param currency: as :func:`read_totals`
    :raises agent.errors.AgentError: with a message and exit code for the technician
    """
    if recover and protocol != "mispos":
        raise UsageError("--recover is for MIS-POS terminals (reprint of the last settlement)")
    with _client(url, protocol, baud, progress, save_raw, currency) as client:
        if recover:
            from settleguard.agent.mispos_client import MisposClient

            assert isinstance(client, MisposClient)
            totals = client.recover_batch()
        else:
            totals = client.close_batch(password=password)
        if getattr(client, "recovered", False):
            totals = replace(totals, recovered=True)
        return with_currency(totals, currency)


def read_last(
    url: str,
    protocol: str,
    *,
    baud: int | None = None,
    progress: Progress | None = None,
    save_raw: Path | None = None,
) -> TerminalTotals:
    """The last closed batch again, closing nothing (MIS-POS reprint of the settlement, 19).

    :raises agent.errors.AgentError: not MIS-POS, or the terminal failed
    """
    if protocol != "mispos":
        raise UsageError("--last is for MIS-POS terminals (reprint of the last settlement)")
    with _client(url, protocol, baud, progress, save_raw, DEFAULT_CURRENCY) as client:
        from settleguard.agent.mispos_client import MisposClient

        assert isinstance(client, MisposClient)
        return with_currency(client.read_last(), DEFAULT_CURRENCY)


@contextmanager
def _client(
    url: str,
    protocol: str,
    baud: int | None,
    progress: Progress | None,
    save_raw: Path | None,
    currency: str,
) -> Iterator[TerminalClient]:
    """Open the port, build the client, and write what it received to ``save_raw`` (always,
    also when the command failed: a reply the agent cannot read is what a test needs)."""
    settings = default_settings(protocol, baud)
    with open_port(url, settings) as port:
        client = make_client(
            protocol, port, network=is_network_url(url), progress=progress, currency=currency
        )
        try:
            yield client
        finally:
            raw = getattr(client, "raw", None)
            if save_raw is not None and raw is not None:
                save_raw.write_bytes(bytes(raw))


def with_currency(totals: TerminalTotals, currency: str) -> TerminalTotals:
    """``totals`` with ``currency`` filled in when the terminal did not say.

    A ZVT terminal names its currency when the agent registers with one (a single-currency
    terminal refuses another, and is then read in euro: see :mod:`agent.zvt_client`); POSLink's
    totals carry none, so the agent's setting is the currency of the amounts.
    """
    return totals if totals.currency is not None else replace(totals, currency=currency)
