"""One scenario per gap category, built from the domain story in docs/architecture.md §1."""

from __future__ import annotations

from datetime import date, timedelta

from settleguard.collector.reconcile import (
    MerchantInputs,
    MerchantResult,
    PayoutRecord,
    TerminalReplacement,
    reconcile_merchant,
)

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
    net,
)

NOW = local(2025, 3, 20, 12)
MONDAY = local(2025, 3, 10, 20)  # business date Mon 10 March, due Tue 11 March
DUE = date(2025, 3, 11)
COVER_OLD = covered(OLD, date(2025, 3, 1), date(2025, 3, 19))
COVER_NEW = covered(NEW, date(2025, 3, 1), date(2025, 3, 19))


def run(**kwargs: object) -> MerchantResult:
    now = kwargs.pop("now", NOW)
    kwargs.setdefault("account_history", HISTORY)
    kwargs.setdefault("coverage", (COVER_OLD,))
    inputs = MerchantInputs(merchant(), **kwargs)  # type: ignore[arg-type]
    return reconcile_merchant(inputs, now=now, calendar=CALENDAR)  # type: ignore[arg-type]


def categories(result: MerchantResult) -> list[str]:
    return [g.category for g in result.gaps]


def test_one_credit_one_batch_matches_with_no_gap() -> None:
    result = run(batches=(batch(1, MONDAY, 100_000),), credits=(credit("c1", OLD, DUE, 99_400),))
    assert result.expected[0].amount == 99_400 and result.expected[0].due_date == DUE
    assert [(m.rule, m.credit_ids, m.residual) for m in result.matches] == [
        ("one_to_one", ("c1",), 0)
    ]
    assert result.gaps == () and result.credit_notes == ()


def test_change_under_review_old_card_paid() -> None:
    history = (*HISTORY, change("C1", NEW, "under_review", local(2025, 3, 5, 10)))
    result = run(
        account_history=history,
        batches=(batch(1, MONDAY, 100_000),),
        credits=(credit("c1", OLD, DUE, 99_400),),
    )
    assert result.expected[0].account_key == OLD  # the old card stays in force
    assert result.matches == ()
    (gap,) = result.gaps
    assert gap.category == "PAID_TO_OLD_ACCOUNT"
    assert gap.amount_at_risk == 99_400 and gap.credit_ids == ("c1",)
    assert gap.evidence["pending_change_id"] == "C1" and gap.since == DUE


def test_rejected_change_old_card_paid_and_nothing_seen_is_change_pending() -> None:
    history = (
        *HISTORY,
        change("C1", NEW, "rejected", local(2025, 3, 5, 10), local(2025, 3, 9, 10)),
    )
    paid = run(
        account_history=history,
        batches=(batch(1, MONDAY, 100_000),),
        credits=(credit("c1", OLD, DUE, 99_400),),
    )
    assert categories(paid) == ["PAID_TO_OLD_ACCOUNT"]
    unpaid = run(account_history=history, batches=(batch(1, MONDAY, 100_000),))
    assert categories(unpaid) == ["CHANGE_PENDING"]
    assert unpaid.gaps[0].amount_at_risk == 99_400


def test_credit_on_the_pending_new_account_is_a_match() -> None:
    history = (*HISTORY, change("C1", NEW, "under_review", local(2025, 3, 5, 10)))
    result = run(
        account_history=history,
        batches=(batch(1, MONDAY, 100_000),),
        credits=(credit("c1", NEW, DUE, 99_400),),
    )
    assert [m.account_key for m in result.matches] == [NEW] and result.gaps == ()


def test_credit_on_replaced_account_shortly_after_switch_is_paid_to_old() -> None:
    history = (*HISTORY, change("C1", NEW, "active", local(2025, 3, 1, 10), local(2025, 3, 3, 9)))
    result = run(
        account_history=history,
        coverage=(COVER_OLD, COVER_NEW),
        batches=(batch(1, MONDAY, 100_000),),
        credits=(credit("c1", OLD, DUE, 99_400),),
    )
    assert result.expected[0].account_key == NEW
    assert categories(result) == ["PAID_TO_OLD_ACCOUNT"]


