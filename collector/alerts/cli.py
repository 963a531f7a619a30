"""``settleguard collector alerts …``: thin click wrappers over the alert library.

Exit codes: 0 success; 1 the gateway or store failed (one line on stderr says why);
2 usage error (click's own).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click

from .gateway import GatewayError, SmsGateway, gateway_from_url
from .outbox import (
    AlertStore,
    DispatchReport,
    SqliteAlertStore,
    dispatch_due,
    mask_number,
    recover_interrupted,
)
from .policy import AlertPolicy
from .templates import preview

R = TypeVar("R")

__all__ = ["alerts", "configured_gateway", "preview", "run_dispatcher", "run_loop", "send_test"]

SMS_URL_ENV = "SETTLEGUARD_SMS_URL"
DEFAULT_TEST_TEXT = "SettleGuard SMS test 结算守护短信测试"


def configured_gateway() -> SmsGateway:
    """The gateway named by ``SETTLEGUARD_SMS_URL``.

    :raises GatewayError: the variable is unset or names an unusable gateway
    """
    url = os.environ.get(SMS_URL_ENV)
    if not url:
        raise GatewayError(f"{SMS_URL_ENV} is not set (e.g. file:///tmp/sms.jsonl)")
    return gateway_from_url(url)


def send_test(gateway: SmsGateway, to: str, text: str = DEFAULT_TEST_TEXT) -> dict[str, object]:
    """Send one message and wait for the submit response(s); what ``alerts test`` prints."""
    ref = "test" + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    result = gateway.send(to, text, client_ref=ref)
    return {
        "to": mask_number(to),
        "message_ids": list(result.message_ids),
        "parts": result.parts,
        "encoding": result.encoding,
        "ref": ref,
    }


def run_loop(
    store: AlertStore,
    gateway: SmsGateway,
    stop: threading.Event,
    step: Callable[[AlertStore, SmsGateway, datetime, AlertPolicy | None], R],
    *,
    interval: float = 5.0,
    policy: AlertPolicy | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_report: Callable[[R], None] | None = None,
) -> None:
    """Settle alerts a crash left in ``sending`` (never by resending), then run ``step`` every
    *interval* seconds until *stop*."""
    recover_interrupted(store, gateway, clock())
    while True:
        report = step(store, gateway, clock(), policy)
        if on_report is not None:
            on_report(report)
        if stop.wait(interval):
            return


def run_dispatcher(
    store: AlertStore,
    gateway: SmsGateway,
    stop: threading.Event,
    *,
    interval: float = 5.0,
    policy: AlertPolicy | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_report: Callable[[DispatchReport], None] | None = None,
) -> None:
    """Dispatch what is due every *interval* seconds until *stop* (see :func:`run_loop`)."""
    run_loop(store, gateway, stop, dispatch_due, interval=interval, policy=policy, clock=clock,
             on_report=on_report)  # fmt: skip


@click.group("alerts")
def alerts() -> None:
    """Merchant SMS alerts: test the gateway, run the dispatcher, list alerts."""


@alerts.command("test")
@click.option("--to", "to", required=True, help="Destination number, e.g. +8613800138000.")
@click.option("--text", default=DEFAULT_TEST_TEXT, show_default=True, help="Message text.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def test_command(to: str, text: str, as_json: bool) -> None:
    """Send one message through SETTLEGUARD_SMS_URL and print the provider message id(s)."""
    try:
        gateway = configured_gateway()
        try:
            outcome = send_test(gateway, to, text)
        finally:
            gateway.close()
    except GatewayError as exc:
        raise click.ClickException(f"SMS test failed: {exc}") from None
    if as_json:
        click.echo(json.dumps(outcome, ensure_ascii=False))
    else:
        click.echo(f"sent to {outcome['to']}: {outcome['parts']} part(s), {outcome['encoding']}")
        for message_id in outcome["message_ids"]:  # type: ignore[attr-defined]
            click.echo(f"  message id {message_id}")


DB_OPTION = click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="SQLite alert store.",
)


@alerts.command("run")
@DB_OPTION
@click.option("--interval", default=5.0, show_default=True, help="Seconds between passes.")
@click.option("--once", is_flag=True, help="One pass, then exit.")
def run_command(db: Path, interval: float, once: bool) -> None:
    """Dispatch due alerts through SETTLEGUARD_SMS_URL, track receipts, escalate failures."""
    store = SqliteAlertStore(db)
    stop = threading.Event()
    if once:
        stop.set()

    def show(report: DispatchReport) -> None:
        if report.sent or report.escalated or report.finished or report.uncertain:
            click.echo(
                f"sent={len(report.sent)} deferred={len(report.deferred)} "
                f"retry={len(report.retry)} failed={len(report.failed)} "
                f"uncertain={len(report.uncertain)} finished={len(report.finished)} "
                f"escalated={len(report.escalated)}"
            )

    try:
        gateway = configured_gateway()
        try:
            run_dispatcher(store, gateway, stop, interval=interval, on_report=show)
        except KeyboardInterrupt:
            pass
        finally:
            gateway.close()
    except GatewayError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


@alerts.command("list")
@DB_OPTION
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_command(db: Path, limit: int, as_json: bool) -> None:
    """List the newest alerts with their states (numbers masked, texts not shown)."""
    store = SqliteAlertStore(db)
    try:
        rows = [alert.summary() for alert in store.list_alerts(limit)]
    finally:
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
