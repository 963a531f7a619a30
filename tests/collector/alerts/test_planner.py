"""From gaps to SMS: planning stages from the collector's gaps, and the whole path over SMPP."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from settleguard.collector.alerts.dispatcher import recover_interrupted
from settleguard.collector.alerts.planner import (
    CALENDAR_SLACK,
    PlannerError,
    plan_alerts,
    preview_gap,
)
from settleguard.collector.alerts.policy import AlertState
from settleguard.collector.alerts.smpp_gateway import SmppGateway
from settleguard.collector.alerts.store import AlertStore, escalated_alerts
from settleguard.collector.cli.alerts import run_pass
from settleguard.collector.store import Store, open_store

from settleguard.privacy import find_card_numbers, luhn_ok

from . import smsc as smsc_module
from .collector_seed import add_gap, add_merchant, resolve_gap
from .smsc import wait_for

# A gap due 2026-11-20 (Shanghai) is late from 2026-11-21 00:00 local = 11-20 16:00 UTC;
# MISSING has 12 h grace, so day1 is due from 11-21 04:00 UTC (12:00 local, not quiet hours).
DAY1 = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)
AFTERNOON = DAY1 + timedelta(hours=4)  # 16:00 in Shanghai, 09:00 in Berlin
FULL_CARD = "4111111111111111"  # Luhn-valid test PAN: must never reach an SMS


def stages(store: Store, gap_id: int) -> list[str]:
    """The stages a gap reached, in the order the messages carrying them were queued."""
    rows = store.query("SELECT stage FROM alert_gaps WHERE gap_id = ? ORDER BY alert_id", (gap_id,))
    return [r["stage"] for r in rows]


def test_stages_follow_the_schedule_and_repeat_passes_add_nothing(store):
    add_merchant(store)
    gap = add_gap(store)
    assert plan_alerts(store, DAY1 - timedelta(minutes=1)).queued == []
    first = plan_alerts(store, DAY1)
    assert len(first.queued) == 1 and first.skipped == {}
    assert plan_alerts(store, DAY1 + timedelta(hours=5)).queued == []
    assert stages(store, gap) == ["day1"]
    plan_alerts(store, DAY1 + timedelta(days=2))
    plan_alerts(store, DAY1 + timedelta(days=2, hours=1))
    assert stages(store, gap) == ["day1", "day3"]
    plan_alerts(store, DAY1 + timedelta(days=6))
    assert stages(store, gap) == ["day1", "day3", "day7"]
    # once the last stage is queued the gap is no longer even read
    assert plan_alerts(store, DAY1 + timedelta(days=30)).considered == 0


def test_acknowledged_gap_still_alerts_but_silent_categories_never(store):
    add_merchant(store)
    acked = add_gap(store, status="acknowledged")
    silent = [add_gap(store, category=c) for c in ("NOT_DUE_YET", "STATEMENT_GAP")]
    plan_alerts(store, DAY1 + timedelta(days=10))
    assert stages(store, acked) == ["day7"]  # the dispatcher was "down": only the latest stage
    assert all(stages(store, g) == [] for g in silent)


def test_gap_due_past_the_calendar_is_held_until_reconciled_again(store):
    add_merchant(store)
    past = {"calendar_covers": False, "calendar_valid": "2025-01-01..2026-12-31",
            "due_date": "2026-11-20"}  # fmt: skip
    held = add_gap(store, evidence=past)
    returned = add_gap(store, category="RETURNED", evidence=past)  # stands whatever the calendar
    report = plan_alerts(store, DAY1)
    assert stages(store, held) == [] and stages(store, returned) == ["day1"]
    assert "outside the working calendar (2025-01-01..2026-12-31)" in report.held[held]
    assert report.skipped == {} and list(report.held) == [held]
    assert preview_gap(store, held, now=DAY1)["held"] == report.held[held]
    assert preview_gap(store, returned, now=DAY1)["held"] is None
    with store.transaction() as tx:  # what a run after the calendar was extended writes
        tx.execute(
            "UPDATE gaps SET evidence = ? WHERE id = ?", ('{"due_date": "2026-11-20"}', held)
        )
    again = plan_alerts(store, DAY1 + timedelta(hours=1))
    assert again.held == {} and again.waiting == {held: "day1"}  # today's SMS went out already
    assert plan_alerts(store, DAY1 + timedelta(days=1)).queued
    assert stages(store, held) == ["day1"]


def test_a_gap_outside_the_calendar_alerts_once_late_by_any_calendar(store):
    add_merchant(store)
    past = {"calendar_covers": False, "calendar_valid": "2025-01-01..2026-12-31"}
    gap = add_gap(store, evidence=past)  # due 2026-11-20: late from 11-20 16:00 UTC
    end = datetime(2026, 11, 20, 16, 0, tzinfo=UTC) + CALENDAR_SLACK
    assert (
        "or until 2026-12-04 16:00 UTC" in plan_alerts(store, end - timedelta(minutes=1)).held[gap]
    )
    report = plan_alerts(store, end)
    assert report.held == {}
    assert stages(store, gap) == ["day7"]  # the latest stage due, as after any pause


def message_for(store: Store, gap_id: int, stage: str) -> dict:
    return store.query_one(
        "SELECT a.* FROM alerts a JOIN alert_gaps c ON c.alert_id = a.id"
        " WHERE c.gap_id = ? AND c.stage = ?",
        (gap_id, stage),
    )


def test_money_arrived_only_after_an_alert_and_only_when_matched(store):
    add_merchant(store)
    alerted, superseded = add_gap(store, amount=50_000), add_gap(store, amount=70_000)
    never = add_gap(store, due="2026-11-25")
    [digest] = plan_alerts(store, DAY1).queued  # both due today: one SMS carries both
    assert message_for(store, alerted, "day1")["id"] == digest
    for gap_id in (alerted, superseded, never):
        resolve_gap(store, gap_id, "superseded" if gap_id == superseded else "matched")
    later = DAY1 + timedelta(days=1)
    plan_alerts(store, later)
    plan_alerts(store, later + timedelta(hours=1))
    assert stages(store, alerted) == ["day1", "arrived"]
    assert stages(store, superseded) == ["day1"]
    assert stages(store, never) == []
    arrived = message_for(store, alerted, "arrived")
    assert arrived["template"] == "ARRIVED" and f"SG-{alerted}" in arrived["text"]
    assert "1笔结算款已到账，共¥500.00" in arrived["text"]
    assert message_for(store, alerted, "day1")["template"] == "DIGEST"


def test_merchant_locale_zone_and_card_tail(store):
    add_merchant(store, "M2", ("+4915112345678",), tz="Europe/Berlin", locale="en")
    gap = add_gap(
        store, "M2", "PAID_TO_OLD_ACCOUNT", 9_900, evidence={"account_in_force": "****7788"}
    )
    # Berlin: late from 11-21 00:00 CET = 11-20 23:00 UTC, grace 4 h -> 11-21 03:00 UTC
    assert plan_alerts(store, datetime(2026, 11, 21, 2, 59, tzinfo=UTC)).queued == []
    [alert_id] = plan_alerts(store, datetime(2026, 11, 21, 9, 0, tzinfo=UTC)).queued
    row = store.query_one("SELECT text, tz, phone, locale FROM alerts WHERE id = ?", (alert_id,))
    assert row["tz"] == "Europe/Berlin" and row["locale"] == "en"
    assert row["phone"] == "+4915112345678"
    assert row["text"].startswith("SettleGuard: ") and "old card ending 7788" in row["text"]
    assert "CNY 99.00" in row["text"] and f"Ref SG-{gap}" in row["text"]
    assert "trades on Nov 20" in row["text"]  # the due day when no business date is known


def test_only_last_four_digits_even_if_evidence_held_a_full_number(store):
    add_merchant(store)
    gap = add_gap(store, "M1", "PAID_TO_OLD_ACCOUNT", evidence={"account_in_force": FULL_CARD})
    plan_alerts(store, DAY1)
    text = store.query_one("SELECT text FROM alerts WHERE gap_id = ?", (gap,))["text"]
    assert "1111" in text and find_card_numbers(text, [FULL_CARD]) == []
    assert "41111111" not in text


def test_gaps_that_cannot_be_rendered_are_skipped_with_a_reason(store):
    add_merchant(store, "NOPHONE", ())
    add_merchant(store, "NOCARD", account_masked=None)
    add_merchant(store, "OK")
    no_phone, no_card = add_gap(store, "NOPHONE"), add_gap(store, "NOCARD")
    huge, fine = add_gap(store, "OK", amount=10**15), add_gap(store, "OK")
    report = plan_alerts(store, DAY1)
    assert set(report.skipped) == {no_phone, no_card, huge}
    assert "no phone" in report.skipped[no_phone]
    assert "no settlement card" in report.skipped[no_card]
    assert "amount must be money of at most 12 characters" in report.skipped[huge]
    assert stages(store, fine) == ["day1"]
    # skipped gaps are tried again on the next pass (and skipped again, not lost)
    assert set(plan_alerts(store, DAY1).skipped) == {no_phone, no_card, huge}


def test_preview_shows_text_parts_and_stage_without_queueing(store):
    add_merchant(store)
    gap = add_gap(store, "M1", "PAID_TO_OLD_ACCOUNT", 123_456_789)
    shown = preview_gap(store, gap, now=DAY1)
    assert shown["encoding"] == "ucs2" and shown["part_count"] == len(shown["parts"]) == 1
    assert "".join(shown["parts"]) == shown["text"]
    assert "4321" in shown["text"] and shown["to"].endswith("8000")
    assert shown["stage_due_now"] == "day1" and shown["stages_queued"] == []
    assert preview_gap(store, gap, "en", now=DAY1)["text"].startswith("SettleGuard:")
    assert store.count("alerts") == 0
    with pytest.raises(PlannerError, match="no gap with id 999"):
        preview_gap(store, 999)


# -- the whole path on a real SMPP connection ------------------------------------------------


def luhn_runs(text: str) -> list[str]:
    """Every 13-19 digit run (spaces/dashes allowed inside) that passes the Luhn check."""
    found = []
    for match in re.finditer(r"\d[\d -]{11,}\d", text):
        digits = re.sub(r"[ -]", "", match.group())
        for size in range(13, 20):
            for start in range(len(digits) - size + 1):
                if luhn_ok(digits[start : start + size]):
                    found.append(digits[start : start + size])
    return found


def scan_sent(smsc: smsc_module.TestSMSC) -> list[str]:
    """What the SMSC received (texts reassembled from the wire), checked for card numbers."""
    hits = []
    for _dest, text, _parts in smsc.messages():
        hits += find_card_numbers(text, [FULL_CARD]) + luhn_runs(text)
    return hits


@pytest.fixture
def smpp(smsc: smsc_module.TestSMSC, smpp_gateway: Callable[..., SmppGateway]) -> SmppGateway:
    return smpp_gateway()


def drain(alerts: AlertStore, gateway: SmppGateway, now: datetime, want: int) -> None:
    """Run passes until *want* alerts reached a final state (receipts are asynchronous)."""

    def finished() -> bool:
        run_pass(alerts, gateway, now)
        rows = alerts.store.query(
            "SELECT COUNT(*) AS n FROM alerts WHERE state IN ('delivered', 'failed', 'expired')"
        )
        return rows[0]["n"] >= want

    wait_for(finished, timeout=10)


def test_gaps_become_one_well_formed_sms_per_stage_over_smpp(store, smsc, smpp):
    add_merchant(store, "ZH", ("+8613800138000",))
    add_merchant(store, "EN", ("+4915112345678",), tz="Europe/Berlin", locale="en")
    zh = add_gap(
        store, "ZH", "PAID_TO_OLD_ACCOUNT", 123_456_789, evidence={"account_in_force": FULL_CARD}
    )
    en = add_gap(store, "EN", "RETURNED", 4_200)
    alerts = AlertStore(store)
    drain(alerts, smpp, AFTERNOON, 2)
    received = {dest: (text, parts) for dest, text, parts in smsc.messages()}
    assert len(smsc.messages()) == 2
    sent = {r["gap_id"]: r for r in store.query("SELECT * FROM alerts ORDER BY id")}
    assert received["8613800138000"][0] == sent[zh]["text"]  # UCS-2, one segment
    assert received["8613800138000"][1] == sent[zh]["parts"] == 1
    assert sent[zh]["text"].startswith("【结算守护】") and "原卡尾号1111" in sent[zh]["text"]
    assert received["4915112345678"] == (sent[en]["text"], sent[en]["parts"])
    codings = {(sub.dest, sub.data_coding) for sub in smsc.submits}
    assert codings == {("8613800138000", 0x08), ("4915112345678", 0x00)}  # UCS-2 / GSM-7
    assert all(r["state"] == "delivered" and r["delivered_at"] for r in sent.values())
    assert len(sent[zh]["provider_message_id"].split(",")) == sent[zh]["parts"]
    # more passes, and a second planner, change nothing on the wire
    for _ in range(3):
        run_pass(alerts, smpp, AFTERNOON + timedelta(hours=1))
    second = open_store(store.url)
    run_pass(AlertStore(second), smpp, AFTERNOON + timedelta(hours=2))
    second.close()
    assert len(smsc.messages()) == 2
    # day3 for both, then the money arrives for one: exactly one more SMS each, the
    # "arrived" one the next day (the merchant had today's SMS already)
    drain(alerts, smpp, AFTERNOON + timedelta(days=2), 4)
    resolve_gap(store, en)
    same_day = run_pass(alerts, smpp, AFTERNOON + timedelta(days=2, hours=2))
    assert same_day.plan.waiting == {en: "arrived"} and len(smsc.messages()) == 4
    drain(alerts, smpp, AFTERNOON + timedelta(days=3), 5)
    assert [stages(store, zh), stages(store, en)] == [["day1", "day3"], ["day1", "day3", "arrived"]]
    assert len(smsc.messages()) == 5
    assert scan_sent(smsc) == []


def test_failed_delivery_over_smpp_is_escalated(store, smsc, smpp):
    add_merchant(store)
    gap = add_gap(store)
    smsc.faults.receipt_stat = "UNDELIV"
    smsc.faults.receipt_tlv = False  # text-only receipt with the id in decimal
    alerts = AlertStore(store)
    drain(alerts, smpp, DAY1, 1)
    run_pass(alerts, smpp, DAY1)
    [queued] = escalated_alerts(store)
    assert queued["gap_id"] == gap and queued["state"] == "failed"
    assert queued["reason"] == "delivery failed" and queued["error"] == "000"
    assert len(smsc.messages()) == 1 and scan_sent(smsc) == []


def test_crash_between_persist_and_send_never_sends_twice_over_smpp(store, smsc, smpp):
    add_merchant(store)
    gap = add_gap(store)
    alerts = AlertStore(store)
    plan_alerts(store, DAY1)
    [alert] = alerts.due(DAY1)
    assert alerts.claim(alert.id, DAY1)  # committed 'sending', then the dispatcher died
    restarted = AlertStore(open_store(store.url))
    try:
        assert recover_interrupted(restarted, smpp, DAY1) == [alert.id]
        for hours in (0, 1, 30):
            run_pass(restarted, smpp, DAY1 + timedelta(hours=hours))
        assert smsc.messages() == []  # day1 is never resent automatically
        row = restarted.get(alert.id)
        assert row.state is AlertState.SENDING and row.escalated_at is not None
        assert [q["id"] for q in escalated_alerts(store)] == [alert.id]
        run_pass(restarted, smpp, DAY1 + timedelta(hours=50))  # later stages still go out, once
        run_pass(restarted, smpp, DAY1 + timedelta(hours=51))
        assert stages(store, gap) == ["day1", "day3"]
        assert len(smsc.messages()) == 1 and scan_sent(smsc) == []
    finally:
        restarted.store.close()


def test_the_sent_text_scan_is_not_vacuous():
    assert FULL_CARD in luhn_runs(f"card {FULL_CARD[:4]} {FULL_CARD[4:8]}-{FULL_CARD[8:]} end")
    assert find_card_numbers(f"x{FULL_CARD}x", [FULL_CARD])
    assert luhn_runs("【结算守护】您2026-11-20的结算款¥1,234.56（卡尾号4321）参考号SG-12") == []


def test_link_drop_mid_send_is_escalated_and_never_resent_over_smpp(store, smsc, smpp):
    add_merchant(store)
    gap = add_gap(store)
    smsc.faults.drop_on_submit = {1}  # the submit_sm left us, then the connection died
    alerts = AlertStore(store)
    report = run_pass(alerts, smpp, DAY1)
    assert report.dispatch.uncertain == report.plan.queued and len(report.plan.queued) == 1
    for minutes in (1, 5, 60):
        run_pass(alerts, smpp, DAY1 + timedelta(minutes=minutes))
    assert smsc._submit_no == 1  # one submit_sm ever reached the SMSC for this stage
    [queued] = escalated_alerts(store)
    assert queued["gap_id"] == gap and queued["state"] == "sending"
    assert queued["reason"].startswith("send outcome unknown")


def test_throttled_submits_still_make_exactly_one_sms_over_smpp(store, smsc, smpp):
    add_merchant(store)
    add_gap(store, category="PAID_TO_OLD_ACCOUNT", amount=123_456_789)
    smsc.faults.throttle = 1
    smsc.faults.queue_full = 1
    alerts = AlertStore(store)
    drain(alerts, smpp, DAY1, 1)
    [(_dest, text, parts)] = smsc.messages()
    row = store.query_one("SELECT text, parts, state FROM alerts")
    assert (text, parts, row["state"]) == (row["text"], row["parts"], "delivered")
    assert parts == 1 and scan_sent(smsc) == []