def test_returned_payout_name_mismatch() -> None:
    payout = PayoutRecord(MID, DUE, 100_000, 600, 99_400, "6217", "returned",
                          "户名不符 name mismatch", "PAYOUT0001", ("T1#1",))  # fmt: skip
    result = run(batches=(batch(1, MONDAY, 100_000),), payouts=(payout,))
    (gap,) = result.gaps
    assert (gap.category, gap.reason) == ("RETURNED", "户名不符 name mismatch")
    assert gap.evidence["payout"]["status"] == "returned"


def test_held_payout() -> None:
    payout = PayoutRecord(MID, DUE, 100_000, 600, 99_400, "6217", "held", "risk review")
    result = run(batches=(batch(1, MONDAY, 100_000),), payouts=(payout,))
    assert categories(result) == ["HELD"] and result.gaps[0].reason == "risk review"


def test_aggregated_credit_matches_all_batches_of_the_day() -> None:
    batches = tuple(batch(n, MONDAY + timedelta(minutes=n), 10_000 * n) for n in (1, 2, 3))
    total = sum(net(10_000 * n) for n in (1, 2, 3))
    result = run(batches=batches, credits=(credit("c1", OLD, DUE, total, text="合并到账"),))
    (match,) = result.matches
    assert match.rule == "aggregated" and len(match.batch_keys) == 3 and match.residual == 0
    assert result.gaps == ()


def test_subset_sum_then_missing_batch() -> None:
    batches = tuple(batch(n, MONDAY + timedelta(minutes=n), a) for n, a in
                    ((1, 12_345), (2, 20_000), (3, 31_000)))  # fmt: skip
    part = net(12_345) + net(31_000)
    result = run(batches=batches, credits=(credit("c1", OLD, DUE, part),))
    (match,) = result.matches
    assert match.rule == "subset_sum" and len(match.batch_keys) == 2
    assert categories(result) == ["MISSING"]
    assert result.gaps[0].batch_keys == (batches[1].key,)


def test_aggregated_partial_is_unresolved() -> None:
    batches = tuple(batch(n, MONDAY + timedelta(minutes=n), 10_000 * n) for n in (1, 2, 3))
    result = run(batches=batches, credits=(credit("c1", OLD, DUE, 25_000),))
    assert result.matches == ()
    assert categories(result) == ["AGGREGATED_UNRESOLVED"] * 3
    assert all(g.credit_ids == ("c1",) for g in result.gaps)
    assert sum(g.amount_at_risk for g in result.gaps) == sum(net(10_000 * n) for n in (1, 2, 3))
    assert result.credit_notes == ()


def test_partial_payout_is_short_paid() -> None:
    result = run(batches=(batch(1, MONDAY, 100_000),), credits=(credit("c1", OLD, DUE, 99_100),))
    (match,) = result.matches
    assert match.rule == "tolerance" and match.covered == 99_100
    (gap,) = result.gaps
    assert gap.category == "SHORT_PAID" and gap.amount_at_risk == 300


def test_rounding_difference_within_tolerance_is_a_match() -> None:
    result = run(batches=(batch(1, MONDAY, 100_000),), credits=(credit("c1", OLD, DUE, 99_399),))
    (match,) = result.matches
    assert (match.rule, match.residual, match.covered) == ("tolerance", -1, 99_400)
    assert result.gaps == ()


def test_duplicate_credit_by_reference() -> None:
    credits = (
        credit("c1", OLD, DUE, 99_400, ref="SETL20250311A1"),
        credit("c2", OLD, DUE + timedelta(days=1), 99_400, ref="SETL20250311A1"),
    )
    result = run(batches=(batch(1, MONDAY, 100_000, ref="SETL20250311A1"),), credits=credits)
    assert [(m.rule, m.credit_ids) for m in result.matches] == [("reference", ("c1",))]
    (gap,) = result.gaps
    assert gap.category == "DUPLICATE_CREDIT" and gap.credit_ids == ("c2",)
    assert gap.amount_at_risk == 99_400


