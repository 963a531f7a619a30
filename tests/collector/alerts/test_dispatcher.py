"""The dispatcher: persist before send, exactly one SMS per message, receipts, escalation."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from settleguard.collector.alerts.dispatcher import dispatch_due, recover_interrupted
from settleguard.collector.alerts.file_gateway import FileGateway
from settleguard.collector.alerts.gateway import (
    DeliveryReceipt,
    GatewayUnavailable,
    SendRejected,
    SendResult,
    SendUncertain,
    TemplateCall,
)
from settleguard.collector.alerts.planner import plan_alerts
from settleguard.collector.alerts.policy import AlertPolicy, AlertState
from settleguard.collector.alerts.providers import gateway_from_url
from settleguard.collector.alerts.store import AlertStore, NewAlert
from settleguard.collector.store import Store

from .collector_seed import add_gap, add_merchant
from .smsc import wait_for

NOON = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
NIGHT = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)  # 23:00 in Asia/Shanghai


class ScriptedGateway:
    """A gateway double whose outcomes the test scripts (the SMPP one is tested for real)."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[tuple[str, str, str]] = []
        self.receipts: list[DeliveryReceipt] = []

    def send(
        self, to: str, text: str, *, client_ref: str, template: TemplateCall | None = None
    ) -> SendResult:
        self.sent.append((to, text, client_ref))
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, Exception):
            raise outcome
        return SendResult((f"id-{len(self.sent)}",))

    def poll_receipts(self) -> list[DeliveryReceipt]:
        out, self.receipts = self.receipts, []
        return out

    def lookup(self, client_ref: str) -> SendResult | None:
        return None

    def close(self) -> None:
        pass


@pytest.fixture
def store(store: Store) -> AlertStore:
    """The alert store over the collector store (SQLite and PostgreSQL)."""
    return AlertStore(store)


def alert(stage: str = "day1", merchant: str = "M1", to: str = "+8613800138000") -> NewAlert:
    return NewAlert(f"{merchant}|{stage}", merchant, "G1", stage, to, f"text for {stage}")


def test_dedupe_key_is_unique(store):
    assert store.enqueue(alert(), NOON) is not None
    assert store.enqueue(alert(), NOON) is None
    assert len(store.list_alerts()) == 1


def test_sent_then_delivered_by_receipt(store):
    gateway = ScriptedGateway()
    alert_id = store.enqueue(alert(), NOON)
    report = dispatch_due(store, gateway, NOON)
    assert report.sent == [alert_id] and store.get(alert_id).state is AlertState.SENT
    gateway.receipts = [DeliveryReceipt("ID-1", "delivered")]
    report = dispatch_due(store, gateway, NOON + timedelta(minutes=1))
    assert report.finished == [alert_id]
    assert store.get(alert_id).state is AlertState.DELIVERED
    assert len(gateway.sent) == 1


def test_persisted_sending_before_gateway_call(store):
    states = []

    class Observing(ScriptedGateway):
        def send(self, to, text, *, client_ref, template=None):
            states.append(store.get(alert_id).state)
            return super().send(to, text, client_ref=client_ref)

    alert_id = store.enqueue(alert(), NOON)
    dispatch_due(store, Observing(), NOON)
    assert states == [AlertState.SENDING]


def test_gateway_unavailable_requeues_rejected_fails_and_escalates(store):
    first = store.enqueue(alert("day1"), NOON)
    second = store.enqueue(alert("day3"), NOON)
    gateway = ScriptedGateway(GatewayUnavailable("down"), SendRejected("bad number"))
    report = dispatch_due(store, gateway, NOON)
    assert report.retry == [first] and report.failed == [second]
    assert store.get(first).state is AlertState.QUEUED
    assert store.get(first).not_before > NOON
    assert store.get(second).state is AlertState.FAILED
    assert report.escalated == [second]
    assert dispatch_due(store, gateway, NOON).sent == []  # retry waits for not_before
    assert dispatch_due(store, gateway, NOON + timedelta(minutes=6)).sent == [first]


def test_uncertain_send_is_escalated_and_never_resent(store):
    alert_id = store.enqueue(alert(), NOON)
    gateway = ScriptedGateway(SendUncertain("link lost", ("A1",)))
    report = dispatch_due(store, gateway, NOON)
    assert report.uncertain == [alert_id]
    row = store.get(alert_id)
    assert row.state is AlertState.SENDING and row.escalated_at is not None
    assert row.message_ids == ("A1",)
    for minutes in (10, 60, 600):
        dispatch_due(store, gateway, NOON + timedelta(minutes=minutes))
    assert len(gateway.sent) == 1


def test_quiet_hours_defer_not_drop(store):
    alert_id = store.enqueue(alert(), NIGHT)
    gateway = ScriptedGateway()
    report = dispatch_due(store, gateway, NIGHT)
    assert report.deferred == [alert_id] and gateway.sent == []
    morning = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    assert store.get(alert_id).not_before == morning
    assert dispatch_due(store, gateway, morning).sent == [alert_id]


def test_per_number_daily_limit_defers_to_next_day(store):
    policy = AlertPolicy(per_number_daily=2)
    ids = [store.enqueue(alert(f"s{i}", merchant=f"M{i}"), NOON) for i in range(3)]
    gateway = ScriptedGateway()
    report = dispatch_due(store, gateway, NOON, policy)
    assert report.sent == ids[:2] and report.deferred == [ids[2]]
    next_morning = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    assert store.get(ids[2]).not_before == next_morning


