"""The ``settleguard`` command: one entry point for agent, collector, simulator and demo."""

from __future__ import annotations

import click

from settleguard import __version__
from settleguard.cli_errors import ErrorStyleGroup


@click.group(cls=ErrorStyleGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="settleguard")
def main() -> None:
    """settleguard: catch POS settlement money that never arrived."""


def _register() -> None:
    from agent.cli import agent
    from simulator.cli import sim

    main.add_command(agent)
    main.add_command(sim)
    from collector.cli import collector

    main.add_command(collector)
    from settleguard.demo import demo

    main.add_command(demo)


_register()


if __name__ == "__main__":  # pragma: no cover - `python -m settleguard.cli`
    main()