def test_reference_match_through_payout_reference() -> None:
    payout = PayoutRecord(MID, DUE, 100_000, 600, 99_400, "6217", "paid", "", "PO-2025-031101")
    result = run(
        batches=(batch(1, MONDAY, 100_000), batch(2, MONDAY + timedelta(hours=1), 50_000)),
        payouts=(payout,),
        credits=(credit("c1", OLD, DUE, net(100_000) + net(50_000), text="结算款 PO-2025-031101"),),
    )
    assert [(m.rule, len(m.batch_keys)) for m in result.matches] == [("reference", 2)]


def test_missing_last_batch_after_terminal_replacement() -> None:
    replaced = TerminalReplacement("T1", "T2", local(2025, 3, 12, 15), final_batch_no=8)
    batches = (batch(6, local(2025, 3, 10), 1_000), batch(7, local(2025, 3, 11), 1_000))
    credits = (
        credit("c1", OLD, DUE, net(1_000)),
        credit("c2", OLD, DUE + timedelta(1), net(1_000)),
    )
    result = run(batches=batches, credits=credits, replacements=(replaced,))
    (gap,) = result.gaps
    assert gap.category == "BATCH_NOT_UPLOADED" and gap.batch_keys == ("T1#8",)
    assert gap.evidence["new_tid"] == "T2" and gap.evidence["amount_known"] is False


def test_replacement_without_final_batch_number() -> None:
    replaced = TerminalReplacement("T1", "T2", local(2025, 3, 14, 15))
    result = run(batches=(batch(6, local(2025, 3, 10), 1_000),),
                 credits=(credit("c1", OLD, DUE, net(1_000)),), replacements=(replaced,))  # fmt: skip
    assert categories(result) == ["BATCH_NOT_UPLOADED"]


def test_batch_number_hole() -> None:
    batches = tuple(batch(n, local(2025, 3, 10, 8 + n), 1_000) for n in (1, 2, 5))
    credits = tuple(credit(f"c{n}", OLD, DUE, net(1_000)) for n in (1, 2, 5))
    result = run(batches=batches, credits=credits)
    (gap,) = result.gaps
    assert gap.category == "BATCH_NOT_UPLOADED"
    assert gap.batch_keys == ("T1#3", "T1#4") and gap.evidence["missing_batch_nos"] == [3, 4]


def test_not_due_yet() -> None:
    result = run(batches=(batch(1, MONDAY, 100_000),), now=local(2025, 3, 11, 9))
    (gap,) = result.gaps
    assert gap.category == "NOT_DUE_YET" and gap.since == date(2025, 3, 10)
    late = run(batches=(batch(1, MONDAY, 100_000),), now=local(2025, 3, 12, 0, 1))
    assert categories(late) == ["MISSING"]


def test_statement_gap_no_coverage_and_broken_chain() -> None:
    none = run(batches=(batch(1, MONDAY, 100_000),), coverage=())
    assert categories(none) == ["STATEMENT_GAP"]
    assert none.gaps[0].reason == "no statement covers the due date"
    broken = covered(OLD, date(2025, 3, 1), date(2025, 3, 19), ok=False)
    result = run(batches=(batch(1, MONDAY, 100_000),), coverage=(broken,))
    assert result.gaps[0].reason == "statement balance chain broken"


def test_unexplained_credit_is_reported() -> None:
    result = run(credits=(credit("c9", OLD, DUE, 12_345),))
    assert [(n.credit_id, n.kind) for n in result.credit_notes] == [("c9", "unexplained")]


def due_of(closed_local_args: tuple[int, ...], cycle: str = "T+1", cutoff_h: int = 21) -> date:
    from datetime import time

    m = merchant(cycle, time(cutoff_h, 0))
    inputs = MerchantInputs(m, HISTORY, (batch(1, local(*closed_local_args), 100),))
    return reconcile_merchant(inputs, now=NOW, calendar=CALENDAR).expected[0].due_date


