"""One entry point for talking to a terminal, whatever its protocol.

:func:`read_totals` and :func:`close_batch` open the port with the protocol's line settings,
run the protocol's client (:mod:`agent.zvt_client`, :mod:`agent.poslink_client`) and close
the port again. The clients are thin I/O loops around the sans-I/O state machines in
:mod:`protocol`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import serial

from agent.errors import UsageError
from agent.ports import SerialSettings, is_network_url, open_port
from protocol.totals import TerminalTotals

Progress = Callable[[str], None]
PROTOCOLS = ("mispos", "zvt", "poslink")


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
    protocol: str, port: serial.SerialBase, *, network: bool, progress: Progress | None
) -> TerminalClient:
    """Build the protocol client for an open port."""
    if protocol == "zvt":
        from agent.zvt_client import ZvtClient

        return ZvtClient(port, network=network, progress=progress)
    if protocol == "poslink":
        from agent.poslink_client import PosLinkClient

        return PosLinkClient(port, progress=progress)
    if protocol == "mispos":
        from agent.mispos_client import MisposClient

        return MisposClient(port, progress=progress)
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
    if protocol == "mispos":
        from agent.mispos_client import NO_TOTALS_QUERY

        raise UsageError(NO_TOTALS_QUERY)
    with _client(url, protocol, baud, progress, None) as client:
        return client.read_totals(password=password)


def close_batch(
    url: str,
    protocol: str,
    *,
    password: str | None = None,
    baud: int | None = None,
    progress: Progress | None = None,
    save_raw: Path | None = None,
    recover: bool = False,
) -> TerminalTotals:
    """Close the terminal's batch (MIS-POS 14, ZVT End-of-Day, POSLink BatchClose).

    :param save_raw: write every byte the terminal sent to this file (MIS-POS)
    :param recover: MIS-POS only: do not settle; take the batch of an earlier close whose
        reply was lost from the reprint (19)

    :raises agent.errors.AgentError: with a message and exit code for the technician
    """
    if recover and protocol != "mispos":
        raise UsageError("--recover is for MIS-POS terminals (reprint of the last settlement)")
    with _client(url, protocol, baud, progress, save_raw) as client:
        if recover:
            from agent.mispos_client import MisposClient

            assert isinstance(client, MisposClient)
            totals = client.recover_batch()
        else:
            totals = client.close_batch(password=password)
        if getattr(client, "recovered", False):
            from dataclasses import replace

            totals = replace(totals, recovered=True)
        return totals


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
    with _client(url, protocol, baud, progress, save_raw) as client:
        from agent.mispos_client import MisposClient

        assert isinstance(client, MisposClient)
        return client.read_last()


def identify(url: str, protocol: str, *, baud: int | None = None) -> str | None:
    """Ask the terminal who it is with its cheapest request (MIS-POS: the port probe)."""
    from agent.probe import _identify

    with open_port(url, default_settings(protocol, baud)) as port:
        return _identify(protocol, port, is_network_url(url))


@contextmanager
def _client(
    url: str, protocol: str, baud: int | None, progress: Progress | None, save_raw: Path | None
) -> Iterator[TerminalClient]:
    """Open the port, build the client, and write what it received to ``save_raw`` (always,
    also when the command failed: a reply the agent cannot read is what a test needs)."""
    settings = default_settings(protocol, baud)
    with open_port(url, settings) as port:
        client = make_client(protocol, port, network=is_network_url(url), progress=progress)
        try:
            yield client
        finally:
            raw = getattr(client, "raw", None)
            if save_raw is not None and raw is not None:
                save_raw.write_bytes(bytes(raw))
