"""Properties of the engine: conservation, idempotence, order independence, bounded search."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from settleguard.collector.reconcile import (
    MerchantInputs,
    MerchantResult,
    PayoutRecord,
    reconcile_merchant,
)
from settleguard.collector.reconcile.expected import expected_credits
from settleguard.collector.reconcile.model import BATCH_CATEGORIES
from settleguard.collector.reconcile.subset_sum import bounded_subset_sum

from tests.collector.reconcile.builders import (
    CALENDAR,
    HISTORY,
    MID,
    NEW,
    OLD,
    batch,
    change,
    covered,
    credit,
    local,
    merchant,
)

NOW = local(2025, 4, 20, 12)
FATES = ("exact", "round", "short", "none", "dup", "aggregate", "aggregate")


@st.composite
def merchant_inputs(draw: st.DrawFn) -> MerchantInputs:
    """Random batches over a few March days, each paid in a random way, plus noise credits."""
    n = draw(st.integers(0, 14))
    batches = []
    for no in range(1, n + 1):
        day = draw(st.integers(10, 14))
        hour = draw(st.integers(0, 23))
        amount = draw(st.integers(-500, 300_000))
        ref = f"SETL{no:06d}" if draw(st.booleans()) else None
        number = no + draw(st.integers(0, 1)) * 100
        batches.append(batch(number, local(2025, 3, day, hour), amount, ref=ref))
    history = list(HISTORY)
    if draw(st.booleans()):
        status = draw(st.sampled_from(["under_review", "rejected", "active"]))
        history.append(change("C1", NEW, status, local(2025, 3, 12, 9), local(2025, 3, 14, 9)))
    inputs = MerchantInputs(merchant(), tuple(history), tuple(batches))
    credits = []
    aggregate: dict[date, int] = Counter()
    for exp in expected_credits(inputs.merchant, inputs.account_history, batches, CALENDAR):
        fate = draw(st.sampled_from(FATES))
        account = draw(st.sampled_from([OLD, NEW]))
        day = exp.due_date + timedelta(days=draw(st.integers(-1, 3)))
        cid = f"k{len(credits)}"
        amount = {"round": exp.amount - 1, "short": exp.amount * 9 // 10}.get(fate, exp.amount)
        if fate == "aggregate":
            aggregate[exp.due_date] += exp.amount
        elif fate != "none" and amount > 0:
            ref = exp.reference or ""
            credits.append(credit(cid, account, day, amount, ref=ref, text="结算款"))
            if fate == "dup":
                credits.append(credit(cid + "d", account, day, amount, ref=ref, text="结算款"))
    for day, total in sorted(aggregate.items()):
        if total > 0:
            credits.append(credit(f"a{day}", OLD, day, total))
    for i in range(draw(st.integers(0, 3))):
        credits.append(
            credit(
                f"n{i}", OLD, date(2025, 3, draw(st.integers(1, 30))), draw(st.integers(1, 100_000))
            )
        )
    payouts = []
    if batches and draw(st.booleans()):
        status = draw(st.sampled_from(["returned", "held", "paid", "failed"]))
        payouts.append(
            PayoutRecord(
                MID,
                date(2025, 3, 11),
                0,
                0,
                0,
                "1234",
                status,
                "x",
                "",
                (f"T1#{batches[0].batch_no}",),
            )
        )
    coverage = [covered(OLD, date(2025, 3, 1), date(2025, 3, draw(st.integers(1, 31))))]
    if draw(st.booleans()):
        coverage.append(covered(NEW, date(2025, 3, 1), date(2025, 4, 30), ok=draw(st.booleans())))
    return MerchantInputs(
        inputs.merchant,
        tuple(history),
        tuple(batches),
        (),
        tuple(credits),
        tuple(payouts),
        tuple(coverage),
    )


def reconcile(inputs: MerchantInputs, now: datetime = NOW) -> MerchantResult:
    return reconcile_merchant(inputs, now=now, calendar=CALENDAR)


def shuffled(inputs: MerchantInputs, seed: int) -> MerchantInputs:
    rng = random.Random(seed)

    def mix(items: tuple[object, ...]) -> tuple[object, ...]:
        items = list(items) * rng.randint(1, 2)  # exact duplicates must not matter either
        rng.shuffle(items)
        return tuple(items)

    return MerchantInputs(
        inputs.merchant,
        *(
            mix(getattr(inputs, f))
            for f in (
                "account_history",
                "batches",
                "replacements",
                "credits",
                "payouts",
                "coverage",
            )
        ),
    )  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(merchant_inputs(), st.sampled_from([local(2025, 3, 13, 12), NOW]))
def test_every_minor_unit_is_matched_or_in_exactly_one_gap(
    inputs: MerchantInputs, now: datetime
) -> None:
    result = reconcile(inputs, now)
    amounts = {e.batch_key: e.amount for e in result.expected if e.amount > 0}
    owners: Counter[str] = Counter()
    short = {g.batch_keys: g.amount_at_risk for g in result.gaps if g.category == "SHORT_PAID"}
    for match in result.matches:
        owners.update(match.batch_keys)
        assert match.expected == sum(amounts[k] for k in match.batch_keys)
        assert match.covered + short.get(match.batch_keys, 0) == match.expected
    assert set(short) <= {m.batch_keys for m in result.matches}
    for gap in result.gaps:
        if gap.category in BATCH_CATEGORIES:
            owners.update(gap.batch_keys)
            assert gap.amount_at_risk == sum(amounts[k] for k in gap.batch_keys)
    assert owners == Counter(amounts.keys())  # each batch exactly once
    # Every usable credit is accounted for somewhere.
    usable = {c.credit_id for c in inputs.credits}
    placed = {c for m in result.matches for c in m.credit_ids}
    placed |= {c for g in result.gaps for c in g.credit_ids}
    placed |= {n.credit_id for n in result.credit_notes if n.kind != "overpaid"}
    assert usable == placed
    matched = {c for m in result.matches for c in m.credit_ids}
    assert not matched & {n.credit_id for n in result.credit_notes if n.kind == "unexplained"}


@settings(max_examples=75, deadline=None)
@given(merchant_inputs(), st.integers(0, 2**32))
def test_reconciling_twice_or_shuffled_gives_the_same_result(
    inputs: MerchantInputs, seed: int
) -> None:
    first = reconcile(inputs)
    assert reconcile(inputs) == first
    again = reconcile(shuffled(inputs, seed))
    assert (again.matches, again.gaps, again.credit_notes) == (
        first.matches,
        first.gaps,
        first.credit_notes,
    )
    assert sorted(again.expected, key=lambda e: e.batch_key) == sorted(
        first.expected, key=lambda e: e.batch_key
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(1, 10_000), max_size=12),
    st.integers(0, 60_000),
    st.integers(1, 5000),
)
def test_subset_sum_stays_within_budget_and_is_right(
    amounts: list[int], target: int, budget: int
) -> None:
    result = bounded_subset_sum(amounts, target, max_items=12, node_budget=budget)
    assert result.nodes <= budget
    if result.indices is not None:
        assert sum(amounts[i] for i in result.indices) == target
        assert len(set(result.indices)) == len(result.indices)
    elif not result.exhausted and len(amounts) <= 10:
        sums = {
            sum(c) for r in range(1, len(amounts) + 1) for c in itertools.combinations(amounts, r)
        }
        assert target not in sums


def test_subset_sum_worst_case_is_bounded() -> None:
    # Equal amounts and an unreachable odd target: the classic exponential case.
    result = bounded_subset_sum([2] * 12, 13, max_items=12, node_budget=20_000)
    assert result.indices is None and result.nodes <= 20_000
    tight = bounded_subset_sum([3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41], 1, node_budget=50)
    assert tight.nodes <= 50
