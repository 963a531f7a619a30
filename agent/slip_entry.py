"""A settlement slip (结算单) typed by hand, for terminals with no register link.

Many small-merchant terminals (电签 POS, MPOS) cannot be read over a cable. The technician or
merchant types what the printed slip says: merchant number, terminal number, batch number,
date and time, and per card type the count and the amount in yuan, plus the slip's own total.
The rows must add up to that total or nothing is recorded. The record is a batch summary with
``protocol`` and ``source`` ``slip``, signed and synced like any batch.

``closed_at`` is the slip's own printed time (China Standard Time, UTC+8, converted to UTC),
not the moment of typing: typing the same slip twice gives the same batch (same natural key),
so the collector never counts it twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from settleguard.agent.errors import UsageError
from settleguard.protocol.buckets import CHINA_BUCKETS, add_up
from settleguard.protocol.mispos.settlement import CNY, yuan
from settleguard.protocol.mispos.slip import bucket_of, yuan_to_fen
from settleguard.protocol.records import BatchSummary, Bucket, RecordValueError
from settleguard.protocol.totals import BucketTotal, TerminalTotals

CHINA_TIME = timezone(timedelta(hours=8))
JSON_KEYS = {"merchant_no", "terminal_no", "batch_no", "date", "time", "rows", "total"}
ROW_KEYS = {"type", "count", "amount"}


@dataclass(frozen=True, slots=True)
class SlipEntry:
    """What was typed, amounts already in fen."""

    merchant_no: str
    terminal_no: str
    batch_no: int
    local_time: datetime  # the slip's printed date and time (China time, naive)
    rows: tuple[BucketTotal, ...]
    stated_total: int  # the slip's own 合计, fen

    def check(self) -> None:
        """Refuse a slip whose rows do not add up to its own total.

        :raises UsageError: naming the difference in yuan
        """
        row_sum = sum(r.amount for r in self.rows)
        if row_sum != self.stated_total:
            raise UsageError(
                f"the rows add up to {yuan(row_sum)} but the slip's total is "
                f"{yuan(self.stated_total)} (difference {yuan(self.stated_total - row_sum)}); "
                "check each row against the slip and type it again. Nothing was recorded"
            )

    @property
    def closed_at(self) -> str:
        """The slip's time in UTC, RFC 3339 with ``Z``."""
        utc = self.local_time.replace(tzinfo=CHINA_TIME).astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")

    def totals(self) -> TerminalTotals:
        """The slip as protocol-neutral totals (for the common report)."""
        return TerminalTotals(
            protocol="slip",
            kind="end_of_day",
            terminal_id=self.terminal_no,
            currency=CNY,
            buckets=self.rows,
            batch_no=self.batch_no,
            terminal_time=self.local_time.isoformat(),
            total_amount_reported=self.stated_total,
            merchant_id=self.merchant_no,
        )

    def batch_summary(self) -> BatchSummary:
        """The signed record's content.

        :raises UsageError: a number the record refuses (e.g. a terminal number with spaces)
        """
        try:
            return BatchSummary(
                terminal_id=self.terminal_no,
                merchant_id=self.merchant_no,
                batch_no=self.batch_no,
                closed_at=self.closed_at,
                terminal_local_time=self.local_time.isoformat(),
                currency=CNY,
                buckets=tuple(
                    Bucket(r.name, sale_count=r.count, sale_amount=r.amount) for r in self.rows
                ),
                receipt_start=None,
                receipt_end=None,
                host_reconciled=None,
                protocol="slip",
                source="slip",
            )
        except RecordValueError as exc:
            raise UsageError(f"{exc.field}: {exc.message}") from None


def parse_amount(text: str, what: str) -> int:
    """Yuan as typed (``1,523.00``, ``¥64.8``, ``200``) → fen.

    :raises UsageError: not an amount, negative, or more than two decimals
    """
    cleaned = str(text).strip().lstrip("¥￥").strip()
    try:
        fen = yuan_to_fen(cleaned)
    except ValueError:
        raise UsageError(f"{what}: not an amount in yuan like 1523.00") from None
    if fen < 0:
        raise UsageError(f"{what}: must not be negative")
    return fen


