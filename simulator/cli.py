"""``settleguard sim …``: simulated terminals for tests, demos and technician training."""

from __future__ import annotations

import re
import sys
import zlib

import click
from settleguard.simulator.runner import start
from settleguard.simulator.scenario import Scenario, ScenarioError, load_scenario
from settleguard.simulator.transport import PtyTransport, SerialTransport, Transport


def terminal_id_for(where: str) -> str:
    """An 8-digit terminal id derived from where the terminal serves, so two simulators that
    run at the same time (on different ptys, ports or TCP ports) never share an id."""
    if match := re.fullmatch(r"/dev/pts/(\d+)", where):
        return f"525{int(match.group(1)) % 100_000:05d}"
    if match := re.fullmatch(r".*:(\d+)", where):
        return f"526{int(match.group(1)) % 100_000:05d}"
    return f"527{zlib.crc32(where.encode()) % 100_000:05d}"


@click.group()
def sim() -> None:
    """Simulated POS terminals (the terminal side of MIS-POS, ZVT and PAX POSLink)."""


@sim.command("terminal")
@click.option(
    "--protocol",
    type=click.Choice(["zvt", "poslink", "mispos"]),
    default="zvt",
    show_default=True,
)
@click.option("--pty", "use_pty", is_flag=True, help="Serve on a new pseudo-terminal (default).")
@click.option("--port", "port_url", help="Serve on this serial port or pyserial URL instead.")
@click.option(
    "--listen",
    default=None,
    metavar="HOST:PORT",
    help="ZVT only: serve ZVT over TCP/IP on this address (e.g. 127.0.0.1:20007).",
)
@click.option(
    "--scenario",
    "scenario_path",
    type=click.Path(exists=True, dir_okay=False),
    help="TOML or JSON file with the batch contents and faults to inject.",
)
def terminal(
    protocol: str,
    use_pty: bool,
    port_url: str | None,
    listen: str | None,
    scenario_path: str | None,
) -> None:
    """Run a simulated terminal until interrupted; prints the port the agent should open.

    Without --scenario the terminal id is derived from the port, so two simulated terminals
    have different ids.
    """
    if sum(map(bool, (use_pty, port_url, listen))) > 1:
        raise click.UsageError("--pty, --port and --listen exclude each other")
    try:
        scenario = load_scenario(scenario_path) if scenario_path else _default(protocol)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from exc
    if listen:
        _serve_tcp(protocol, listen, scenario, derive_id=not scenario_path)
        return
    transport: Transport
    if port_url:
        transport = SerialTransport(port_url, stopbits=2 if protocol == "zvt" else 1)
        path = port_url
    else:
        pty = PtyTransport()
        transport, path = pty, pty.path
    if not scenario_path:
        scenario.terminal_id = terminal_id_for(path)
    running = start(protocol, scenario, transport, path)
    click.echo(f"simulated {protocol} terminal {scenario.terminal_id} on {path}")
    command = "close" if protocol == "mispos" else "read"
    click.echo(f"try: settleguard agent {command} --protocol {protocol} --port {path}")
    sys.stdout.flush()
    try:
        running.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


def _default(protocol: str) -> Scenario:
    if protocol == "mispos":
        from settleguard.simulator.mispos_terminal import china_scenario

        return china_scenario()
    return Scenario()


def _serve_tcp(protocol: str, listen: str, scenario: Scenario, *, derive_id: bool) -> None:
    import socket
    import threading

    from settleguard.simulator.zvt_terminal import serve_zvt_tcp

    if protocol != "zvt":
        raise click.UsageError("--listen serves ZVT over TCP/IP only")
    host, _, port = listen.rpartition(":")
    try:
        listener = socket.create_server((host or "127.0.0.1", int(port)))
    except (ValueError, OSError) as exc:
        raise click.ClickException(f"cannot listen on {listen}: {exc}") from exc
    bound = listener.getsockname()
    if derive_id:
        scenario.terminal_id = terminal_id_for(f"{bound[0]}:{bound[1]}")
    click.echo(f"simulated zvt terminal {scenario.terminal_id} on tcp {bound[0]}:{bound[1]}")
    click.echo(f"try: settleguard agent read --protocol zvt --port socket://{bound[0]}:{bound[1]}")
    sys.stdout.flush()
    stop = threading.Event()
    try:
        serve_zvt_tcp(listener, scenario, stop)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        listener.close()
