"""``settleguard agent slip``: type a printed settlement slip (结算单) into a signed batch."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from settleguard.agent.cli_terminal import _failures
from settleguard.agent.errors import UsageError
from settleguard.agent.home import agent_home
from settleguard.agent.report import totals_table, totals_to_json
from settleguard.agent.slip_entry import (
    SlipEntry,
    entry_from_json,
    merge_rows,
    parse_amount,
    parse_count,
    parse_time,
)
from settleguard.protocol.buckets import CHINA_BUCKETS


def _ask(label: str, default: str | None = None) -> str:
    return str(click.prompt(label, default=default, err=True)).strip()


def prompt_entry(default_merchant: str | None) -> SlipEntry:
    """Ask for every figure on the slip, one at a time, in the slip's order."""
    click.echo("请按结算单填写 / type what the settlement slip says", err=True)
    merchant = _ask("商户号 merchant no.", default_merchant)
    terminal = _ask("终端号 terminal no.")
    batch_no = parse_count(_ask("批次号 batch no."), "batch no.")
    when = parse_time(_ask("日期 date (YYYY-MM-DD)"), _ask("时间 time (HH:MM:SS)", "00:00:00"))
    rows = []
    for bucket, label in CHINA_BUCKETS.items():
        count = parse_count(_ask(f"{label} ({bucket}) 笔数 count", "0"), f"{bucket} count")
        amount = 0
        if count:
            amount = parse_amount(_ask(f"{label} ({bucket}) 金额(元) amount"), f"{bucket} amount")
        rows.append((bucket, count, amount))
    total = parse_amount(_ask("合计金额(元) slip total"), "slip total")
    return SlipEntry(merchant, terminal, batch_no, when, merge_rows(rows), total)


def _read_json(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        return json.loads(text)
    except OSError as exc:
        raise UsageError(f"{source}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise UsageError(f"{source}: not JSON ({exc})") from None


@click.command("slip")
@click.option(
    "--from-json",
    "json_source",
    default=None,
    metavar="FILE",
    help="Read the slip from a JSON file ('-' for stdin) instead of asking.",
)
@click.option("--merchant", "merchant_id", default=None, help="Merchant no. (default: enrollment).")
@click.option("--home", "home_dir", default=None, help="Agent home directory.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON in and out: read the slip as JSON (from --from-json, else stdin), print one "
    "JSON object.",
)
def slip(
    json_source: str | None, merchant_id: str | None, home_dir: str | None, as_json: bool
) -> None:
    """Type a printed settlement slip (结算单) for a terminal with no register link.

    The rows must add up to the slip's own total; the batch is then signed and stored like a
    batch read from a terminal, marked as typed (source: slip).
    """
    from settleguard.agent.technician import merchant_of, store_record

    home = agent_home(home_dir)
    with _failures(as_json):
        merchant = merchant_of(home, merchant_id)
        if json_source is not None or as_json:
            source = json_source or "-"
            entry = entry_from_json(_read_json(source), default_merchant=merchant)
        else:
            entry = prompt_entry(merchant)
        entry.check()
        summary = entry.batch_summary()
        seq = store_record(home, summary)
    totals = entry.totals()
    if as_json:
        payload = totals_to_json(totals, summary.closed_at)
        payload.update(
            stored_seq=seq,
            merchant_no=summary.merchant_id,
            closed_at=summary.closed_at,
            source="slip",
        )
        click.echo(json.dumps(payload, ensure_ascii=False))
    else:
        click.echo(totals_table(totals, summary.closed_at))
        click.echo(
            f"\nstored as record {seq} (typed slip); it is sent when the collector is reachable"
        )


def register(group: click.Group) -> None:
    """Attach ``slip`` to the ``agent`` group."""
    group.add_command(slip)
