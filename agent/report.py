"""How the agent shows terminal totals: the ``--json`` contract and the readable table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from settleguard.protocol.buckets import add_up, china_bucket
from settleguard.protocol.totals import TerminalTotals

# ISO 4217 numeric -> (alpha code, minor-unit exponent) for the currencies terminals report.
CURRENCIES: dict[str, tuple[str, int]] = {
    "156": ("CNY", 2),
    "978": ("EUR", 2),
    "840": ("USD", 2),
    "344": ("HKD", 2),
    "446": ("MOP", 2),
    "826": ("GBP", 2),
    "756": ("CHF", 2),
    "392": ("JPY", 0),
    "410": ("KRW", 0),
}


def utc_now_iso() -> str:
    """Current UTC time as RFC 3339 with milliseconds and ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def totals_to_json(totals: TerminalTotals, read_at: str) -> dict[str, Any]:
    """The documented ``agent read/close --json`` object."""
    return {
        "protocol": totals.protocol,
        "kind": totals.kind,
        "terminal_id": totals.terminal_id,
        "merchant_no": totals.merchant_id,
        "currency": totals.currency,
        "total_amount": totals.total_amount,
        "receipt_start": totals.receipt_start,
        "receipt_end": totals.receipt_end,
        "buckets": china_buckets(totals),
        "read_at": read_at,
        "batch_no": totals.batch_no,
        "host_reconciled": totals.host_reconciled,
    }


def china_buckets(totals: TerminalTotals) -> list[dict[str, Any]]:
    """``[{name, count, amount}]`` per China bucket, whatever the protocol: schemes that share
    a bucket (ZVT ``visa`` and ``amex`` are both ``foreign``) are added up. The signed record
    keeps each scheme (``docs/envelope.md`` §5.1)."""
    sums = add_up(
        (china_bucket(totals.protocol, b.name), (b.count, b.amount)) for b in totals.buckets
    )
    return [
        {"name": name, "count": count, "amount": amount} for name, (count, amount) in sums.items()
    ]


def format_amount(amount: int, currency: str | None) -> str:
    """``12345`` in EUR -> ``123.45 EUR``; in CNY -> ``¥123.45``; unknown currency -> minor
    units as given."""
    alpha, exponent = CURRENCIES.get(currency or "", (currency or "", 2))
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**exponent) if exponent else (abs(amount), 0)
    text = f"{units:,}" + (f".{minor:0{exponent}d}" if exponent else "")
    if alpha == "CNY":
        return f"{sign}¥{text}"
    return f"{sign}{text} {alpha}".strip()


def totals_table(totals: TerminalTotals, read_at: str) -> str:
    """A plain-text table for technicians."""
    title = (
        "Turnover totals (batch still open)" if totals.kind == "turnover_totals" else "Batch closed"
    )
    lines = [
        title,
        f"  protocol     {totals.protocol}",
        f"  terminal     {totals.terminal_id or 'unknown'}",
        *([f"  merchant     {totals.merchant_id}"] if totals.merchant_id else []),
        f"  batch        {totals.batch_no if totals.batch_no is not None else 'n/a'}",
        f"  receipts     {totals.receipt_start or '-'} .. {totals.receipt_end or '-'}",
        f"  read at      {read_at}",
        "",
        f"  {'bucket':<24}{'count':>7}{'amount':>18}",
    ]
    for bucket in totals.buckets:
        name = china_bucket(totals.protocol, bucket.name)
        label = name if name == bucket.name else f"{name} ({bucket.name})"
        lines.append(
            f"  {label:<24}{bucket.count:>7}{format_amount(bucket.amount, totals.currency):>18}"
        )
    lines.append(
        f"  {'total':<24}{totals.total_count:>7}"
        f"{format_amount(totals.total_amount, totals.currency):>18}"
    )
    return "\n".join(lines)