def test_cutoff_and_holiday_due_dates() -> None:
    # Friday 24 Jan 2025 after the cut-off -> Saturday -> Sunday 26 Jan, a make-up working day.
    assert due_of((2025, 1, 24, 22, 0)) == date(2025, 1, 26)
    # Before the cut-off on Sunday 26 Jan -> next working day after the Spring Festival.
    assert due_of((2025, 1, 26, 20, 0)) == date(2025, 1, 27)
    assert due_of((2025, 1, 27, 20, 0)) == date(2025, 2, 5)
    # Friday 30 May 2025 before the Dragon Boat break: due Tuesday 3 June either way.
    assert due_of((2025, 5, 30, 20, 59)) == date(2025, 6, 3)
    assert due_of((2025, 5, 30, 21, 1)) == date(2025, 6, 3)
    # Thursday 29 May after the cut-off belongs to Friday -> Tuesday; before it -> Friday.
    assert due_of((2025, 5, 29, 21, 30)) == date(2025, 6, 3)
    assert due_of((2025, 5, 29, 21, 0)) == date(2025, 5, 30)  # exactly at the cut-off
    # National Day 2025: Monday 29 Sep late -> Tuesday 30 Sep business day -> 9 October.
    assert due_of((2025, 9, 29, 22, 0)) == date(2025, 10, 9)
    # T0: Saturday's batch is due on Monday; a weekday's the same day. D0 counts calendar days.
    assert due_of((2025, 3, 15, 12, 0), cycle="T0") == date(2025, 3, 17)
    assert due_of((2025, 3, 12, 12, 0), cycle="T0") == date(2025, 3, 12)
    assert due_of((2025, 3, 15, 12, 0), cycle="D0") == date(2025, 3, 15)


def test_gap_past_the_calendar_says_so_in_its_evidence() -> None:
    end = CALENDAR.valid_to
    closed = local(end.year, end.month, end.day, 20)  # business day = last covered day
    later = local(end.year, end.month, end.day, 20) + timedelta(days=20)
    cover = covered(OLD, end - timedelta(days=5), end + timedelta(days=15))
    past = run(batches=(batch(1, closed, 100_000),), coverage=(cover,), now=later)
    (gap,) = past.gaps
    assert gap.category == "MISSING" and gap.due_date is not None
    assert not CALENDAR.covers(gap.due_date)
    assert gap.evidence["calendar_covers"] is False
    assert gap.evidence["calendar_valid"] == f"{CALENDAR.valid_from}..{end}"
    inside = run(batches=(batch(1, MONDAY, 100_000),))  # March 2025: covered
    assert categories(inside) == ["MISSING"]
    assert "calendar_covers" not in inside.gaps[0].evidence


def test_calendar_is_the_shipped_one() -> None:
    assert CALENDAR.name == "cn" and CALENDAR.covers(date(2026, 10, 10))


def test_reconcile_all_streams_one_result_per_merchant() -> None:
    from settleguard.collector.reconcile import reconcile_all

    first = MerchantInputs(merchant(), HISTORY, (batch(1, MONDAY, 100_000),))
    results = list(reconcile_all(iter([first, first]), now=NOW, calendar=CALENDAR))
    assert [r.merchant_id for r in results] == [MID, MID] and results[0] == results[1]


def test_bad_engine_input_is_our_error() -> None:
    import dataclasses
    from datetime import datetime

    import pytest
    from settleguard.collector.reconcile import ReconcileInputError

    stranger = dataclasses.replace(batch(1, MONDAY, 100), merchant_id="M999")
    with pytest.raises(ReconcileInputError, match="M999"):
        run(batches=(stranger,))
    with pytest.raises(ReconcileInputError, match="naive"):
        run(now=datetime(2025, 3, 20, 12))
