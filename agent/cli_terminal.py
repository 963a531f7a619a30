"""Terminal-facing technician commands: ``read`` (and later close, probe, replace, card-change)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click

from agent import terminal_link
from agent.errors import AgentError
from agent.report import totals_table, totals_to_json, utc_now_iso
from protocol.totals import TerminalTotals

_port_option = click.option(
    "--port", "port_url", required=True, help="Serial device or pyserial URL, e.g. /dev/ttyUSB0."
)
_protocol_option = click.option(
    "--protocol", type=click.Choice(["zvt", "poslink"]), default="zvt", show_default=True
)
_password_option = click.option(
    "--password", default="123456", show_default=True, help="Terminal/merchant password (ZVT)."
)
_baud_option = click.option("--baud", type=int, default=None, help="Override the baud rate.")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


def _progress(as_json: bool) -> Callable[[str], None]:
    def show(message: str) -> None:
        click.echo(f"... {message}", err=True)

    # With --json, stdout stays one JSON object; progress still goes to stderr.
    return show if not as_json or sys.stderr.isatty() else (lambda message: None)


def _run_totals(action: Callable[..., TerminalTotals], as_json: bool, **kwargs: object) -> None:
    try:
        totals = action(progress=_progress(as_json), **kwargs)
    except AgentError as exc:
        if as_json:
            click.echo(json.dumps({"error": exc.message, "exit_code": exc.exit_code}))
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    read_at = utc_now_iso()
    if as_json:
        click.echo(json.dumps(totals_to_json(totals, read_at), ensure_ascii=False))
    else:
        click.echo(totals_table(totals, read_at))


@click.command("read")
@_port_option
@_protocol_option
@_password_option
@_baud_option
@_json_option
def read(port_url: str, protocol: str, password: str, baud: int | None, as_json: bool) -> None:
    """Read the terminal's current totals without closing the batch (ZVT 06 10, POSLink R00)."""
    _run_totals(
        terminal_link.read_totals,
        as_json,
        url=port_url,
        protocol=protocol,
        password=password,
        baud=baud,
    )


def register(group: click.Group) -> None:
    """Attach this module's commands to the ``agent`` group."""
    group.add_command(read)
