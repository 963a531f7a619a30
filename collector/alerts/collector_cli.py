"""``settleguard collector alerts …`` on the collector's own database.

:func:`register` attaches an ``alerts`` group to the ``collector`` click group. ``test`` is the
library's command (:mod:`.cli`); ``run`` and ``list`` use the collector store from the app
configuration (``DATABASE_URL``) unless ``--db FILE`` names a standalone SQLite alert store;
``preview --gap ID`` renders a gap's message as it would be sent. Thin wrappers: the work is in
:func:`run_pass` (plan, dispatch) and :func:`collector.alerts.planner.preview_gap`.

Exit codes: 0 success; 1 the gateway, store or gap failed (one ``error: …`` line on stderr
says why); 2 usage error.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from collector.cli_context import as_of_option, as_of_time, fail

from .alert_store import AlertStore, SqliteAlertStore
from .cli import configured_gateway, run_loop, test_command
from .collector_store import CollectorAlertStore
from .gateway import GatewayError, SmsGateway
from .outbox import DispatchReport, dispatch_due
from .planner import PlannerError, PlanReport, plan_alerts, preview_gap
from .policy import AlertPolicy
from .templates import LOCALES, TemplateError

__all__ = ["PassReport", "register", "run_collector_alerts", "run_pass"]


@dataclass(frozen=True, slots=True)
class PassReport:
    """One pass of the collector's alert loop."""

    plan: PlanReport | None
    dispatch: DispatchReport


def run_pass(
    alerts: AlertStore,
    gateway: SmsGateway,
    now: datetime,
    policy: AlertPolicy | None = None,
) -> PassReport:
    """Plan what is due from the gaps (collector store only), then dispatch it."""
    plan = (
        plan_alerts(alerts.store, now, policy, alert_store=alerts)
        if isinstance(alerts, CollectorAlertStore)
        else None
    )
    return PassReport(plan, dispatch_due(alerts, gateway, now, policy))


def run_collector_alerts(
    alerts: AlertStore,
    gateway: SmsGateway,
    stop: threading.Event,
    *,
    interval: float = 5.0,
    policy: AlertPolicy | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_report: Callable[[PassReport], None] | None = None,
) -> None:
    """Plan and dispatch every *interval* seconds until *stop* (see :func:`run_loop`)."""
    run_loop(alerts, gateway, stop, run_pass, interval=interval, policy=policy, clock=clock,
             on_report=on_report)  # fmt: skip


def _collector_store(ctx: click.Context, *, create: bool) -> CollectorAlertStore:
    from collector.cli_context import store_from_context

    return CollectorAlertStore(store_from_context(ctx, create=create))


def _alert_store(
    ctx: click.Context, db: Path | None, *, create: bool
) -> SqliteAlertStore | CollectorAlertStore:
    if db is not None and not create and not db.is_file():
        fail(f"no alert store at {db}")
    return SqliteAlertStore(db) if db is not None else _collector_store(ctx, create=create)


def _show(report: PassReport) -> None:
    d = report.dispatch
    queued = len(report.plan.queued) if report.plan else 0
    skipped = len(report.plan.skipped) if report.plan else 0
    held = len(report.plan.held) if report.plan else 0
    if queued or d.sent or d.escalated or d.finished or d.uncertain or d.failed:
        click.echo(
            f"queued={queued} skipped={skipped} held={held} sent={len(d.sent)} "
            f"deferred={len(d.deferred)} retry={len(d.retry)} failed={len(d.failed)} "
            f"uncertain={len(d.uncertain)} "
            f"finished={len(d.finished)} escalated={len(d.escalated)}"
        )


DB_OPTION = click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Standalone SQLite alert store (default: the collector database).",
)


@click.group("alerts")
def alerts() -> None:
    """Merchant SMS alerts: test the gateway, run the dispatcher, list and preview alerts."""


alerts.add_command(test_command)


@alerts.command("run")
@DB_OPTION
@click.option("--interval", default=5.0, show_default=True, help="Seconds between passes.")
@click.option("--once", is_flag=True, help="One pass, then exit.")
@as_of_option
@click.pass_context
def run_command(
    ctx: click.Context, db: Path | None, interval: float, once: bool, as_of: str | None
) -> None:
    """Queue due alerts from open gaps, send them through SETTLEGUARD_SMS_URL, track receipts.

    --as-of makes one pass as at that moment (what would have been due then; pair it with a
    file gateway to look without sending).
    """
    store = _alert_store(ctx, db, create=True)
    stop = threading.Event()
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731
    if as_of is not None:
        moment = as_of_time(as_of)
        clock = lambda: moment  # noqa: E731
    if once or as_of is not None:
        stop.set()
    try:
        gateway = configured_gateway()
        try:
            run_collector_alerts(
                store, gateway, stop, interval=interval, clock=clock, on_report=_show
            )
        except KeyboardInterrupt:
            pass
        finally:
            gateway.close()
    except GatewayError as exc:
        fail(str(exc))
    finally:
        if isinstance(store, SqliteAlertStore):
            store.close()


@alerts.command("list")
@DB_OPTION
@click.option("--limit", default=50, show_default=True)
@click.option("--escalated", is_flag=True, help="Only alerts waiting for an operator.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def list_command(
    ctx: click.Context, db: Path | None, limit: int, escalated: bool, as_json: bool
) -> None:
    """List the newest alerts with their states (numbers masked, texts not shown)."""
    store = _alert_store(ctx, db, create=False)
    try:
        found = store.escalated()[:limit] if escalated else store.list_alerts(limit)
        rows = [alert.summary() for alert in found]
    finally:
        if isinstance(store, SqliteAlertStore):
            store.close()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        flag = " ESCALATED: " + str(row["escalation_reason"]) if row["escalated"] else ""
        click.echo(
            f"{row['id']:>6} {row['merchant_id']} {row['gap_id']} {row['stage']:<8} "
            f"{row['state']:<9} {row['to']}{flag}"
        )


@alerts.command("preview")
@click.option("--gap", "gap_id", type=int, required=True, help="Gap id (as in `collector gaps`).")
@click.option("--locale", type=click.Choice(LOCALES), default=None, help="Default: merchant's.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def preview_command(ctx: click.Context, gap_id: int, locale: str | None, as_json: bool) -> None:
    """Show the SMS a gap produces: text, encoding and parts (nothing is sent or queued)."""
    store = _collector_store(ctx, create=False)
    try:
        shown = preview_gap(store.store, gap_id, locale)
    except (PlannerError, TemplateError) as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(shown, ensure_ascii=False))
        return
    click.echo(
        f"gap {shown['gap_id']} ({shown['category']}) to {shown['to']} in {shown['locale']}: "
        f"{shown['part_count']} part(s), {shown['encoding']}"
    )
    stages = ", ".join(str(s) for s in shown["stages_queued"]) or "none"
    click.echo(f"stages queued: {stages}; due now: {shown['stage_due_now'] or 'nothing'}")
    if shown["held"]:
        click.echo(f"held: {shown['held']}")
    click.echo(str(shown["text"]))


def register(group: click.Group) -> None:
    """Attach ``alerts`` to the ``settleguard collector`` group."""
    group.add_command(alerts)
