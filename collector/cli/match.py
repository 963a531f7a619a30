"""``settleguard collector match …``: match by hand, unmatch, split, suggestions, list.

Thin click wrappers over :mod:`collector.reconcile.manual`. Amounts are typed in yuan (``1514.86``)
and kept in fen. Errors print one line and exit 1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click
from settleguard.collector.cli.context import app_from_context as _app
from settleguard.collector.cli.context import fail as _fail
from settleguard.collector.reconcile import manual as hand_match
from settleguard.collector.statements.amounts import (
    AmountError,
    format_minor,
    parse_decimal,
    to_minor_units,
)
from settleguard.collector.store import Store
from settleguard.collector.web.db import get_store


def _store(ctx: click.Context) -> Store:
    store = get_store(_app(ctx))
    store.migrate()
    return store


def _echo(result: Any, as_json: bool, line: str) -> None:
    click.echo(json.dumps(result, ensure_ascii=False, default=str) if as_json else line)


def _run(action: Any) -> Any:
    try:
        return action()
    except hand_match.HandMatchError as exc:
        _fail(str(exc))


@click.group("match")
def match_group() -> None:
    """Match credits to batches by hand, undo it, split a credit, see suggestions."""


@match_group.command("add")
@click.option("--merchant", "merchant_id", required=True)
@click.option("--batch", "batch_keys", multiple=True, required=True, help="batch key (repeatable)")
@click.option("--credit", "credit_ids", multiple=True, required=True, help="credit id (repeatable)")
@click.option("--note", required=True, help="why (kept in the audit log)")
@click.option("--actor", default="cli", help="who decides (audit log)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def match_add(
    ctx: click.Context,
    merchant_id: str,
    batch_keys: tuple[str, ...],
    credit_ids: tuple[str, ...],
    note: str,
    actor: str,
    as_json: bool,
) -> None:
    """Record that the credits pay the batches; the rules never undo it."""
    store = _store(ctx)
    done = _run(
        lambda: hand_match.match_by_hand(
            store,
            merchant_id,
            list(batch_keys),
            list(credit_ids),
            note=note,
            actor=actor,
            now=datetime.now(UTC),
        )
    )
    _echo(
        done,
        as_json,
        f"hand match {done['id']}: {len(batch_keys)} batch(es), {len(credit_ids)} credit(s)",
    )


@match_group.command("undo")
@click.argument("hand_id", type=int)
@click.option("--note", required=True)
@click.option("--actor", default="cli")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def match_undo(ctx: click.Context, hand_id: int, note: str, actor: str, as_json: bool) -> None:
    """Undo a hand match or a split; the rules decide again."""
    store = _store(ctx)
    done = _run(
        lambda: hand_match.unmatch(store, hand_id, note=note, actor=actor, now=datetime.now(UTC))
    )
    _echo(done, as_json, f"hand match {hand_id} undone")


@match_group.command("split")
@click.option("--merchant", "merchant_id", required=True)
@click.option("--credit", "credit_id", required=True)
@click.option("--amounts", required=True, help="parts in yuan, comma-separated: 1514.86,100.00")
@click.option("--currency", default="CNY", show_default=True)
@click.option("--note", required=True)
@click.option("--actor", default="cli")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def match_split(
    ctx: click.Context,
    merchant_id: str,
    credit_id: str,
    amounts: str,
    currency: str,
    note: str,
    actor: str,
    as_json: bool,
) -> None:
    """Split one credit into parts that add up to it."""
    try:
        parts = [to_minor_units(parse_decimal(p), currency) for p in amounts.split(",")]
    except AmountError as exc:
        _fail(f"--amounts: {exc}")
    store = _store(ctx)
    done = _run(
        lambda: hand_match.split_credit(
            store, merchant_id, credit_id, parts, note=note, actor=actor, now=datetime.now(UTC)
        )
    )
    _echo(done, as_json, f"credit {credit_id} split into {', '.join(done['parts'])}")


@match_group.command("suggest")
@click.argument("gap_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def match_suggest(ctx: click.Context, gap_id: int, as_json: bool) -> None:
    """Credits that may pay a gap's batches, best first."""
    store = _store(ctx)
    found = _run(lambda: hand_match.suggest_matches(store, gap_id, now=datetime.now(UTC)))
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False))
        return
    if not found:
        click.echo(f"no suggestion for gap {gap_id}")
    payer = {True: "acquirer", None: "payer unknown", False: "NOT the acquirer"}
    for n, item in enumerate(found, 1):
        click.echo(
            f"{n}. credits {','.join(item['credit_ids'])}: ¥{format_minor(item['amount'], 'CNY')} "
            f"({item['difference']:+d} fen, {item['days_from_due']} days from due, "
            f"{payer[item['from_acquirer']]})"
        )


@match_group.command("list")
@click.option("--merchant", "merchant_id", required=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def match_list(ctx: click.Context, merchant_id: str, as_json: bool) -> None:
    """Hand matches and splits of a merchant, undone ones too."""
    rows = hand_match.list_hand_matches(_store(ctx), merchant_id)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, default=str))
        return
    for row in rows:
        state = f"undone by {row['undone_by']}" if row["undone_at"] else "in force"
        click.echo(
            f"{row['id']:>6} {row['kind']:<5} batches {','.join(row['batch_keys']) or '-'} "
            f"credits {','.join(row['credit_ids'])} by {row['actor']}: {row['note']} ({state})"
        )


def register(group: click.Group) -> None:
    """Add ``match`` to the collector's click group."""
    group.add_command(match_group)
