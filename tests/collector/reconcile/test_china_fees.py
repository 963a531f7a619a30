"""Fees charged per sale, and the interval bucket totals allow (amounts in fen)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from settleguard.collector.reconcile import (
    Batch,
    Bucket,
    Credit,
    FeeRule,
    FeeSchedule,
    Merchant,
    MerchantInputs,
    StatementCoverage,
    reconcile_merchant,
)
from settleguard.collector.reconcile.fees import fee_interval, sale_fee

from .builders import CALENDAR, MID, OLD, active, local

DEBIT = FeeRule("domestic_debit", 60, cap=2000)
SCHEDULE = FeeSchedule(
    rules=(DEBIT, FeeRule("domestic_credit", 60), FeeRule("wechat", 38, fixed=10)),
    default=FeeRule("*", 60),
)


@pytest.mark.parametrize(
    ("base", "count", "rule", "expected"),
    [
        # five ¥10,000 debit sales at 0.60 % capped at ¥20: ¥100 most likely, at least one cap
        (5_000_000, 5, DEBIT, (10_000, 1_998, 10_000)),
        # one sale: exact
        (1_000_000, 1, DEBIT, (2_000, 2_000, 2_000)),
        (10_000, 1, DEBIT, (60, 60, 60)),
        # two sales of ¥50 uncapped: 60 fen, give or take half a fen a sale
        (10_000, 2, FeeRule("x", 60), (60, 59, 61)),
        # a fixed amount per sale counts every sale
        (30_000, 3, FeeRule("wechat", 38, fixed=10), (3 * 38 + 30, 114 - 1 + 30, 114 + 1 + 30)),
        # count unknown (0): one sale for the cap, any number for the upper end
        (5_000_000, 0, DEBIT, (2_000, 2_000, 30_000)),
        # nothing to charge on
        (0, 3, DEBIT, (0, 0, 0)),
    ],
)
def test_fee_interval_table(
    base: int, count: int, rule: FeeRule, expected: tuple[int, int, int]
) -> None:
    assert tuple(fee_interval(base, count, rule.rate_bp, rule.cap, rule.fixed)) == expected


def test_journal_makes_the_fee_exact() -> None:
    sales = (4_000_000, 500_000, 500_000)
    found = fee_interval(5_000_000, 3, 60, 2000, 0, sales)
    assert tuple(found) == (2_000 + 2_000 + 2_000,) * 3


@given(
    st.lists(st.integers(min_value=1, max_value=3_000_000), min_size=1, max_size=6),
    st.integers(min_value=0, max_value=600),
    st.one_of(st.none(), st.integers(min_value=0, max_value=5_000)),
    st.integers(min_value=0, max_value=100),
)
def test_every_split_lies_in_the_interval(
    sales: list[int], rate_bp: int, cap: int | None, fixed: int
) -> None:
    actual = sum(sale_fee(a, rate_bp, cap, fixed) for a in sales)
    point, low, high = fee_interval(sum(sales), len(sales), rate_bp, cap, fixed)
    assert low <= actual <= high
    assert low <= point <= high


def test_small_splits_are_exhaustively_inside() -> None:
    for total in range(2, 60):
        for count in (2, 3):
            _, low, high = fee_interval(total * 97, count, 60, 1, 0)
            for cut in itertools.combinations(range(1, total), count - 1):
                parts = [b - a for a, b in zip((0, *cut), (*cut, total), strict=True)]
                actual = sum(sale_fee(p * 97, 60, 1, 0) for p in parts)
                assert low <= actual <= high


def _inputs(buckets: tuple[Bucket, ...], credit_amount: int) -> MerchantInputs:
    m = Merchant(
        MID, "面馆", "T+1", local(2025, 3, 1).time().replace(hour=23), "Asia/Shanghai", SCHEDULE
    )
    closed = local(2025, 3, 12, 20)
    gross = sum(b.sale_amount for b in buckets)
    batch = Batch(MID, "T1", 7, closed, "CNY", buckets, gross)
    day = date(2025, 3, 13)
    return MerchantInputs(
        m,
        (active("a", OLD, local(2024, 12, 1)),),
        (batch,),
        credits=(Credit("c1", OLD, "1111", day, day, credit_amount, "CNY"),),
        coverage=(StatementCoverage(OLD, day - timedelta(days=10), day + timedelta(days=10)),),
    )


def test_capped_debit_batch_is_not_short_paid() -> None:
    # five ¥10,000 debit sales: ¥50,000 less ¥100 of fees
    inputs = _inputs((Bucket("domestic_debit", 5_000_000, sale_count=5),), 4_990_000)
    result = reconcile_merchant(inputs, now=local(2025, 3, 20), calendar=CALENDAR)
    assert result.gaps == ()
    (match,) = result.matches
    assert match.covered == match.expected == 4_990_000
    assert result.expected[0].fees_low == 1_998


def test_uneven_split_inside_the_interval_is_paid_in_full() -> None:
    # ¥49,000 in one sale (capped ¥20) and four ¥250 sales (¥1.50 each): ¥26 of fees
    inputs = _inputs((Bucket("domestic_debit", 5_000_000, sale_count=5),), 5_000_000 - 2_600)
    result = reconcile_merchant(inputs, now=local(2025, 3, 20), calendar=CALENDAR)
    assert [g.category for g in result.gaps] == []
    assert [n.kind for n in result.credit_notes] == []


def test_below_the_interval_is_short_paid_by_the_least_shortfall() -> None:
    inputs = _inputs((Bucket("domestic_debit", 5_000_000, sale_count=5),), 4_980_000)
    result = reconcile_merchant(inputs, now=local(2025, 3, 20), calendar=CALENDAR)
    (gap,) = result.gaps
    assert gap.category == "SHORT_PAID"
    assert gap.amount_at_risk == 10_000  # ¥100 below even the dearest split
    assert gap.evidence["fees_interval"] == [1_998, 10_000]
    assert gap.evidence["expected_low"] == 4_990_000
    (match,) = result.matches
    assert match.covered + gap.amount_at_risk == match.expected


def test_per_payout_surcharge_is_charged_once_per_batch() -> None:
    schedule = FeeSchedule(rules=(), default=FeeRule("*", 0, fixed=0), per_payout=50)
    m = Merchant(MID, "面馆", "D0", local(2025, 3, 1).time(), "Asia/Shanghai", schedule)
    batch = Batch(
        MID,
        "T1",
        1,
        local(2025, 3, 12, 10),
        "CNY",
        (Bucket("wechat", 10_000, sale_count=3),),
        10_000,
    )
    inputs = MerchantInputs(m, (active("a", OLD, local(2024, 12, 1)),), (batch,))
    exp = reconcile_merchant(inputs, now=local(2025, 3, 12), calendar=CALENDAR).expected[0]
    assert (exp.fees, exp.fees_low, exp.fees_high, exp.amount) == (50, 50, 50, 9_950)


def test_acquirer_profiles_are_examples_with_payers_and_valid_fees() -> None:
    from settleguard.collector.reconcile.acquirers import load_profiles

    profiles = load_profiles()
    assert {"lakala", "chinaums", "allinpay"} <= set(profiles)
    lakala = profiles["lakala"]
    assert "拉卡拉支付股份有限公司" in lakala.payers
    debit = lakala.fee_schedule().rule_for("domestic_debit")
    assert (debit.rate_bp, debit.cap) == (60, 2000)
    for profile in profiles.values():
        text = (
            (Path(__file__).parents[3] / "collector/reconcile/acquirers")
            .joinpath(f"{profile.name}.toml")
            .read_text(encoding="utf-8")
        )
        assert "EXAMPLE" in text  # the terms are examples to check against the contract
