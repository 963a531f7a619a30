"""``settleguard agent …``: the technician's commands.

Commands live in modules by area and are thin wrappers over library calls:
:mod:`agent.cli_terminal` (read, close, probe, replace, card-change), :mod:`agent.cli_slip`
(slip) and
:mod:`agent.cli_sync` (init, enroll, status, run, export).
"""

from __future__ import annotations

import importlib

import click

from settleguard.cli_errors import ErrorStyleGroup


def _exit_code_epilog() -> str:
    from settleguard.agent.errors import EXIT_CODES

    lines = ["\b", "Exit codes:"]
    lines += [f"  {code:>2}  {text.splitlines()[0]}" for code, text in sorted(EXIT_CODES.items())]
    return "\n".join(lines)


@click.group(cls=ErrorStyleGroup, epilog=_exit_code_epilog())
def agent() -> None:
    """The agent beside a POS terminal: read, close, sync."""


def _register() -> None:
    from settleguard.agent import cli_slip, cli_terminal

    cli_terminal.register(agent)
    cli_slip.register(agent)
    try:
        cli_sync = importlib.import_module("settleguard.agent.cli_sync")
    except ModuleNotFoundError as exc:  # until the sync commands land
        if exc.name != "settleguard.agent.cli_sync":
            raise
    else:
        cli_sync.register(agent)


_register()
