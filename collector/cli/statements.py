"""``settleguard collector import | merchants import | reconcile | gaps``: thin click wrappers.

Each command calls one library function (:mod:`collector.statements.importer`, :mod:`collector.merchants`,
:mod:`collector.reconcile.store`); :func:`register` adds them to the collector's click group.
Errors print one line that says where, and exit 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from settleguard.collector.cli.context import app_from_context as _app
from settleguard.collector.cli.context import as_json as _with_place
from settleguard.collector.cli.context import as_of_option, as_of_time
from settleguard.collector.cli.context import fail as _fail
from settleguard.collector.cli.context import store_from_context as _store
from settleguard.collector.enrollment.keys import CollectorKeys, KeyFileError, load_keys
from settleguard.collector.merchants import MerchantFileError, import_merchants
from settleguard.collector.money import format_money, minor_keys
from settleguard.collector.reconcile import CalendarError, load_calendar
from settleguard.collector.reconcile.store import list_gaps, reconcile
from settleguard.collector.statements import FORMATS
from settleguard.collector.statements.importer import ImportRejected, import_file
from settleguard.collector.store import Store


def _store_and_keys(ctx: click.Context) -> tuple[Store, CollectorKeys]:
    app = _app(ctx)
    store = _store(ctx, create=True)
    try:
        keys = load_keys(Path(app.config["KEYS_DIR"]), sealing_private=False)
    except KeyFileError as exc:
        _fail(f"{exc} (account numbers are matched by the collector's HMAC key)")
    return store, keys


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["auto", *FORMATS]), default="auto", show_default=True
)
@click.option("--profile", default=None, help="CSV / payout column-mapping profile")
@click.option("--profile-dir", type=click.Path(file_okay=False), default=None)
@click.option("--account", default=None, help="account number, when the file does not name it")
@click.option(
    "--account-of",
    "account_of",
    default=None,
    metavar="MERCHANT",
    help="the merchant whose registered account a masked export belongs to",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.pass_context
def import_cmd(
    ctx: click.Context,
    file: Path,
    fmt: str,
    profile: str | None,
    profile_dir: str | None,
    account: str | None,
    account_of: str | None,
    as_json: bool,
) -> None:
    """Import a bank statement or acquirer payout file (re-importing the same file is a no-op)."""
    store, keys = _store_and_keys(ctx)
    try:
        result = import_file(
            store,
            file.read_bytes(),
            filename=file.name,
            account_hmac=keys.account_hmac,
            fmt=fmt,
            profile=profile,
            profile_dir=profile_dir,
            account=account,
            account_of=account_of,
            open_account=keys.open_card_change,
            actor="cli",
        )
    except ImportRejected as exc:
        if as_json:
            click.echo(json.dumps({"error": str(exc), "import_id": exc.import_id}))
        _fail(f"{exc} (recorded as rejected import {exc.import_id}; nothing stored)")
        return
    summary = result.summary
    if as_json:
        shown = _with_place(minor_keys(summary, ("credit_total", "debit_total")), ctx)
        click.echo(json.dumps(shown, ensure_ascii=False, sort_keys=True))
        return
    currency = summary.get("currency")
    if result.duplicate:
        click.echo(f"{file.name}: already imported as import {result.import_id}; nothing new")
        return
    click.echo(
        f"{file.name}: {summary['format']} account {summary['account'] or '-'}: "
        f"{summary['credits']} credits ({format_money(summary['credit_total'], currency)}), "
        f"{summary['debits']} debits, "
        f"{summary['reversals']} reversals, {summary['pending']} pending, "
        f"{summary['rejected']} rejected"
        + ("; BALANCE CHAIN BROKEN" if summary.get("balance_mismatch") else "")
    )
    if summary.get("overlaps"):
        click.echo(
            f"{file.name}: period overlaps import(s) "
            f"{', '.join(str(i) for i in summary['overlaps'])}; "
            f"{summary['already_stored']} entries were already stored and were skipped"
        )
    if summary.get("new_in_overlap"):
        click.echo(
            f"warning: {file.name}: {summary['new_in_overlap']} entries fall on days an earlier"
            " import already covered but were not in it; compare the two downloads",
            err=True,
        )


@click.group("merchants")
def merchants_group() -> None:
    """Merchant master data and settlement accounts."""


@merchants_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--actor", default="cli", help="who made the edit (account history)")
@click.pass_context
def merchants_import(ctx: click.Context, file: Path, actor: str) -> None:
    """Create or update merchants from a CSV (all or nothing)."""
    store, keys = _store_and_keys(ctx)
    try:
        counts = import_merchants(
            store, file.read_bytes(), account_hmac=keys.account_hmac, actor=actor
        )
    except MerchantFileError as exc:
        _fail(f"{file.name} {exc}; nothing stored")
        return
    click.echo(f"{file.name}: {counts['merchants']} merchants, {counts['accounts']} new accounts")


@click.command("reconcile")
@click.option("--merchant", "merchant_ids", multiple=True, help="only this merchant (repeatable)")
@click.option("--all", "full", is_flag=True, help="every merchant, not only the changed ones")
@as_of_option
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.pass_context
def reconcile_cmd(
    ctx: click.Context,
    merchant_ids: tuple[str, ...],
    full: bool,
    as_of: str | None,
    as_json: bool,
) -> None:
    """Reconcile merchants touched since the last run (or the ones named).

    --as-of judges lateness at that moment instead of now (re-running a past day; with --all
    to look at every merchant again).
    """
    try:
        calendar = load_calendar()
    except CalendarError as exc:
        _fail(f"working calendar: {exc}")
    store = _store(ctx, create=True)
    now = as_of_time(as_of)
    report = reconcile(store, list(merchant_ids) or None, full=full, now=now, calendar=calendar)
    if as_json:
        click.echo(
            json.dumps(
                _with_place({**report.as_dict(), "as_of": now.isoformat()}, ctx), sort_keys=True
            )
        )
    else:
        click.echo(
            f"{report.merchants} merchants, {report.batches} batches: {report.matches} matches, "
            f"{report.gaps_open} gaps ({report.gaps_new} new, {report.gaps_resolved} resolved)"
        )
    left = calendar.ending_soon(now.date())
    if report.gaps_outside_calendar or left is not None:
        ends = f" ({left} days left)" if left is not None else ""
        click.echo(
            f"warning: the working calendar {calendar.name!r} covers {calendar.valid_from} to "
            f"{calendar.valid_to}{ends}; {report.gaps_outside_calendar} gaps were judged late "
            "against a due date outside it; their SMS wait up to 14 days. Add the next year's "
            "public holidays (SETTLEGUARD_CALENDAR, docs/reconciliation.md) and run "
            "`reconcile --all`.",
            err=True,
        )
    for mid, error in sorted(report.errors.items()):
        click.echo(f"error: merchant {mid}: {error}", err=True)
    if report.errors:
        sys.exit(1)


@click.command("gaps")
@click.option(
    "--status",
    type=click.Choice(["open", "acknowledged", "resolved", "all"]),
    default="open",
    show_default=True,
)
@click.option("--merchant", "merchant_id", default=None)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.pass_context
def gaps_cmd(ctx: click.Context, status: str, merchant_id: str | None, as_json: bool) -> None:
    """List gaps with their category, money at risk, since when and why."""
    store = _store(ctx, create=False)
    rows: list[dict[str, Any]] = list_gaps(
        store, status=None if status == "all" else status, merchant_id=merchant_id
    )
    if as_json:
        shown = [minor_keys(row, ("amount",)) for row in rows]
        click.echo(json.dumps(_with_place({"gaps": shown}, ctx), ensure_ascii=False, default=str))
        return
    for row in rows:
        click.echo(
            f"SG-{row['id']:<5} {row['merchant_id']:<16} {row['category']:<22} "
            f"{format_money(row['amount'], row['currency']):>14} since {row['since']} "
            f"due {row['due_at'] or '-'} {row['status']}: {row['reason'] or ''}"
        )


def register(group: click.Group) -> None:
    """Add the statement, merchant, reconcile and gaps commands to ``group``."""
    for command in (import_cmd, merchants_group, reconcile_cmd, gaps_cmd):
        group.add_command(command)
