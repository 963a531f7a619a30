"""``settleguard collector alerts …``: thin click wrappers over the alert library.

:func:`register` attaches the ``alerts`` group to the ``collector`` group. Every command reads
the SMS settings (:class:`.settings.SmsSettings`) and the collector store from the app
configuration: ``test`` sends one message, ``run`` plans and dispatches (:func:`run_pass`),
``list`` and ``preview`` show alerts and a gap's message, ``templates export`` prints the sheet
to register templates with a provider.

Exit codes: 0 success; 1 the gateway, settings, store or gap failed (one line on stderr says
why); 2 usage error (click's own).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import click
from settleguard.collector.alerts.approval import PROVIDERS, approval_sheet, sheet_csv
from settleguard.collector.alerts.dispatcher import (
    DispatchReport,
    dispatch_due,
    recover_interrupted,
)
from settleguard.collector.alerts.gateway import (
    GatewayError,
    SmsGateway,
    TemplateCall,
    template_provider,
)
from settleguard.collector.alerts.planner import (
    PlannerError,
    PlanReport,
    Wording,
    plan_alerts,
    preview_gap,
)
from settleguard.collector.alerts.policy import AlertPolicy
from settleguard.collector.alerts.settings import SmsSettings
from settleguard.collector.alerts.store import AlertStore, mask_number
from settleguard.collector.alerts.templates import (
    ARRIVED,
    LOCALES,
    TemplateError,
    default_catalog,
    signed,
)
from settleguard.collector.cli.context import as_json as with_place
from settleguard.collector.cli.context import as_of_option, as_of_time

__all__ = ["PassReport", "register", "run_collector_alerts", "run_pass", "send_test"]

DEFAULT_TEST_TEXT = "SettleGuard SMS test 结算守护短信测试"


@dataclass(frozen=True, slots=True)
class PassReport:
    """One pass of the collector's alert loop."""

    plan: PlanReport
    dispatch: DispatchReport


def run_pass(
    alerts: AlertStore,
    gateway: SmsGateway,
    now: datetime,
    policy: AlertPolicy | None = None,
    wording: Wording | None = None,
) -> PassReport:
    """Plan what is due from the gaps, then dispatch it."""
    plan = plan_alerts(alerts.store, now, policy, alert_store=alerts, wording=wording)
    return PassReport(plan, dispatch_due(alerts, gateway, now, policy))


def run_collector_alerts(
    alerts: AlertStore,
    gateway: SmsGateway,
    stop: threading.Event,
    *,
    interval: float = 5.0,
    policy: AlertPolicy | None = None,
    wording: Wording | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_report: Callable[[PassReport], None] | None = None,
) -> None:
    """Settle alerts a crash left in ``sending`` (never by resending), then plan and dispatch
    every *interval* seconds until *stop*."""
    recover_interrupted(alerts, gateway, clock())
    while True:
        report = run_pass(alerts, gateway, clock(), policy, wording)
        if on_report is not None:
            on_report(report)
        if stop.wait(interval):
            return


def send_test(
    gateway: SmsGateway, settings: SmsSettings, to: str, text: str = DEFAULT_TEST_TEXT
) -> dict[str, object]:
    """Send one message and wait for the submit response(s); what ``alerts test`` prints.

    Through a template provider this is the ``ARRIVED`` template with the sheet's samples.
    """
    ref = "test" + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    template = None
    if template_provider(settings.url or "") is not None:
        catalog = default_catalog()
        names = catalog.templates[ARRIVED].variables
        template = TemplateCall(ARRIVED, tuple((n, catalog.variables[n].sample) for n in names))
        text = signed(
            catalog.templates[ARRIVED].texts["zh-CN"].format(**dict(template.params)),
            settings.sign_name,
            "zh-CN",
        )
    result = gateway.send(to, text, client_ref=ref, template=template)
    return {
        "to": mask_number(to),
        "message_ids": list(result.message_ids),
        "parts": result.parts,
        "encoding": result.encoding,
        "template": template.name if template else None,
        "ref": ref,
    }


def _app_config(ctx: click.Context) -> dict[str, object]:
    from settleguard.collector.cli.context import app_from_context

    return dict(app_from_context(ctx).config)


def _settings(ctx: click.Context) -> SmsSettings:
    try:
        return SmsSettings.from_config(_app_config(ctx))
    except GatewayError as exc:
        raise click.ClickException(str(exc)) from None


def _alert_store(ctx: click.Context, *, create: bool) -> AlertStore:
    """The alert store of the instance the command names (says which); a read-only command
    (``create=False``) creates no database where there is none."""
    from settleguard.collector.cli.context import store_from_context

    return AlertStore(store_from_context(ctx, create=create))


def _show(report: PassReport) -> None:
    plan, d = report.plan, report.dispatch
    if plan.queued or d.sent or d.escalated or d.finished or d.uncertain or d.failed:
        click.echo(
            f"queued={len(plan.queued)} skipped={len(plan.skipped)} held={len(plan.held)} "
            f"sent={len(d.sent)} deferred={len(d.deferred)} retry={len(d.retry)} "
            f"failed={len(d.failed)} uncertain={len(d.uncertain)} "
            f"finished={len(d.finished)} escalated={len(d.escalated)}"
        )


@click.group("alerts")
def alerts() -> None:
    """Merchant SMS: templates, test the gateway, run the dispatcher, list and preview alerts."""


