"""``settleguard demo``: the whole system end to end on embedded defaults (see :mod:`.run`)."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import click

from settleguard.collector.money import format_money
from settleguard.demo.run import DemoOptions, DemoResult, run_demo

CATEGORY_ORDER = (
    "PAID_TO_OLD_ACCOUNT",
    "CHANGE_PENDING",
    "RETURNED",
    "HELD",
    "MISSING",
    "SHORT_PAID",
    "BATCH_NOT_UPLOADED",
    "DUPLICATE_CREDIT",
    "AGGREGATED_UNRESOLVED",
    "STATEMENT_GAP",
    "NOT_DUE_YET",
    "aggregated_credit",
)


@click.command()
@click.option(
    "--terminals", default=12, show_default=True, help="Simulated terminals (one per merchant)."
)
@click.option("--days", default=14, show_default=True, help="Trading days up to yesterday.")
@click.option("--seed", default=7, show_default=True, help="Seed for the shops, sales and faults.")
@click.option(
    "--broker", default=None, metavar="URL", help="Use this MQTT broker (mqtt://user:pw@host:port)."
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=Path("settleguard-demo"),
    show_default=True,
)
@click.option(
    "--no-serve", is_flag=True, help="Exit after the summary instead of serving the dashboard."
)
@click.option("--port", default=8080, show_default=True, help="Dashboard port (0: any free port).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
def demo(
    terminals: int,
    days: int,
    seed: int,
    broker: str | None,
    workdir: Path,
    no_serve: bool,
    port: int,
    as_json: bool,
) -> None:
    """Run the demo: terminals, agents, broker, collector, bank files, reconciliation, SMS."""

    def progress(message: str) -> None:
        click.echo(f"[{time.strftime('%H:%M:%S')}] {message}", err=as_json)

    # SIGTERM (systemd, docker stop, kill) unwinds like Ctrl-C, so every child the demo started
    # (its Mosquitto, the simulators) is stopped by the clean-up below and in run_demo.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    options = DemoOptions(terminals=terminals, days=days, seed=seed, broker=broker, workdir=workdir)
    result, running = run_demo(options, progress, keep_running=not no_serve, port=port)
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        click.echo(summary_table(result))
    click.echo(
        f"\nCLI on this instance: export SETTLEGUARD_INSTANCE_PATH={result.instance}\n"
        "  then e.g. settleguard collector gaps, settleguard collector agents list",
        err=as_json,
    )
    if no_serve:
        sys.exit(0 if result.privacy_hits == 0 else 1)
    assert result.login is not None
    click.echo(
        f"\ndashboard: {result.dashboard}  (login {result.login[0]} / {result.login[1]})",
        err=as_json,
    )
    click.echo("press Ctrl-C to stop", err=as_json)
    try:
        running.stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.close()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def summary_table(result: DemoResult) -> str:
    """The closing table: per category what was injected and what reconciliation found."""
    lines = ["", f"{'category':<24}{'injected':>10}{'detected':>10}"]
    for category in CATEGORY_ORDER:
        injected = result.injected.get(category, 0)
        detected = result.detected.get(category, 0)
        if injected or detected:
            lines.append(f"{category:<24}{injected:>10}{detected:>10}")
    lines += [
        "",
        f"false positives     {result.false_positives}",
        f"money at risk       {format_money(result.money_at_risk)} (unresolved gaps except "
        "NOT_DUE_YET, as on the dashboard)",
        f"SMS sent            {result.sms_sent}",
        *(
            [f"SMS held            {result.sms_held} (due dates outside the working calendar)"]
            if result.sms_held
            else []
        ),
        f"records synced      {result.records}",
        f"card numbers found  {result.privacy_hits} (in the demo folder, after the run)",
        f"broker              {result.broker}",
        f"took                {result.seconds:.0f} s",
    ]
    return "\n".join(lines)
