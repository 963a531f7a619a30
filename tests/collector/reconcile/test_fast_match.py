"""Differential tests: the one-pass matcher (:mod:`collector.reconcile.fast`) against the general one.

Merchants are drawn close to the simple shape the fast path is for (one or two terminals, a batch
a day, a credit per batch by reference or by amount) with near misses mixed in that must make it
give up or still agree: a credit one cent off, a pending or recent account change, a duplicate
credit, an aggregated credit, a payout record with a problem status, close times at the cut-off
instant (+/- 1 µs), batch days around the 2025 Spring Festival and National Day holidays.
Every result is compared field by field with ``fast=False``.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from settleguard.collector.reconcile import (
    Credit,
    ExpectedCredit,
    MerchantInputs,
    MerchantResult,
    PayoutRecord,
    ReconcileConfig,
    expected_credits,
    reconcile_merchant,
)
from settleguard.collector.reconcile.fast import fast_match
from settleguard.collector.reconcile.matching import match_credits

from tests.collector.reconcile.builders import (
    CALENDAR,
    HISTORY,
    MID,
    NEW,
    OLD,
    SHANGHAI,
    active,
    batch,
    change,
    covered,
    credit,
    local,
    merchant,
)

CONFIG = ReconcileConfig()
#: first business days: ordinary March days, the week before the Spring Festival, National Day
STARTS = (date(2025, 3, 10), date(2025, 1, 24), date(2025, 9, 28))
FATES = ("ref", "ref", "payout_ref", "amount", "amount", "cent", "none", "dup", "agg", "wrong_acct")


def _close_time(draw: st.DrawFn, day: date, cutoff: time) -> datetime:
    """A close time on ``day``: ordinary, or at the cut-off instant give or take 1 µs."""
    if draw(st.booleans()):
        wall = datetime.combine(day, cutoff, SHANGHAI)
        return wall + timedelta(microseconds=draw(st.sampled_from([-1, 0, 1])))
    return local(day.year, day.month, day.day, draw(st.integers(0, 23)))


@st.composite
def near_simple(draw: st.DrawFn) -> tuple[MerchantInputs, datetime]:
    cycle = draw(st.sampled_from(["T+1", "T+1", "D0"]))
    cutoff = draw(st.sampled_from([time(23, 0), time(21, 0), time(0, 0)]))
    the_merchant = merchant(cycle, cutoff)
    start = draw(st.sampled_from(STARTS))
    terminals = draw(st.sampled_from(["T1", "T1", "T1", "T12"]))
    batches = []
    numbers: Counter[str] = Counter()
    for n in range(draw(st.integers(0, 6))):
        tid = "T2" if terminals == "T12" and n % 2 else "T1"
        numbers[tid] += 1 + (1 if draw(st.integers(0, 9)) == 0 else 0)  # sometimes a hole
        day = start + timedelta(days=n // (2 if terminals == "T12" else 1))
        amount = draw(st.sampled_from([draw(st.integers(1_000, 500_000)), 0, 123_456]))
        ref = f"SETL{start:%m%d}{n:04d}" if draw(st.booleans()) else None
        batches.append(batch(numbers[tid], _close_time(draw, day, cutoff), amount, tid, ref))
    history = list(HISTORY)
    extra = draw(st.sampled_from(["none", "none", "pending", "recent_switch", "rejected"]))
    asked = datetime.combine(start, time(9), SHANGHAI) - timedelta(days=draw(st.integers(0, 40)))
    if extra == "pending":
        history.append(change("C1", NEW, "under_review", asked))
    elif extra == "recent_switch":
        history.append(active("C1", NEW, asked))
    elif extra == "rejected":
        history.append(change("C1", NEW, "rejected", asked, asked + timedelta(days=1)))
    exps = expected_credits(the_merchant, tuple(history), batches, CALENDAR)
    credits = []
    payouts = []
    per_day: Counter[date] = Counter()
    for i, exp in enumerate(exps):
        fate = draw(st.sampled_from(FATES))
        account = exp.account_key or OLD
        day = exp.due_date + timedelta(days=draw(st.sampled_from([0, 0, 0, -1, 1, 7, 8, -2])))
        cid = f"c{i:02d}"
        if exp.amount <= 0 or fate == "none":
            continue
        if fate == "agg":
            per_day[exp.due_date] += exp.amount
            continue
        amount = exp.amount + (draw(st.sampled_from([-1, 1, -2])) if fate == "cent" else 0)
        ref = ""
        if fate in ("ref", "dup", "wrong_acct") and exp.reference:
            ref = exp.reference
        if fate == "payout_ref":
            ref = f"PAY{i:07d}X"
            status = draw(st.sampled_from(["paid", "paid", "held", "returned"]))
            refs = (f"{exp.terminal_id}#{exp.batch_no}",) if draw(st.booleans()) else ()
            payouts.append(
                PayoutRecord(MID, exp.due_date, 0, 0, exp.amount, "1234", status, "x", ref, refs)  # type: ignore[arg-type]
            )
        if fate == "wrong_acct":
            account = NEW if account == OLD else OLD
        credits.append(credit(cid, account, day, amount, ref=ref, text="结算款"))
        if fate == "dup":
            credits.append(credit(cid + "d", account, day, amount, ref=ref, text="结算款"))
    for due, total in sorted(per_day.items()):
        credits.append(credit(f"a{due:%m%d}", OLD, due, total, text="合并到账 settlement"))
    coverage = (
        covered(OLD, start - timedelta(days=30), start + timedelta(days=draw(st.integers(0, 40)))),
    )
    now = datetime.combine(
        start + timedelta(days=draw(st.sampled_from([2, 5, 30]))), time(12), SHANGHAI
    )
    inputs = MerchantInputs(
        the_merchant, tuple(history), tuple(batches), (), tuple(credits), tuple(payouts), coverage
    )
    return inputs, now


def assert_same(fast: MerchantResult, general: MerchantResult) -> None:
    """Field by field, so a failure names the field that differs."""
    assert fast.merchant_id == general.merchant_id
    assert fast.expected == general.expected
    assert fast.matches == general.matches
    assert fast.gaps == general.gaps  # Gap is a dataclass: compares every field, evidence too
    assert [g.evidence for g in fast.gaps] == [g.evidence for g in general.gaps]
    assert fast.credit_notes == general.credit_notes


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_simple())
def test_fast_path_gives_the_general_result(case: tuple[MerchantInputs, datetime]) -> None:
    inputs, now = case
    fast = reconcile_merchant(inputs, now=now, calendar=CALENDAR, fast=True)
    general = reconcile_merchant(inputs, now=now, calendar=CALENDAR, fast=False)
    assert_same(fast, general)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_simple())
def test_fast_match_outcome_equals_match_credits_when_it_answers(
    case: tuple[MerchantInputs, datetime],
) -> None:
    inputs, _ = case
    exps = sorted(
        expected_credits(inputs.merchant, inputs.account_history, inputs.batches, CALENDAR),
        key=lambda e: e.batch_key,
    )
    usable = sorted(inputs.credits, key=lambda c: c.credit_id)
    payouts = sorted(inputs.payouts)
    fast = fast_match(exps, usable, payouts, CONFIG)
    if fast is None:
        return
    general = match_credits(exps, usable, payouts, CONFIG)
    assert fast.pairings == general.pairings
    assert fast.duplicates == general.duplicates
    assert fast.open_batches == general.open_batches
    assert fast.open_credits == general.open_credits
    assert fast.subset_nodes == general.subset_nodes


def _simple(amounts: list[int], *, refs: bool) -> tuple[list[ExpectedCredit], list[Credit]]:
    batches = [
        batch(n + 1, local(2025, 3, 10 + n), a, ref=f"SETL{n:06d}" if refs else None)
        for n, a in enumerate(amounts)
    ]
    exps = expected_credits(merchant(), HISTORY, batches, CALENDAR)
    credits = [
        credit(f"c{n}", OLD, e.due_date, e.amount, ref=e.reference or "", text="结算款")
        for n, e in enumerate(exps)
    ]
    return exps, credits


def test_fast_path_answers_the_simple_shapes() -> None:
    """It must actually serve the common case, by reference and by amount."""
    for refs in (True, False):
        exps, credits = _simple([10_000, 20_000, 30_000], refs=refs)
        outcome = fast_match(exps, credits, [], CONFIG)
        assert outcome is not None
        rule = "reference" if refs else "one_to_one"
        assert [p.rule for p in outcome.pairings] == [rule] * 3
        assert not outcome.open_batches and not outcome.open_credits


def test_fast_path_gives_up_on_near_misses() -> None:
    # two credits of one amount: the general rule ranks them by date
    exps, credits = _simple([10_000, 10_000], refs=False)
    again = credit("c9", OLD, exps[0].due_date + timedelta(days=1), exps[0].amount)
    assert fast_match(exps, [*credits, again], [], CONFIG) is None
    # one cent off without a reference: nothing pairs, rules 3-5 would run
    exps, credits = _simple([10_000], refs=False)
    short = credit("c0", OLD, exps[0].due_date, exps[0].amount - 1)
    assert fast_match(exps, [short], [], CONFIG) is None
    # a duplicate by reference
    exps, credits = _simple([10_000], refs=True)
    dup = credit("c1", OLD, exps[0].due_date, exps[0].amount, ref=exps[0].reference or "")
    assert fast_match(exps, [*credits, dup], [], CONFIG) is None
