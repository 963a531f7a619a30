"""Small constructors for reconciliation scenarios (Asia/Shanghai merchant, fen amounts)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from settleguard.collector.reconcile import (
    AccountChange,
    Batch,
    Bucket,
    Credit,
    FeeRule,
    FeeSchedule,
    Merchant,
    StatementCoverage,
    load_calendar,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = load_calendar()
MID = "M001"
OLD = "hmac-old"
NEW = "hmac-new"
SCHEDULE = FeeSchedule(rules=(FeeRule("UPI", 60),), default=FeeRule("*", 60))


def merchant(cycle: str = "T+1", cutoff: time = time(23, 0)) -> Merchant:
    return Merchant(MID, "Noodle shop", cycle, cutoff, "Asia/Shanghai", SCHEDULE)  # type: ignore[arg-type]


def local(y: int, m: int, d: int, hh: int = 20, mm: int = 0) -> datetime:
    """A Shanghai wall-clock time, returned in UTC like every stored timestamp."""
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI).astimezone(UTC)


def batch(no: int, closed: datetime, amount: int, tid: str = "T1", ref: str | None = None) -> Batch:
    return Batch(MID, tid, no, closed, "156", (Bucket("UPI", amount, sale_count=1),), amount, ref)


def net(amount: int) -> int:
    """Expected credit of a single-bucket batch at 60 bp."""
    return amount - SCHEDULE.default.fee(amount)


def active(change_id: str, key: str, since: datetime) -> AccountChange:
    return AccountChange(since, change_id, MID, key, key[-4:], "active", since, since)


def change(
    change_id: str, key: str, status: str, requested: datetime, decided: datetime | None = None
) -> AccountChange:
    effective = decided if status in ("active", "retired") else None
    return AccountChange(requested, change_id, MID, key, key[-4:], status, effective, decided)  # type: ignore[arg-type]


def credit(cid: str, key: str, day: date, amount: int, ref: str = "", text: str = "") -> Credit:
    return Credit(cid, key, key[-4:], day, day, amount, "156", ref, text)


def covered(key: str, start: date, end: date, ok: bool = True) -> StatementCoverage:
    return StatementCoverage(key, start, end, ok)


OLD_SINCE = local(2024, 1, 1, 9)
HISTORY = (active("C0", OLD, OLD_SINCE),)
