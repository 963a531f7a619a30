"""Differential tests: the engine's memoised fast paths against straightforward references.

:class:`~collector.reconcile.expected.ExpectedBuilder` computes business and due dates by
integer arithmetic per UTC day, resolves accounts once per interval of the history and inlines
the fee formula. Here each of its results is recomputed the plain way (``astimezone`` per batch,
the account functions at the payout instant, :meth:`FeeSchedule.bucket_fee`) on random inputs,
including zones with daylight-saving switches and close times right around them.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from settleguard.collector.reconcile import (
    AccountChange,
    Batch,
    Bucket,
    ExpectedCredit,
    FeeRule,
    FeeSchedule,
    Merchant,
    PayoutRecord,
    ReconcileConfig,
    load_calendar,
)
from settleguard.collector.reconcile.expected import (
    ExpectedBuilder,
    account_in_force,
    business_date,
    due_date,
    payout_instant,
    pending_change,
    previous_account,
)
from settleguard.collector.reconcile.matching import reference_index, reference_tokens

CALENDAR = load_calendar()
CONFIG = ReconcileConfig()
ZONES = (
    "Asia/Shanghai",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # half-hour DST switch
    "America/Santiago",  # switches at local midnight
    "Asia/Kolkata",
    "UTC",
)
#: instants near 2025's DST switches in the zones above, plus ordinary days
SWITCHES = (
    datetime(2025, 3, 9, 7, tzinfo=UTC),
    datetime(2025, 3, 30, 1, tzinfo=UTC),
    datetime(2025, 4, 5, 15, tzinfo=UTC),
    datetime(2025, 4, 6, 3, tzinfo=UTC),
    datetime(2025, 10, 26, 1, tzinfo=UTC),
    datetime(2025, 11, 2, 6, tzinfo=UTC),
    datetime(2025, 9, 7, 4, tzinfo=UTC),
    datetime(2025, 6, 15, 12, tzinfo=UTC),
)
SCHEDULES = (
    FeeSchedule((FeeRule("UPI", 60, cap=2000),), FeeRule("*", 55)),
    FeeSchedule((FeeRule("VISA", 125, fixed=3),), FeeRule("*", 38, cap=10), True),
)
START = datetime(2025, 3, 1, tzinfo=UTC)


@st.composite
def close_times(draw: st.DrawFn) -> datetime:
    base = draw(st.sampled_from(SWITCHES))
    offset = timedelta(minutes=draw(st.integers(-26 * 60, 26 * 60)))
    closed = base + offset + timedelta(microseconds=draw(st.sampled_from([0, 1, 999_999])))
    if draw(st.booleans()):  # not every adapter hands over UTC datetimes
        return closed.astimezone(draw(st.sampled_from([UTC, START.astimezone().tzinfo])))
    return closed


@st.composite
def histories(draw: st.DrawFn) -> tuple[AccountChange, ...]:
    changes = []
    for index in range(draw(st.integers(0, 3))):
        requested = START + timedelta(hours=draw(st.integers(-24 * 60, 24 * 300)))
        status = draw(
            st.sampled_from(["requested", "under_review", "active", "rejected", "retired"])
        )
        decided = requested + timedelta(hours=draw(st.integers(0, 24 * 40)))
        effective = decided if status in ("active", "retired") else None
        changed = decided if draw(st.booleans()) or effective else None
        changes.append(
            AccountChange(
                requested,
                f"C{index}",
                "M1",
                f"K{index % 2}",
                "1234",
                status,  # type: ignore[arg-type]
                effective,
                changed,
            )
        )
    return tuple(changes)


def reference_dates_and_accounts(
    merchant: Merchant, history: tuple[AccountChange, ...], batch: Batch
) -> tuple[object, ...]:
    """The expected credit's fields computed the plain way, one batch at a time."""
    business = business_date(merchant, batch.closed_at)
    due = due_date(merchant, business, CALENDAR)
    at = payout_instant(merchant, due)
    current = account_in_force(history, at)
    pending = pending_change(history, at, rejected_days=CONFIG.rejected_change_days)
    if pending is not None and current is not None and pending.account_key == current.account_key:
        pending = None
    previous = (
        previous_account(history, current, at, days=CONFIG.previous_account_days)
        if current is not None
        else None
    )
    keys = [c.account_key for c in (current, pending, previous) if c is not None]
    fees = sum(merchant.fee_schedule.bucket_fee(b) for b in batch.buckets)
    return (
        business,
        due,
        fees,
        batch.net_amount - fees,
        current.account_key if current else None,
        current.account_masked if current else None,
        pending.change_id if pending else None,
        pending.account_key if pending else None,
        previous.account_key if previous else None,
        tuple(dict.fromkeys(keys)),
    )


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    cycle=st.sampled_from(["T+1", "D0"]),
    cutoff=st.sampled_from([time(0, 0), time(0, 30), time(21, 0), time(23, 59, 59, 999_999)]),
    schedule=st.sampled_from(SCHEDULES),
    history=histories(),
    closes=st.lists(close_times(), min_size=1, max_size=12),
    amounts=st.lists(st.integers(-5_000, 2_000_000), min_size=3, max_size=3),
)
def test_expected_builder_agrees_with_the_plain_computation(
    zone: str,
    cycle: str,
    cutoff: time,
    schedule: FeeSchedule,
    history: tuple[AccountChange, ...],
    closes: list[datetime],
    amounts: list[int],
) -> None:
    merchant = Merchant("M1", "shop", cycle, cutoff, zone, schedule)  # type: ignore[arg-type]
    # exactly at the cut-off (not after it: same day) and one microsecond later (next day)
    at_cutoff = datetime.combine(closes[0].date(), cutoff, ZoneInfo(zone)).astimezone(UTC)
    closes = [*closes, at_cutoff, at_cutoff + timedelta(microseconds=1)]
    builder = ExpectedBuilder(merchant, history, CALENDAR, CONFIG)
    sale, refund, void = amounts
    for number, closed in enumerate(closes):
        buckets = (Bucket("UPI", sale, max(refund, 0), max(void, 0)), Bucket("VISA", abs(refund)))
        batch = Batch(
            "M1", "T1", number, closed, "156", buckets, sum(b.net_amount for b in buckets)
        )
        exp = builder.build(batch)
        got = (
            exp.business_date,
            exp.due_date,
            exp.fees,
            exp.amount,
            exp.account_key,
            exp.account_masked,
            exp.pending_change_id,
            exp.pending_account_key,
            exp.previous_account_key,
            exp.candidate_accounts,
        )
        assert got == reference_dates_and_accounts(merchant, history, batch), closed


