"""Settlement cycles across the 2025 Spring Festival week and its moved working weekends.

The calendar (collector/reconcile/calendars/cn.toml): 28 Jan .. 4 Feb 2025 are holidays; Sunday
26 Jan and Saturday 8 Feb are working days (调休上班). T counts working days, D calendar days.
"""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from settleguard.collector.reconcile import (
    Batch,
    Bucket,
    Credit,
    MerchantInputs,
    PayoutRecord,
    StatementCoverage,
    reconcile_merchant,
)
from settleguard.collector.reconcile.expected import cycle_due

from .builders import CALENDAR, MID, OLD, active, local, merchant

D = date
#: business day -> {cycle: (due, fallback)}
CASES = [
    (D(2025, 1, 24), "T+1", D(2025, 1, 26), None),  # Friday -> the make-up Sunday
    (D(2025, 1, 24), "T0", D(2025, 1, 24), D(2025, 1, 26)),
    (D(2025, 1, 24), "D+1", D(2025, 1, 25), None),  # Saturday: calendar days count
    (D(2025, 1, 24), "D0", D(2025, 1, 24), D(2025, 1, 26)),
    (D(2025, 1, 24), "S0", D(2025, 1, 24), D(2025, 1, 26)),
    (D(2025, 1, 25), "T+1", D(2025, 1, 26), None),  # Saturday rest day
    (D(2025, 1, 25), "T0", D(2025, 1, 26), None),
    (D(2025, 1, 25), "D+1", D(2025, 1, 26), None),
    (D(2025, 1, 25), "D0", D(2025, 1, 25), D(2025, 1, 26)),
    (D(2025, 1, 26), "T+1", D(2025, 1, 27), None),  # working Sunday
    (D(2025, 1, 26), "T0", D(2025, 1, 26), D(2025, 1, 27)),
    (D(2025, 1, 27), "T+1", D(2025, 2, 5), None),  # Monday before the festival
    (D(2025, 1, 27), "T0", D(2025, 1, 27), D(2025, 2, 5)),
    (D(2025, 1, 27), "D+1", D(2025, 1, 28), None),  # a holiday: D pays anyway
    (D(2025, 1, 27), "D0", D(2025, 1, 27), D(2025, 2, 5)),
    (D(2025, 1, 29), "T+1", D(2025, 2, 5), None),  # 春节 itself
    (D(2025, 1, 29), "T0", D(2025, 2, 5), None),
    (D(2025, 1, 29), "D+1", D(2025, 1, 30), None),
    (D(2025, 1, 29), "D0", D(2025, 1, 29), D(2025, 2, 5)),
    (D(2025, 1, 29), "S0", D(2025, 1, 29), D(2025, 2, 5)),
    (D(2025, 2, 4), "T0", D(2025, 2, 5), None),  # last holiday
    (D(2025, 2, 4), "D0", D(2025, 2, 4), D(2025, 2, 5)),
    (D(2025, 2, 7), "T+1", D(2025, 2, 8), None),  # Friday -> the make-up Saturday
    (D(2025, 2, 7), "D+1", D(2025, 2, 8), None),
    (D(2025, 2, 8), "T+1", D(2025, 2, 10), None),  # working Saturday -> Monday
    (D(2025, 2, 8), "T0", D(2025, 2, 8), D(2025, 2, 10)),
    (D(2025, 2, 8), "D0", D(2025, 2, 8), D(2025, 2, 10)),
]


@pytest.mark.parametrize(("business", "cycle", "due", "fallback"), CASES)
def test_cycle_due_dates(business: date, cycle: str, due: date, fallback: date | None) -> None:
    assert cycle_due(cycle, business, CALENDAR) == (due, fallback)


@pytest.mark.parametrize(("business", "cycle", "due", "fallback"), CASES)
def test_engine_uses_the_cycle(
    business: date, cycle: str, due: date, fallback: date | None
) -> None:
    m = merchant(cycle)
    closed = local(business.year, business.month, business.day, 20)
    batch = Batch(MID, "T1", 1, closed, "CNY", (Bucket("UPI", 10_000, sale_count=1),), 10_000)
    inputs = MerchantInputs(m, (active("a", OLD, local(2024, 12, 1)),), (batch,))
    exp = reconcile_merchant(inputs, now=closed, calendar=CALENDAR).expected[0]
    assert (exp.business_date, exp.due_date, exp.fallback_due) == (business, due, fallback)


@pytest.mark.parametrize(
    ("cutoff", "business"),
    [(time(23, 0), D(2025, 1, 28)), (time(23, 59), D(2025, 1, 27)), (time(21, 0), D(2025, 1, 28))],
)
def test_cutoff_is_the_contracts(cutoff: time, business: date) -> None:
    closed = local(2025, 1, 27, 23, 30)
    m = merchant("D0", cutoff)
    batch = Batch(MID, "T1", 1, closed, "CNY", (Bucket("UPI", 10_000, sale_count=1),), 10_000)
    inputs = MerchantInputs(m, (active("a", OLD, local(2024, 12, 1)),), (batch,))
    exp = reconcile_merchant(inputs, now=closed, calendar=CALENDAR).expected[0]
    assert exp.business_date == business
    assert exp.due_date == business  # D0: the business day itself, a holiday or not