def test_no_receipt_in_time_escalates(store):
    alert_id = store.enqueue(alert(), NOON)
    gateway = ScriptedGateway()
    dispatch_due(store, gateway, NOON)
    assert dispatch_due(store, gateway, NOON + timedelta(hours=1)).escalated == []
    report = dispatch_due(store, gateway, NOON + timedelta(hours=7))
    assert report.escalated == [alert_id]
    assert "no delivery receipt" in store.get(alert_id).escalation_reason


def test_multipart_needs_every_part_and_failure_wins(store):
    class TwoParts(ScriptedGateway):
        def send(self, to, text, *, client_ref, template=None):
            super().send(to, text, client_ref=client_ref)
            return SendResult(("0A", "0B"), 2)

    gateway = TwoParts()
    first = store.enqueue(alert("day1"), NOON)
    dispatch_due(store, gateway, NOON)
    gateway.receipts = [DeliveryReceipt("10", "delivered")]  # decimal form of 0A
    dispatch_due(store, gateway, NOON)
    assert store.get(first).state is AlertState.SENT
    gateway.receipts = [DeliveryReceipt("11", "failed", "005"), DeliveryReceipt("11", "failed")]
    report = dispatch_due(store, gateway, NOON)
    assert report.receipts == 1  # the duplicate is ignored
    assert store.get(first).state is AlertState.FAILED and store.get(first).error == "005"


def test_crash_after_persist_before_send_is_escalated_not_resent(store, smsc, smpp_gateway):
    gateway = smpp_gateway()
    alert_id = store.enqueue(alert(), NOON)
    assert store.claim(alert_id, NOON)  # ... and the process dies before calling the gateway
    # restart
    assert recover_interrupted(store, gateway, NOON) == [alert_id]
    for _ in range(3):
        dispatch_due(store, gateway, NOON + timedelta(minutes=10))
    assert smsc.submits == []
    assert store.get(alert_id).state is AlertState.SENDING
    assert "not resent" in store.get(alert_id).escalation_reason
    store.resolve_uncertain(alert_id, went_out=False, now=NOON)  # operator decides: send it
    dispatch_due(store, gateway, NOON + timedelta(minutes=11))
    assert len(smsc.messages()) == 1


def test_crash_after_send_before_record_sends_exactly_once(store, smsc, smpp_gateway):
    gateway = smpp_gateway()
    alert_id = store.enqueue(alert(), NOON)
    assert store.claim(alert_id, NOON)
    gateway.send("+8613800138000", "text for day1", client_ref="sg1")  # went out, then crash
    recover_interrupted(store, gateway, NOON)
    dispatch_due(store, gateway, NOON + timedelta(minutes=10))
    assert len(smsc.messages()) == 1
    assert store.get(alert_id).escalated_at is not None


def test_smpp_end_to_end_delivery_tracked(store, smsc, smpp_gateway):
    smsc.faults.receipt_before_resp = True
    smsc.faults.duplicate_receipts = True
    gateway = smpp_gateway()
    text = "您的结算款尚未到账，可能原因是结算卡变更审核期间款项付到了旧卡。" * 3
    alert_id = store.enqueue(NewAlert("k", "M1", "G1", "day1", "+8613800138000", text), NOON)
    dispatch_due(store, gateway, NOON)
    wait_for(
        lambda: (
            dispatch_due(store, gateway, NOON).finished
            or store.get(alert_id).state is AlertState.DELIVERED
        )
    )
    assert store.get(alert_id).state is AlertState.DELIVERED
    assert smsc.messages() == [("8613800138000", text, 2)]


def test_file_gateway_lookup_settles_crash(store, tmp_path):
    gateway = gateway_from_url(f"file://{tmp_path}/sms.jsonl")
    assert isinstance(gateway, FileGateway)
    alert_id = store.enqueue(alert(), NOON)
    store.claim(alert_id, NOON)
    gateway.send("+8613800138000", "text for day1", client_ref=f"sg{alert_id}")
    assert recover_interrupted(store, gateway, NOON) == []
    assert store.get(alert_id).state is AlertState.SENT
    lines = [json.loads(x) for x in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert lines[0]["ref"] == f"sg{alert_id}" and lines[0]["encoding"] == "gsm7"
    assert set(lines[0]) == {"to", "text", "parts", "encoding", "ref", "at", "id"}


def test_file_gateway_records_the_template_call(tmp_path):
    gateway = gateway_from_url(f"file://{tmp_path}/sms.jsonl")
    call = TemplateCall("ARRIVED", (("count", "1"), ("amount", "6.38"), ("reference", "SG-1")))
    gateway.send("+8613800138000", "【结算守护】…", client_ref="sg1", template=call)
    [line] = [json.loads(x) for x in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert line["template"] == "ARRIVED" and line["params"]["amount"] == "6.38"


def test_no_full_card_number_in_anything_sent(store, tmp_path):
    gateway = gateway_from_url(f"file://{tmp_path}/sms.jsonl")
    full = {"account_in_force": "6222021234567890123"}
    for i, category in enumerate(("PAID_TO_OLD_ACCOUNT", "RETURNED", "MISSING")):
        add_merchant(store.store, f"M{i}", locale="en")
        add_gap(store.store, f"M{i}", category, 999_999_999, due="2026-11-24", evidence=full)
    plan_alerts(store.store, NOON)
    dispatch_due(store, gateway, NOON)
    sent = (tmp_path / "sms.jsonl").read_text()
    assert sent.count("\n") == 3 and "ending 0123" in sent
    for digits in re.findall(r"\d[\d ,.-]{11,}\d", sent):
        assert len(re.sub(r"\D", "", digits)) < 13 or not luhn(re.sub(r"\D", "", digits))


def luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0
