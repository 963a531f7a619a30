"""AlertStore on the collector's database, both backends."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from settleguard.collector.alerts.dispatcher import dispatch_due, recover_interrupted
from settleguard.collector.alerts.gateway import (
    DeliveryReceipt,
    SendRejected,
    SendResult,
    SendUncertain,
    TemplateCall,
)
from settleguard.collector.alerts.policy import AlertState, InvalidTransition
from settleguard.collector.alerts.store import (
    AlertStore,
    NewAlert,
    escalated_alerts,
    escalation_count,
)
from settleguard.collector.store import Store, open_store

from .collector_seed import add_gap, add_merchant

NOON = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
NIGHT = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)  # 23:00 in Asia/Shanghai


class ScriptedGateway:
    """A gateway double whose outcomes the test scripts (SMPP is tested for real elsewhere)."""

    def __init__(self, *outcomes: object, parts: int = 1) -> None:
        self.outcomes = list(outcomes)
        self.parts = parts
        self.sent: list[tuple[str, str, str]] = []
        self.receipts: list[DeliveryReceipt] = []

    def send(
        self, to: str, text: str, *, client_ref: str, template: TemplateCall | None = None
    ) -> SendResult:
        self.sent.append((to, text, client_ref))
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, Exception):
            raise outcome
        n = len(self.sent)
        ids = tuple(f"{n:02X}{p:02X}" for p in range(self.parts))
        return SendResult(ids, self.parts, "ucs2")

    def poll_receipts(self) -> list[DeliveryReceipt]:
        out, self.receipts = self.receipts, []
        return out

    def lookup(self, client_ref: str) -> SendResult | None:
        return None

    def close(self) -> None:
        pass


@pytest.fixture
def gap(store: Store) -> int:
    add_merchant(store)
    return add_gap(store)


@pytest.fixture
def alerts(store: Store) -> AlertStore:
    return AlertStore(store)


def new(gap_id: int, stage: str = "day1", to: str = "+8613800138000", key: str = "") -> NewAlert:
    return NewAlert(key or f"M1|{gap_id}|{stage}", "M1", str(gap_id), stage, to,
                    f"text for {stage}", covers=((str(gap_id), stage),))  # fmt: skip


def test_enqueue_dedupes_by_key_and_by_each_gap_stage_it_covers(alerts, gap, store):
    call = TemplateCall("MISSING", (("date", "11月20日"), ("amount", "1.00")))
    first = alerts.enqueue(dataclasses.replace(new(gap), template=call), NOON)
    assert first is not None
    assert alerts.enqueue(new(gap), NOON + timedelta(hours=1)) is None
    # another message carrying the same gap stage is refused whole: no row, no second SMS
    other = add_gap(store)
    both = NewAlert("M1|other", "M1", str(other), "day1", "+8613800138000", "x",
                    covers=((str(other), "day1"), (str(gap), "day1")))  # fmt: skip
    assert alerts.enqueue(both, NOON) is None
    assert store.count("alerts") == 1 and alerts.stages_for("M1", str(other)) == set()
    assert alerts.enqueue(new(gap, "day3"), NOON) is not None
    assert alerts.stages_for("M1", str(gap)) == {"day1", "day3"}
    row = store.query_one("SELECT * FROM alerts WHERE id = ?", (first,))
    assert row["dedupe_key"] == f"M1|{gap}|day1" and alerts.get(first).template == call
    assert row["gap_id"] == gap and row["phone"] == "+8613800138000"
    assert row["locale"] == "zh-CN" and row["state"] == "queued"
    loaded = alerts.get(first)
    assert loaded.gap_id == str(gap) and loaded.tz == "Asia/Shanghai"
    assert loaded.not_before == NOON and loaded.created_at == NOON


def test_get_unknown_alert_is_key_error(alerts):
    with pytest.raises(KeyError, match="no alert with id 99"):
        alerts.get(99)


def test_claim_is_committed_once(alerts, gap, store):
    alert_id = alerts.enqueue(new(gap), NOON)
    assert alerts.claim(alert_id, NOON) is True
    assert alerts.claim(alert_id, NOON) is False
    # a second connection (another dispatcher process) sees the committed state
    other = open_store(store.url)
    try:
        assert AlertStore(other).get(alert_id).state is AlertState.SENDING
        assert AlertStore(other).claim(alert_id, NOON) is False
    finally:
        other.close()
    row = store.query_one("SELECT attempts, attempted_at FROM alerts WHERE id = ?", (alert_id,))
    assert row["attempts"] == 1 and row["attempted_at"].startswith("2026-11-26T04:00:00")


def test_illegal_transition_refused(alerts, gap):
    alert_id = alerts.enqueue(new(gap), NOON)
    with pytest.raises(InvalidTransition):
        alerts.fail(alert_id, "x", NOON)  # queued -> failed is not an edge
    with pytest.raises(ValueError, match="not sending"):
        alerts.mark_sent(alert_id, SendResult(("A",)), NOON)


def test_multipart_delivered_only_when_every_part_is(alerts, gap, store):
    gateway = ScriptedGateway(parts=2)
    alert_id = alerts.enqueue(new(gap), NOON)
    assert dispatch_due(alerts, gateway, NOON).sent == [alert_id]
    sent = alerts.get(alert_id)
    assert (
        sent.state is AlertState.SENT and sent.message_ids == ("0100", "0101") and sent.parts == 2
    )
    # first part's receipt quotes the id in decimal, the second in hex with leading zeros
    gateway.receipts = [DeliveryReceipt("256", "delivered")]
    assert dispatch_due(alerts, gateway, NOON).finished == []
    gateway.receipts = [DeliveryReceipt("00000101", "delivered")] * 2  # duplicate receipts
    report = dispatch_due(alerts, gateway, NOON + timedelta(minutes=1))
    assert report.finished == [alert_id] and report.receipts == 1
    row = store.query_one("SELECT * FROM alerts WHERE id = ?", (alert_id,))
    assert row["state"] == "delivered" and row["delivered_at"] is not None
    assert row["provider_message_id"] == "0100,0101"
    assert len(gateway.sent) == 1


def test_receipt_before_submit_response_is_kept(alerts, gap):
    alert_id = alerts.enqueue(new(gap), NOON)
    assert alerts.record_receipt(DeliveryReceipt("AB12", "delivered"), NOON) is True
    assert alerts.record_receipt(DeliveryReceipt("AB12", "delivered"), NOON) is False
    assert alerts.record_receipt(DeliveryReceipt("AB12", "pending"), NOON) is False
    assert alerts.apply_receipts(NOON) == []
    alerts.claim(alert_id, NOON)
    alerts.mark_sent(alert_id, SendResult(("ab12",)), NOON)
    assert alerts.apply_receipts(NOON) == [alert_id]
    assert alerts.get(alert_id).state is AlertState.DELIVERED


def test_failed_part_fails_and_escalates_visibly(alerts, gap, store):
    gateway = ScriptedGateway(parts=2)
    alert_id = alerts.enqueue(new(gap), NOON)
    dispatch_due(alerts, gateway, NOON)
    gateway.receipts = [
        DeliveryReceipt("0100", "delivered"),
        DeliveryReceipt("0101", "failed", "0B"),
    ]
    report = dispatch_due(alerts, gateway, NOON + timedelta(minutes=2))
    assert report.finished == [alert_id] and report.escalated == [alert_id]
    queue = escalated_alerts(store)
    assert [(q["id"], q["state"], q["reason"], q["error"]) for q in queue] == [
        (alert_id, "failed", "delivery failed", "0B")
    ]
    assert queue[0]["phone"] == "**********8000" and queue[0]["gap_id"] == gap
    assert "text" not in queue[0]
    assert escalation_count(store) == 1


def test_rejected_send_fails_and_no_receipt_in_time_escalates(alerts, gap, store):
    rejected = alerts.enqueue(new(gap, "day1"), NOON)
    quiet = alerts.enqueue(new(gap, "day3"), NOON)
    gateway = ScriptedGateway(SendRejected("invalid number"))
    report = dispatch_due(alerts, gateway, NOON)
    assert report.failed == [rejected] and report.sent == [quiet]
    assert store.query_one("SELECT last_error FROM alerts WHERE id = ?", (rejected,)) == {
        "last_error": "invalid number"
    }
    assert dispatch_due(alerts, gateway, NOON + timedelta(hours=5)).escalated == []
    assert dispatch_due(alerts, gateway, NOON + timedelta(hours=6)).escalated == [quiet]
    reasons = {q["id"]: q["reason"] for q in escalated_alerts(store)}
    assert reasons == {rejected: "delivery failed", quiet: "no delivery receipt within 6:00:00"}


def test_crash_between_persist_and_send_is_escalated_not_resent(alerts, gap, store):
    """The dispatcher dies after committing ``sending``: a restart must not send it again."""
    alert_id = alerts.enqueue(new(gap), NOON)
    assert alerts.claim(alert_id, NOON)  # ... and the process dies here
    restarted = AlertStore(open_store(store.url))
    try:
        gateway = ScriptedGateway()
        assert recover_interrupted(restarted, gateway, NOON + timedelta(minutes=1)) == [alert_id]
        for minutes in (2, 60, 600):
            dispatch_due(restarted, gateway, NOON + timedelta(minutes=minutes))
        assert gateway.sent == []
        row = restarted.get(alert_id)
        assert row.state is AlertState.SENDING and row.escalation_reason is not None
        assert [q["id"] for q in escalated_alerts(restarted.store)] == [alert_id]
        # the operator decides it did not go out: queued again, escalation closed, sent once
        restarted.resolve_uncertain(alert_id, False, NOON + timedelta(hours=1))
        assert escalated_alerts(restarted.store) == []
        assert dispatch_due(restarted, gateway, NOON + timedelta(hours=1)).sent == [alert_id]
        assert len(gateway.sent) == 1
        assert "operator: send again" in (restarted.get(alert_id).escalation_reason or "")
    finally:
        restarted.store.close()


def test_uncertain_send_keeps_accepted_ids(alerts, gap):
    alert_id = alerts.enqueue(new(gap), NOON)
    gateway = ScriptedGateway(SendUncertain("link lost", ("A1",)))
    assert dispatch_due(alerts, gateway, NOON).uncertain == [alert_id]
    row = alerts.get(alert_id)
    assert row.state is AlertState.SENDING and row.message_ids == ("A1",)
    alerts.resolve_uncertain(alert_id, True, NOON)
    assert alerts.get(alert_id).state is AlertState.SENT
    assert len(gateway.sent) == 1


def test_quiet_hours_and_limits_count_in_collector_rows(alerts, store):
    add_merchant(store)
    gaps = [add_gap(store) for _ in range(3)]
    ids = [alerts.enqueue(new(g), NIGHT) for g in gaps]
    gateway = ScriptedGateway()
    assert dispatch_due(alerts, gateway, NIGHT).deferred == ids
    morning = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    assert all(alerts.get(i).not_before == morning for i in ids)
    from settleguard.collector.alerts.policy import AlertPolicy

    policy = AlertPolicy(per_number_daily=2)
    report = dispatch_due(alerts, gateway, morning, policy)
    assert report.sent == ids[:2] and report.deferred == ids[2:]
    assert alerts.sent_count(morning - timedelta(hours=8), to_number="+8613800138000") == 2
    assert alerts.sent_count(morning - timedelta(hours=8), merchant_id="M1") == 2


def test_dashboard_resend_row_is_dispatched(alerts, gap, store):
    """A re-send queued by the dashboard has only the columns it knows about."""
    with store.transaction() as tx:
        resend = tx.insert(
            "alerts",
            {"dedupe_key": f"resend:{gap}:1:x", "gap_id": gap, "merchant_id": "M1",
             "phone": "+8613800138000", "locale": "zh-CN", "text": "again", "state": "queued"},
        )  # fmt: skip
    loaded = alerts.get(resend)
    assert loaded.stage == "resend" and loaded.tz == "Asia/Shanghai"
    assert alerts.stages_for("M1", str(gap)) == set()
    gateway = ScriptedGateway()
    now = datetime.now(UTC) + timedelta(seconds=1)
    now = now.replace(hour=4)  # noon in Shanghai, not in quiet hours
    if now < loaded.created_at:
        now += timedelta(days=1)
    assert dispatch_due(alerts, gateway, now).sent == [resend]
    assert gateway.sent == [("+8613800138000", "again", f"sg{resend}")]


def test_list_alerts_newest_first_with_masked_summary(alerts, gap):
    first = alerts.enqueue(new(gap, "day1"), NOON)
    second = alerts.enqueue(new(gap, "day3"), NOON)
    listed = alerts.list_alerts(10)
    assert [a.id for a in listed] == [second, first]
    summary = listed[0].summary()
    assert summary["to"] == "**********8000" and "text" not in summary


def test_two_dispatchers_apply_the_same_receipt_once(alerts, gap, store):
    alert_id = alerts.enqueue(new(gap), NOON)
    alerts.claim(alert_id, NOON)
    alerts.mark_sent(alert_id, SendResult(("C0FFEE",)), NOON)
    other = open_store(store.url)
    try:
        second = AlertStore(other)
        second.record_receipt(DeliveryReceipt("c0ffee", "delivered"), NOON)
        assert alerts.apply_receipts(NOON) == [alert_id]
        assert second.apply_receipts(NOON) == []
        assert second.get(alert_id).state is AlertState.DELIVERED
    finally:
        other.close()


def test_upgrade_to_7_records_the_stages_of_alerts_sent_before(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from settleguard.collector.store import schema

    store = open_store(empty_database_url)
    try:
        monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:6])
        store.migrate()
        add_merchant(store)
        gap = add_gap(store)
        with store.transaction() as tx:
            for key, stage in (("a", "day1"), ("b", "day3"), ("c", None)):
                tx.insert("alerts", {"dedupe_key": key, "gap_id": gap, "merchant_id": "M1",
                                     "phone": "+8613800138000", "text": "t", "stage": stage})  # fmt: skip
        monkeypatch.undo()
        assert 7 in store.migrate()
        assert AlertStore(store).stages_for("M1", str(gap)) == {"day1", "day3"}
        [row] = store.query("SELECT template, params FROM alerts WHERE dedupe_key = 'a'")
        assert row == {"template": None, "params": "[]"}
    finally:
        store.close()


def test_dashboard_resend_keeps_the_template_a_provider_needs(alerts, gap, store):
    from settleguard.collector.web.actions import resend_alert

    call = TemplateCall("MISSING", (("date", "11月20日"), ("amount", "1,234.56")))
    first = alerts.enqueue(dataclasses.replace(new(gap), template=call), NOON)
    again = resend_alert(store, gap, actor="op")["alert_id"]
    assert again != first and alerts.get(again).template == call
    assert alerts.get(again).text == alerts.get(first).text