def parse_count(value: Any, what: str) -> int:
    """A count as typed.

    :raises UsageError: not a whole number ≥ 0
    """
    text = str(value).strip()
    if type(value) is bool or not text.isascii() or not text.isdigit():
        raise UsageError(f"{what}: must be a whole number of transactions")
    return int(text)


def parse_bucket(text: str, what: str) -> str:
    """A card type: a bucket name (``domestic_debit``) or the slip's label (``内卡借记卡``).

    :raises UsageError: neither
    """
    name = text.strip()
    if name in CHINA_BUCKETS:
        return name
    found = bucket_of(name) or next((b for b, zh in CHINA_BUCKETS.items() if zh == name), None)
    if found is None:
        choices = ", ".join(CHINA_BUCKETS)
        raise UsageError(f"{what}: unknown card type; use one of {choices}")
    return found


def parse_time(date: str, clock: str | None) -> datetime:
    """The slip's date (``YYYY-MM-DD`` or ``YYYYMMDD``) and optional time (``HH:MM:SS``).

    :raises UsageError: not a real date or time
    """
    day = date.strip().replace("/", "-")
    if len(day) == 8 and day.isdigit():
        day = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    try:
        return datetime.strptime(f"{day} {(clock or '00:00:00').strip()}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise UsageError("date/time: expected YYYY-MM-DD and HH:MM:SS as on the slip") from None


def merge_rows(rows: list[tuple[str, int, int]]) -> tuple[BucketTotal, ...]:
    """Rows per bucket in the order of :data:`CHINA_BUCKETS`; rows of one type add up."""
    sums = add_up((bucket, (count, amount)) for bucket, count, amount in rows)
    return tuple(BucketTotal(name, *figures) for name, figures in sums.items() if any(figures))


def entry_from_json(data: Any, *, default_merchant: str | None = None) -> SlipEntry:
    """Build a slip from its JSON form (docs/technician.md, "Typing a settlement slip").

    :raises UsageError: naming the key that is missing or wrong
    """
    if not isinstance(data, Mapping):
        raise UsageError("slip JSON must be an object")
    unknown = sorted(set(data) - JSON_KEYS)
    if unknown:
        shown = "".join("#" if ch.isdigit() else ch for ch in str(unknown[0])[:32])
        raise UsageError(f"slip JSON: unknown key {shown!r}")
    for key in ("terminal_no", "batch_no", "date", "rows", "total"):
        if key not in data:
            raise UsageError(f"slip JSON: missing {key!r}")
    merchant = data.get("merchant_no") or default_merchant
    if not merchant:
        raise UsageError("slip JSON: missing 'merchant_no' (the agent is not enrolled)")
    if not isinstance(data["rows"], list):
        raise UsageError("slip JSON: 'rows' must be a list")
    rows = []
    for i, row in enumerate(data["rows"]):
        where = f"rows[{i}]"
        if not isinstance(row, Mapping) or set(row) != ROW_KEYS:
            raise UsageError(f"slip JSON: {where} needs exactly type, count, amount")
        if isinstance(row["amount"], float):
            raise UsageError(f'slip JSON: {where}.amount: write yuan as a string, e.g. "64.80"')
        rows.append(
            (
                parse_bucket(str(row["type"]), f"{where}.type"),
                parse_count(row["count"], f"{where}.count"),
                parse_amount(str(row["amount"]), f"{where}.amount"),
            )
        )
    if isinstance(data["total"], float):
        raise UsageError('slip JSON: total: write yuan as a string, e.g. "2775.30"')
    return SlipEntry(
        merchant_no=str(merchant).strip(),
        terminal_no=str(data["terminal_no"]).strip(),
        batch_no=parse_count(data["batch_no"], "batch_no"),
        local_time=parse_time(str(data["date"]), data.get("time")),
        rows=merge_rows(rows),
        stated_total=parse_amount(str(data["total"]), "total"),
    )
