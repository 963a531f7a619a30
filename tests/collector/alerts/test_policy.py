from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from settleguard.collector.alerts.policy import (
    TRANSITIONS,
    AlertPolicy,
    AlertState,
    GapState,
    InvalidTransition,
    escalation_reason,
    in_quiet_hours,
    limit_deferral,
    message_key,
    next_allowed,
    stage_due,
    transition,
)

DUE = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
POLICY = AlertPolicy()


@pytest.mark.parametrize(
    ("after", "done", "expected"),
    [
        (timedelta(hours=11), set(), None),  # MISSING grace is 12 h
        (timedelta(hours=12), set(), "day1"),
        (timedelta(hours=13), {"day1"}, None),
        (timedelta(days=2, hours=12), {"day1"}, "day3"),
        (timedelta(days=6, hours=12), {"day1", "day3"}, "day7"),
        (timedelta(days=9), {"day1"}, "day7"),  # down for days: only the latest stage
        (timedelta(days=30), {"day1", "day3", "day7"}, None),
    ],
)
def test_schedule(after, done, expected):
    gap = GapState("M1", "G1", "MISSING", DUE)
    assert stage_due(gap, DUE + after, POLICY, done) == expected


def test_not_due_and_statement_gaps_never_alert_the_merchant():
    for category in ("NOT_DUE_YET", "STATEMENT_GAP", "BATCH_NOT_UPLOADED"):
        assert (
            stage_due(GapState("M", "G", category, DUE), DUE + timedelta(days=30), POLICY, ())
            is None
        )


def test_money_arrived_only_after_an_alert():
    resolved = GapState("M1", "G1", "MISSING", DUE, resolved_at=DUE + timedelta(days=1))
    assert stage_due(resolved, DUE + timedelta(days=1), POLICY, set()) is None
    assert stage_due(resolved, DUE + timedelta(days=1), POLICY, {"day1"}) == "arrived"
    assert stage_due(resolved, DUE + timedelta(days=1), POLICY, {"day1", "arrived"}) is None


def test_state_machine_table():
    assert transition(AlertState.QUEUED, AlertState.SENDING) is AlertState.SENDING
    with pytest.raises(InvalidTransition, match="queued to sent"):
        transition(AlertState.QUEUED, AlertState.SENT)
    for final in (AlertState.DELIVERED, AlertState.FAILED, AlertState.EXPIRED):
        assert TRANSITIONS[final] == frozenset()
    assert AlertState.SENDING not in TRANSITIONS[AlertState.SENT]  # never back to sending


def test_message_key_is_one_per_merchant_and_day():
    assert message_key("M1", date(2026, 11, 26)) == "M1|2026-11-26"
    with pytest.raises(ValueError):
        message_key("M|1", date(2026, 11, 26))


@pytest.mark.parametrize(
    ("utc_hour", "quiet"), [(12, False), (13, True), (23, True), (0, False), (23 + 0, True)]
)
def test_quiet_hours_in_merchant_timezone(utc_hour, quiet):
    # Asia/Shanghai is UTC+8: 21:00-08:00 local is 13:00-00:00 UTC
    now = datetime(2026, 11, 26, utc_hour % 24, 30, tzinfo=UTC)
    assert in_quiet_hours(now, "Asia/Shanghai", POLICY) is quiet


def test_next_allowed_and_other_timezones():
    late = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)  # 22:00 Shanghai
    assert next_allowed(late, "Asia/Shanghai", POLICY) == datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    early = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)  # 06:00 Shanghai, same local night
    assert next_allowed(early, "Asia/Shanghai", POLICY) == datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    assert not in_quiet_hours(late, "Europe/Berlin", POLICY)  # 15:00 in Berlin
    daytime_quiet = AlertPolicy(quiet_start=time(12), quiet_end=time(14))
    assert in_quiet_hours(datetime(2026, 11, 26, 5, tzinfo=UTC), "Asia/Shanghai", daytime_quiet)


def test_daily_limits_default_below_provider_cap():
    assert POLICY.per_number_daily < 50 and POLICY.per_merchant_daily < 50
    now = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    assert limit_deferral(now, "Asia/Shanghai", POLICY, 9, 0) is None
    tomorrow_8 = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    assert limit_deferral(now, "Asia/Shanghai", POLICY, 10, 0) == tomorrow_8
    assert limit_deferral(now, "Asia/Shanghai", POLICY, 0, 30) == tomorrow_8


def test_escalation_decisions():
    now = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    assert escalation_reason(AlertState.FAILED, now, now, POLICY) == "delivery failed"
    assert escalation_reason(AlertState.EXPIRED, now, now, POLICY) == "delivery expired"
    assert escalation_reason(AlertState.SENT, now, now + timedelta(hours=5), POLICY) is None
    assert "no delivery receipt" in escalation_reason(
        AlertState.SENT, now, now + timedelta(hours=6), POLICY
    )
    assert escalation_reason(AlertState.DELIVERED, now, now + timedelta(days=1), POLICY) is None