def plain_reference_index(
    open_batches: list[ExpectedCredit], payouts: list[PayoutRecord]
) -> dict[str, list[str]]:
    """:func:`reference_index` without its shortcuts: every alias of every batch indexed."""
    index: dict[str, list[str]] = {}
    by_alias: dict[str, list[str]] = {}
    by_due: dict[object, list[str]] = {}
    for exp in open_batches:
        key = exp.batch_key
        aliases = [key.upper(), f"{exp.terminal_id}#{exp.batch_no}".upper()]
        if exp.reference:
            aliases.append(exp.reference.upper())
            for token in reference_tokens(exp.reference):
                index.setdefault(token, []).append(key)
        for alias in aliases:
            by_alias.setdefault(alias, []).append(key)
        by_due.setdefault(exp.due_date, []).append(key)
    for payout in payouts:
        if not payout.reference:
            continue
        if payout.batch_refs:
            keys = [k for ref in payout.batch_refs for k in by_alias.get(ref.upper(), ())]
        else:
            keys = list(by_due.get(payout.settlement_date, ()))
        for token in reference_tokens(payout.reference):
            index.setdefault(token, []).extend(keys)
    return index


_TIDS = st.sampled_from(["T1", "t1", "T2", "POS0001"])
_REFS = st.sampled_from(["", "PAY0000001", "pay0000001", "BATCHREF77", "PO-2025-0001", "x"])


@settings(max_examples=300, deadline=None)
@given(
    batches=st.lists(
        st.tuples(_TIDS, st.integers(1, 4), st.integers(0, 3), _REFS),
        max_size=8,
        unique_by=lambda b: b[:2],
    ),
    payouts=st.lists(
        st.tuples(
            _REFS,
            st.integers(0, 3),
            st.lists(
                st.sampled_from(
                    [
                        "T1#1",
                        "t1#2",
                        "T2#3",
                        "POS0001#4",
                        "BATCHREF77",
                        "T1#1@20250303T130000Z",
                        "?",
                    ]
                ),
                max_size=3,
            ),
        ),
        max_size=5,
    ),
)
def test_reference_index_agrees_with_indexing_every_alias(
    batches: list[tuple[str, int, int, str]], payouts: list[tuple[str, int, list[str]]]
) -> None:
    day = datetime(2025, 3, 3).date()
    expected = [
        ExpectedCredit(
            f"{tid}#{no}@2025030{3 + due}T130000Z", "M1", tid, no, 100, 1, 99, "CNY", day,
            day + timedelta(days=due), "k", "1234", reference=ref or None,
        )
        for tid, no, due, ref in batches
    ]  # fmt: skip
    records = [
        PayoutRecord(
            "M1", day + timedelta(days=due), 100, 1, 99, "1234", "paid", "", ref, tuple(refs)
        )  # type: ignore[arg-type]
        for ref, due, refs in payouts
    ]
    assert reference_index(expected, records) == plain_reference_index(expected, records)
