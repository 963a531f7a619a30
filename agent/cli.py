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


#: command -> the module that defines it; a command's module is imported only when it runs
#: (``agent status`` loads neither MQTT nor the terminal protocols).
COMMAND_MODULES = {
    **dict.fromkeys(("read", "close", "probe", "replace", "card-change"), "cli_terminal"),
    "slip": "cli_slip",
    **dict.fromkeys(
        ("init", "enroll", "status", "run", "sync", "export", "rotate-key"), "cli_sync"
    ),
}


class AgentGroup(ErrorStyleGroup):
    """The ``agent`` group: each command's module is imported the first time it is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(f"settleguard.agent.{module}").register(self)
        return self.commands.get(cmd_name)


@click.group(cls=AgentGroup, epilog=_exit_code_epilog())
def agent() -> None:
    """The agent beside a POS terminal: read, close, sync."""
