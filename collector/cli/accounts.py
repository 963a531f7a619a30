"""``settleguard collector accounts list | review | import-reviews``: card changes under review.

Thin click wrappers over :mod:`collector.card_reviews` (audited, and the merchant is reconciled
again). Errors print one line and exit 1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
from settleguard.collector.card_reviews import ReviewError, import_reviews, review_account
from settleguard.collector.cli.context import app_from_context as _app
from settleguard.collector.cli.context import fail as _fail
from settleguard.collector.store.schema import ACCOUNT_STATUSES
from settleguard.collector.web.db import get_store


@click.group("accounts")
def accounts_group() -> None:
    """Settlement accounts and the review of card changes."""


@accounts_group.command("list")
@click.option("--merchant", "merchant_id", required=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def accounts_list(ctx: click.Context, merchant_id: str, as_json: bool) -> None:
    """A merchant's settlement accounts with their review state (masked numbers only)."""
    store = get_store(_app(ctx))
    store.migrate()
    rows = store.query(
        "SELECT id, account_masked, holder_name, status, requested_at, effective_at"
        " FROM settlement_accounts WHERE merchant_id = ? ORDER BY id",
        (merchant_id,),
    )
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, default=str))
        return
    for row in rows:
        click.echo(
            f"{row['id']:>6} {row['account_masked']:<24} {row['status']:<13} "
            f"{row['holder_name'] or ''} requested {row['requested_at'] or '-'} "
            f"effective {row['effective_at'] or '-'}"
        )


@accounts_group.command("review")
@click.argument("account_id", type=int)
@click.option(
    "--status", required=True, type=click.Choice([s for s in ACCOUNT_STATUSES if s != "requested"])
)
@click.option("--reference", default=None, help="the acquirer's reference for this decision")
@click.option("--date", "decided", default=None, help="when the acquirer decided: YYYY-MM-DD")
@click.option("--note", default=None)
@click.option("--actor", default="cli", help="who records it (audit log)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def accounts_review(
    ctx: click.Context,
    account_id: int,
    status: str,
    reference: str | None,
    decided: str | None,
    note: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Move a card change along its review: under_review, then active or rejected."""
    at = None
    if decided:
        try:
            at = datetime.strptime(decided, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            _fail(f"--date {decided!r}: expected YYYY-MM-DD")
    store = get_store(_app(ctx))
    store.migrate()
    try:
        after = review_account(
            store, account_id, status, actor=actor, note=note, reference=reference, at=at
        )
    except ReviewError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(after, ensure_ascii=False, default=str))
    else:
        click.echo(f"settlement account {account_id} is {after['status']}")


@accounts_group.command("import-reviews")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--actor", default="acquirer-file", help="recorded as who decided (audit log)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def accounts_import_reviews(ctx: click.Context, file: Path, actor: str, as_json: bool) -> None:
    """Apply the acquirer's card-change review export (审核中 / 审核通过 / 审核拒绝)."""
    store = get_store(_app(ctx))
    store.migrate()
    try:
        counts = import_reviews(store, file.read_bytes(), actor=actor)
    except ReviewError as exc:
        _fail(f"{file.name}: {exc}")
    if as_json:
        click.echo(json.dumps(counts, ensure_ascii=False))
    else:
        click.echo(
            f"{file.name}: {counts['applied']} applied, {counts['skipped']} already so, "
            f"{counts['unknown']} unknown accounts"
        )
    for line, error in sorted(counts["errors"].items()):
        click.echo(f"error: line {line}: {error}", err=True)


def register(group: click.Group) -> None:
    """Add ``accounts`` to the collector's click group."""
    group.add_command(accounts_group)
