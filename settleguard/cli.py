"""The ``settleguard`` command: one entry point for agent, collector, simulator and demo.

Each group is imported only when it runs, so ``settleguard agent …`` on a box with just the
``[agent]`` extra never loads Flask, psycopg or anything of the collector, and ``--help`` stays
quick. The lazy loading follows click's documented ``LazyGroup`` pattern.
"""

from __future__ import annotations

import importlib

import click

from settleguard import __version__
from settleguard.cli_errors import ErrorStyleGroup

# command name -> (module, attribute, the extra that installs what it needs, one-line help)
GROUPS: dict[str, tuple[str, str, str, str]] = {
    "agent": (
        "settleguard.agent.cli",
        "agent",
        "agent",
        "The agent beside a POS terminal: read, close, sync.",
    ),
    "collector": (
        "settleguard.collector.cli",
        "collector",
        "collector",
        "The collector: ingest, import, reconcile, alert, serve.",
    ),
    "sim": (
        "settleguard.simulator.cli",
        "sim",
        "agent",
        "Simulated POS terminals on pseudo-terminals, for tests and demos.",
    ),
    "demo": (
        "settleguard.demo",
        "demo",
        "demo",
        "The whole system on embedded defaults, with a dashboard at the end.",
    ),
}


class MissingExtra(click.ClickException):
    """A command group whose optional dependencies are not installed."""

    exit_code = 2


class LazyGroup(ErrorStyleGroup):
    """A group that imports each subcommand's module the first time it is needed (its errors
    read ``error: …`` like every command's)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in GROUPS:
            return None
        module_name, attribute, extra, _ = GROUPS[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] == "settleguard":
                raise  # our own code is broken: not a missing extra
            raise MissingExtra(
                f"'settleguard {cmd_name}' needs the {extra} extra ({exc.name} is not installed): "
                f"pip install 'settleguard[{extra}]'"
            ) from exc
        command: click.Command = getattr(module, attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing the groups must not import them: the short help comes from GROUPS.
        rows = [(name, GROUPS[name][3]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="settleguard")
def main() -> None:
    """settleguard: catch POS settlement money that never arrived."""


if __name__ == "__main__":  # pragma: no cover - `python -m settleguard.cli`
    main()