@alerts.command("test")
@click.option("--to", "to", required=True, help="Destination number, e.g. +8613800138000.")
@click.option(
    "--text",
    default=DEFAULT_TEST_TEXT,
    show_default=True,
    help="Message text (free-text gateways; template providers send ARRIVED).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def test_command(ctx: click.Context, to: str, text: str, as_json: bool) -> None:
    """Send one message through SETTLEGUARD_SMS_URL and print the provider message id(s)."""
    settings = _settings(ctx)
    try:
        gateway = settings.gateway()
        try:
            outcome = send_test(gateway, settings, to, text)
        finally:
            gateway.close()
    except GatewayError as exc:
        raise click.ClickException(f"SMS test failed: {exc}") from None
    if as_json:
        click.echo(json.dumps(outcome, ensure_ascii=False))
        return
    click.echo(f"sent to {outcome['to']}: {outcome['parts']} part(s), {outcome['encoding']}")
    for message_id in outcome["message_ids"]:  # type: ignore[attr-defined]
        click.echo(f"  message id {message_id}")


@alerts.command("run")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between passes.")
@click.option("--once", is_flag=True, help="One pass, then exit.")
@as_of_option
@click.pass_context
def run_command(ctx: click.Context, interval: float, once: bool, as_of: str | None) -> None:
    """Queue today's SMS from open gaps, send them through SETTLEGUARD_SMS_URL, track receipts.

    Refused when the gateway sends approved templates only and a template the policy can send
    has no approved code. --as-of makes one pass as at that moment (what would have been due
    then; pair it with a file gateway to look without sending).
    """
    moment = as_of_time(as_of) if as_of is not None else None  # a bad date fails first
    settings, policy = _settings(ctx), AlertPolicy()
    try:
        settings.check_ready(policy)
        gateway = settings.gateway()
    except GatewayError as exc:
        raise click.ClickException(str(exc)) from None
    store = _alert_store(ctx, create=True)
    stop = threading.Event()
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731
    if moment is not None:
        clock = lambda: moment  # noqa: E731
    if once or moment is not None:
        stop.set()
    try:
        run_collector_alerts(
            store,
            gateway,
            stop,
            interval=interval,
            policy=policy,
            wording=settings.wording,
            clock=clock,
            on_report=_show,
        )
    except KeyboardInterrupt:
        pass
    except GatewayError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        gateway.close()


@alerts.command("list")
@click.option("--limit", default=50, show_default=True)
@click.option("--escalated", is_flag=True, help="Only alerts waiting for an operator.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def list_command(ctx: click.Context, limit: int, escalated: bool, as_json: bool) -> None:
    """List the newest alerts with their states (numbers masked, texts not shown)."""
    store = _alert_store(ctx, create=False)
    found = store.escalated()[:limit] if escalated else store.list_alerts(limit)
    rows = [alert.summary() for alert in found]
    if as_json:
        click.echo(json.dumps(with_place({"alerts": rows}, ctx), ensure_ascii=False))
        return
    for row in rows:
        flag = " ESCALATED: " + str(row["escalation_reason"]) if row["escalated"] else ""
        click.echo(
            f"{row['id']:>6} {row['merchant_id']} {row['gap_id']} {row['stage']:<8} "
            f"{row['template'] or '-':<19} {row['state']:<9} {row['to']}{flag}"
        )


@alerts.command("preview")
@click.option("--gap", "gap_id", type=int, required=True, help="Gap id (as in `collector gaps`).")
@click.option("--locale", type=click.Choice(LOCALES), default=None, help="Default: merchant's.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def preview_command(ctx: click.Context, gap_id: int, locale: str | None, as_json: bool) -> None:
    """Show the SMS a gap produces on its own: template, text, encoding and parts."""
    settings = _settings(ctx)
    store = _alert_store(ctx, create=False)
    try:
        shown = preview_gap(store.store, gap_id, locale, wording=settings.wording)
    except (PlannerError, TemplateError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(shown, ensure_ascii=False))
        return
    click.echo(
        f"gap {shown['gap_id']} ({shown['category']}) to {shown['to']} in {shown['locale']}: "
        f"template {shown['template']}, {shown['part_count']} part(s), {shown['encoding']}"
    )
    stages = ", ".join(str(s) for s in shown["stages_queued"]) or "none"
    click.echo(f"stages queued: {stages}; due now: {shown['stage_due_now'] or 'nothing'}")
    if shown["held"]:
        click.echo(f"held: {shown['held']}")
    click.echo(str(shown["text"]))


@alerts.group("templates")
def templates_group() -> None:
    """The SMS templates to register with a provider."""


@templates_group.command("export")
@click.option(
    "--provider",
    type=click.Choice(PROVIDERS),
    default="aliyun",
    show_default=True,
    help="Variable syntax: ${name} for Aliyun, {1} for Tencent Cloud.",
)
@click.option("--json", "fmt", flag_value="json", help="A JSON array.")
@click.option("--csv", "fmt", flag_value="csv", default=True, help="CSV (the default).")
def export_command(provider: str, fmt: str) -> None:
    """Print the approval sheet: name, type, text, variables with types and samples, use."""
    rows = approval_sheet(provider)
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        click.echo(sheet_csv(rows), nl=False)


def register(group: click.Group) -> None:
    """Attach ``alerts`` to the ``settleguard collector`` group."""
    group.add_command(alerts)
