"""Fees, account history and the working-day calendar."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from settleguard.collector.reconcile import (
    Bucket,
    CalendarError,
    FeeRule,
    FeeSchedule,
    ReconcileInputError,
    account_in_force,
    add_working_days,
    load_calendar,
    next_working_day,
    pending_change,
)

from tests.collector.reconcile.builders import CALENDAR, NEW, OLD, OLD_SINCE, active, change, local


@pytest.mark.parametrize(
    ("base", "rule", "fee"),
    [
        (10_000, FeeRule("UPI", 60), 60),
        (8_333, FeeRule("UPI", 60), 50),  # 49.998 -> 50
        (2_500, FeeRule("UPI", 2), 1),  # 0.5 exactly rounds half up
        (2_499, FeeRule("UPI", 2), 0),
        (10_000_000, FeeRule("DEBIT", 50, cap=2_000), 2_000),  # capped debit card fee
        (10_000, FeeRule("X", 60, fixed=30), 90),
        (0, FeeRule("X", 60, fixed=30), 0),  # nothing charged, not even the fixed part
    ],
)
def test_fee_rule_rounds_half_up_then_caps_then_adds_fixed(
    base: int, rule: FeeRule, fee: int
) -> None:
    assert rule.fee(base) == fee
    assert FeeSchedule((), rule).bucket_fee(Bucket(rule.card_type, base)) == fee


@given(st.integers(0, 10**12), st.integers(0, 10_000))
def test_fee_matches_exact_rational_rounding(base: int, rate: int) -> None:
    from fractions import Fraction

    exact = Fraction(base * rate, 10_000)
    expected = int(exact + Fraction(1, 2)) if base else 0
    rule = FeeRule("X", rate)
    assert rule.fee(base) == expected
    assert FeeSchedule((), rule).bucket_fee(Bucket("X", base)) == expected


def test_refund_rule_is_explicit() -> None:
    bucket = Bucket("UPI", 10_000, refund_amount=4_000, void_amount=1_000)
    kept = FeeSchedule((FeeRule("UPI", 100),), FeeRule("*", 0))
    returned = FeeSchedule((FeeRule("UPI", 100),), FeeRule("*", 0), refund_fee_returned=True)
    assert kept.bucket_fee(bucket) == 90  # on sale - void
    assert returned.bucket_fee(bucket) == 50  # on sale - void - refund
    assert kept.bucket_fee(Bucket("OTHER", 10_000)) == 0  # default rule


def test_bad_fee_rule_is_our_error() -> None:
    with pytest.raises(ReconcileInputError, match="rate_bp"):
        FeeRule("UPI", 10_001)


def test_account_in_force_ignores_changes_not_yet_active() -> None:
    history = (
        active("C0", OLD, OLD_SINCE),
        change("C1", NEW, "under_review", local(2025, 3, 5)),
        change("C2", "hmac-x", "rejected", local(2025, 3, 6), local(2025, 3, 7)),
    )
    assert account_in_force(history, local(2025, 3, 10)).account_key == OLD
    assert pending_change(history, local(2025, 3, 10)).change_id == "C2"
    assert pending_change(history, local(2025, 3, 5, 21)).change_id == "C1"
    assert account_in_force(history, local(2023, 1, 1)) is None


def test_account_in_force_switches_at_effective_time() -> None:
    switch = local(2025, 3, 8, 9)
    history = (
        change("C0", OLD, "retired", OLD_SINCE, OLD_SINCE),
        change("C1", NEW, "active", local(2025, 3, 1), switch),
    )
    assert account_in_force(history, switch - timedelta(seconds=1)).account_key == OLD
    assert account_in_force(history, switch).account_key == NEW
    assert pending_change(history, switch - timedelta(seconds=1)).change_id == "C1"
    assert pending_change(history, switch) is None


def test_rejected_change_stops_mattering_after_its_window() -> None:
    history = (
        active("C0", OLD, OLD_SINCE),
        change("C1", NEW, "rejected", local(2025, 1, 1), local(2025, 1, 2)),
    )
    assert pending_change(history, local(2025, 1, 20), rejected_days=30) is not None
    assert pending_change(history, local(2025, 3, 20), rejected_days=30) is None


def test_naive_datetimes_are_refused() -> None:
    from datetime import datetime

    with pytest.raises(ReconcileInputError, match="naive"):
        change("C1", NEW, "requested", datetime(2025, 1, 1))


def test_shipped_calendar_holidays_and_makeup_days() -> None:
    assert not CALENDAR.is_working_day(date(2025, 10, 1))
    assert CALENDAR.is_working_day(date(2025, 9, 28))  # Sunday make-up day
    assert CALENDAR.is_working_day(date(2026, 2, 14))  # Saturday make-up day
    assert next_working_day(CALENDAR, date(2026, 2, 13)) == date(2026, 2, 14)
    assert next_working_day(CALENDAR, date(2026, 2, 14)) == date(2026, 2, 24)
    assert add_working_days(CALENDAR, date(2025, 4, 30), 2) == date(2025, 5, 7)
    assert add_working_days(CALENDAR, date(2025, 4, 30), 0) == date(2025, 4, 30)
    assert not CALENDAR.covers(date(2027, 1, 4))
    assert CALENDAR.is_working_day(date(2027, 1, 4))  # outside: weekdays only
    with pytest.raises(ValueError, match="negative"):
        add_working_days(CALENDAR, date(2025, 1, 1), -1)


def test_calendar_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        '[calendar]\nname = "mine"\nvalid_from = 2025-01-01\nvalid_to = 2025-12-31\n'
        "weekend = [5, 6]\n[[holiday]]\nname = 'x'\nfrom = 2025-03-09\nto = 2025-03-10\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SETTLEGUARD_CALENDAR", str(path))
    mine = load_calendar()
    assert mine.name == "mine"
    assert mine.next_working_day(date(2025, 3, 6)) == date(
        2025, 3, 11
    )  # Fri/Sat off, Sun+Mon holiday


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml = = =", "not valid TOML"),
        ("[x]\n", r"missing \[calendar\]"),
        (
            "[calendar]\nvalid_from = 2025-01-01\nvalid_to = '2025'\n",
            "valid_to must be a TOML date",
        ),
        (
            "[calendar]\nvalid_from = 2025-01-01\nvalid_to = 2025-12-31\n[[holiday]]\nfrom = 2025-05-05\n"
            "to = 2025-05-01\n",
            "#1",
        ),
        ("[calendar]\nvalid_from = 2025-01-01\nvalid_to = 2025-12-31\nweekend = [8]\n", "weekend"),
        (
            "[calendar]\nvalid_from = 2025-01-01\nvalid_to = 2025-12-31\n[[holiday]]\nfrom = 2025-05-05\n"
            "[[workday]]\ndate = 2025-05-05\n",
            "both",
        ),
    ],
)
def test_bad_calendar_files_say_where(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarError, match=message):
        load_calendar(path)


def test_missing_calendar_file(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="cannot read"):
        load_calendar(tmp_path / "nope.toml")
