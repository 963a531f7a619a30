"""``settleguard demo``: the system end to end on embedded defaults."""

from __future__ import annotations

import click

from agent.report import totals_table, utc_now_iso
from agent.terminal_link import read_totals
from simulator.runner import start_on_pty


@click.command()
def demo() -> None:
    """Run the demo: simulated terminals on real pseudo-terminals, read by the agent."""
    for protocol in ("zvt", "poslink"):
        with start_on_pty(protocol) as running:
            click.echo(f"simulated {protocol} terminal on {running.path}")
            totals = read_totals(running.path, protocol, password=running.scenario.password)
            click.echo(totals_table(totals, utc_now_iso()))
            click.echo()