def _d0_inputs(*, credits: tuple[Credit, ...] = (), payouts: tuple[PayoutRecord, ...] = ()):
    closed = local(2025, 1, 27, 20)  # Monday before the festival; T+1 fallback is 5 Feb
    batch = Batch(MID, "T1", 1, closed, "CNY", (Bucket("UPI", 100_000, sale_count=3),), 100_000)
    cover = StatementCoverage(OLD, D(2025, 1, 1), D(2025, 2, 28))
    return MerchantInputs(
        merchant("D0"),
        (active("a", OLD, local(2024, 12, 1)),),
        (batch,),
        credits=credits,
        payouts=payouts,
        coverage=(cover,),
    )


def test_d0_unpaid_during_the_festival_is_not_a_gap_until_the_t1_day() -> None:
    result = reconcile_merchant(_d0_inputs(), now=local(2025, 2, 3, 12), calendar=CALENDAR)
    (gap,) = result.gaps
    assert gap.category == "NOT_DUE_YET"
    assert gap.evidence["rule"] == "same_day_fallback"
    assert gap.evidence["fallback_due"] == "2025-02-05"
    late = reconcile_merchant(_d0_inputs(), now=local(2025, 2, 6, 12), calendar=CALENDAR)
    (missing,) = late.gaps
    assert missing.category == "MISSING"
    assert missing.due_date == D(2025, 2, 5)


def test_d0_paid_on_the_t1_day_matches() -> None:
    net = 100_000 - 600
    credit = Credit("c1", OLD, "1111", D(2025, 2, 5), D(2025, 2, 5), net, "CNY")
    result = reconcile_merchant(
        _d0_inputs(credits=(credit,)), now=local(2025, 2, 10, 12), calendar=CALENDAR
    )
    assert [g.category for g in result.gaps] == []
    assert [m.credit_ids for m in result.matches] == [("c1",)]


def test_quota_fallback_record_is_not_returned() -> None:
    record = PayoutRecord(
        MID, D(2025, 1, 27), 100_000, 600, 99_400, "1111", "failed", "D0额度不足，转T+1", "P1"
    )
    result = reconcile_merchant(
        _d0_inputs(payouts=(record,)), now=local(2025, 1, 28, 12), calendar=CALENDAR
    )
    (gap,) = result.gaps
    assert gap.category == "NOT_DUE_YET"
    assert gap.evidence["payout"]["reason"] == "D0额度不足，转T+1"
    # Past the T+1 day it is missing, not returned: the acquirer said it would pay.
    late = reconcile_merchant(
        _d0_inputs(payouts=(record,)), now=local(2025, 2, 7, 12), calendar=CALENDAR
    )
    assert [g.category for g in late.gaps] == ["MISSING"]


def test_t1_failure_text_about_quota_is_still_returned() -> None:
    # Only same-day cycles have a T+1 to fall back to.
    inputs = _d0_inputs(
        payouts=(PayoutRecord(MID, D(2025, 2, 5), 100_000, 600, 99_400, "1", "failed", "额度不足"),)
    )
    inputs = MerchantInputs(
        merchant("T+1"),
        inputs.account_history,
        inputs.batches,
        payouts=inputs.payouts,
        coverage=inputs.coverage,
    )
    (gap,) = reconcile_merchant(inputs, now=local(2025, 2, 7), calendar=CALENDAR).gaps
    assert gap.category == "RETURNED"


def test_s0_batch_paid_as_many_small_credits() -> None:
    closed = local(2025, 2, 7, 20)
    bucket = Bucket("UPI", 30_000, sale_count=3)
    batch = Batch(MID, "T1", 1, closed, "CNY", (bucket,), 30_000)
    day = D(2025, 2, 7)
    # three sales paid one by one within minutes, net of 0.60 % each (60 fen on ¥100)
    credits = tuple(Credit(f"c{n}", OLD, "1111", day, day, 9_940, "CNY") for n in range(3))
    inputs = MerchantInputs(
        merchant("S0"),
        (active("a", OLD, local(2024, 12, 1)),),
        (batch,),
        credits=credits,
        coverage=(StatementCoverage(OLD, day - timedelta(days=9), day + timedelta(days=9)),),
    )
    result = reconcile_merchant(inputs, now=local(2025, 2, 12), calendar=CALENDAR)
    assert [g.category for g in result.gaps] == []
    (match,) = result.matches
    assert match.credit_ids == ("c0", "c1", "c2")
    assert match.rule == "per_sale"
