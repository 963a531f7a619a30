"""Hand matches and splits in the engine: applied first, never undone by the rules."""

from __future__ import annotations

from datetime import date, timedelta

from settleguard.collector.reconcile import (
    CreditSplit,
    HandMatch,
    MerchantInputs,
    StatementCoverage,
    reconcile_merchant,
)

from .builders import CALENDAR, OLD, active, batch, credit, local, merchant, net

DAY = date(2025, 3, 13)
NOW = local(2025, 3, 25)


def _inputs(*, hand=(), splits=(), credits=None) -> MerchantInputs:
    batches = (batch(1, local(2025, 3, 12), 100_000), batch(2, local(2025, 3, 12, 21), 50_000))
    return MerchantInputs(
        merchant(),
        (active("a", OLD, local(2024, 12, 1)),),
        batches,
        credits=credits
        if credits is not None
        else (credit("c1", OLD, DAY, net(100_000)), credit("c2", OLD, DAY, net(50_000))),
        coverage=(StatementCoverage(OLD, DAY - timedelta(days=9), DAY + timedelta(days=9)),),
        hand_matches=hand,
        splits=splits,
    )


def test_rules_alone_pair_by_amount() -> None:
    result = reconcile_merchant(_inputs(), now=NOW, calendar=CALENDAR)
    assert sorted((m.rule, m.credit_ids) for m in result.matches) == [
        ("one_to_one", ("c1",)),
        ("one_to_one", ("c2",)),
    ]


def test_hand_match_survives_a_rerun_and_the_rules_work_around_it() -> None:
    keys = [b.key for b in _inputs().batches]
    # the operator knows c1 paid both batches (the acquirer short-paid and topped up by c2)
    hand = (HandMatch("000000000001", (keys[0], keys[1]), ("c1",), "acquirer confirmed"),)
    for _ in range(2):  # the same inputs again: the same decision
        result = reconcile_merchant(_inputs(hand=hand), now=NOW, calendar=CALENDAR)
        manual = [m for m in result.matches if m.rule == "manual"]
        assert [(m.batch_keys, m.credit_ids) for m in manual] == [(tuple(sorted(keys)), ("c1",))]
        # c2 is left over: no rule may take it back into the batches the operator matched
        assert [n.credit_id for n in result.credit_notes if n.kind == "unexplained"] == ["c2"]
        # and the shortfall of the hand match is still shown
        assert [g.category for g in result.gaps] == ["SHORT_PAID"]


def test_hand_match_naming_a_taken_credit_is_skipped() -> None:
    keys = [b.key for b in _inputs().batches]
    hand = (
        HandMatch("000000000001", (keys[0],), ("c1",)),
        HandMatch("000000000002", (keys[1],), ("c1",)),
    )
    result = reconcile_merchant(_inputs(hand=hand), now=NOW, calendar=CALENDAR)
    assert sorted((m.rule, m.credit_ids) for m in result.matches) == [
        ("manual", ("c1",)),
        ("one_to_one", ("c2",)),
    ]


def test_split_credit_parts_match_two_batches() -> None:
    total = net(100_000) + net(50_000)
    credits = (credit("c9", OLD, DAY, total),)
    split = (CreditSplit("c9", (net(100_000), net(50_000))),)
    result = reconcile_merchant(_inputs(credits=credits, splits=split), now=NOW, calendar=CALENDAR)
    assert sorted(m.credit_ids for m in result.matches) == [("c9/1",), ("c9/2",)]
    assert result.gaps == ()
