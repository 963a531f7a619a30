"""``settleguard collector alerts …`` on the collector store, and the provider callback endpoints."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from settleguard.collector.alerts.gateway import SendResult
from settleguard.collector.alerts.http_gateways import twilio_signature
from settleguard.collector.alerts.store import AlertStore, NewAlert
from settleguard.collector.cli import collector
from settleguard.collector.store import Store
from settleguard.collector.web.db import get_store

from settleguard.privacy import find_card_numbers

from .china_sms import AliyunHandler, Fake, register, serve
from .collector_seed import add_gap, add_merchant
from .test_aliyun_gateway import CODES, KEY, SECRET

TWILIO_CALLBACK = "https://collector.example/api/sms/twilio/status"


@pytest.fixture
def db(app: Flask) -> Store:
    return get_store(app)


@pytest.fixture
def sms_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "sms.jsonl"
    monkeypatch.setenv("SETTLEGUARD_SMS_URL", f"file://{path}")
    return path


def daytime_zone() -> str:
    """A zone where it is around noon now (the CLI runs on the wall clock; no quiet hours)."""
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


def alerts_cli(runner: FlaskCliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(collector, ["alerts", *args])
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def test_preview_shows_the_gap_message_without_queueing(runner, db):
    add_merchant(db)
    gap = add_gap(db, category="PAID_TO_OLD_ACCOUNT", amount=123_456_789)
    code, out = alerts_cli(runner, "preview", "--gap", str(gap))
    assert code == 0, out
    assert f"gap {gap} (PAID_TO_OLD_ACCOUNT) to **********8000 in zh-CN" in out
    assert "ucs2" in out and f"SG-{gap}" in out and "4321" in out
    code, out = alerts_cli(runner, "preview", "--gap", str(gap), "--locale", "en", "--json")
    shown = json.loads(out)
    assert shown["locale"] == "en" and shown["text"].startswith("SettleGuard:")
    assert shown["encoding"] == "gsm7" and "".join(shown["parts"]) == shown["text"]
    assert db.count("alerts") == 0
    code, out = alerts_cli(runner, "preview", "--gap", "999")
    assert code == 1 and "no gap with id 999" in out


def test_run_once_plans_sends_and_tracks_then_is_idempotent(runner, db, sms_file):
    add_merchant(db, tz=daytime_zone())
    gap = add_gap(db, due="2020-01-01")  # long overdue: day7 is the stage due now
    code, out = alerts_cli(runner, "run", "--once", "--interval", "0")
    assert code == 0, out
    lines = [json.loads(line) for line in sms_file.read_text(encoding="utf-8").splitlines()]
    assert [(m["to"], m["ref"]) for m in lines] == [("+8613800138000", "sg1")]
    assert find_card_numbers(sms_file.read_text(encoding="utf-8")) == []
    code, out = alerts_cli(runner, "list", "--json")
    [row] = json.loads(out)["alerts"]
    assert (row["gap_id"], row["stage"], row["state"]) == (str(gap), "day7", "delivered")
    assert row["template"] == "MISSING" and lines[0]["template"] == "MISSING"
    assert row["to"] == "**********8000" and "text" not in row
    code, out = alerts_cli(runner, "run", "--once", "--interval", "0")
    assert code == 0 and len(sms_file.read_text(encoding="utf-8").splitlines()) == 1
    code, out = alerts_cli(runner, "list")
    assert "day7" in out and "delivered" in out and "+8613800138000" not in out


def test_run_as_of_judges_what_was_due_then(runner, db, sms_file):
    add_merchant(db, tz="Asia/Shanghai")
    add_gap(db, due="2026-01-12", evidence={"calendar_covers": True})
    code, out = alerts_cli(runner, "run", "--as-of", "2026-01-10T12:00")  # before the due date
    assert code == 0, out
    assert not sms_file.exists() or sms_file.read_text(encoding="utf-8") == ""
    code, out = alerts_cli(runner, "run", "--as-of", "2026-01-20T12:00")  # noon in Shanghai
    assert code == 0, out
    assert len(sms_file.read_text(encoding="utf-8").splitlines()) == 1


def test_list_escalated_shows_the_operator_queue(runner, db):
    add_merchant(db)
    gap = add_gap(db)
    alerts = AlertStore(db)
    now = datetime.now(UTC)
    stuck = alerts.enqueue(NewAlert("k1", "M1", str(gap), "day1", "+8613800138000", "t"), now)
    fine = alerts.enqueue(NewAlert("k3", "M1", str(gap), "day3", "+8613800138000", "t"), now)
    alerts.claim(stuck, now)
    alerts.escalate(stuck, "interrupted while sending; outcome unknown, not resent", now)
    alerts.claim(fine, now)
    alerts.mark_sent(fine, SendResult(("X1",)), now)
    code, out = alerts_cli(runner, "list", "--escalated", "--json")
    assert code == 0, out
    assert [(r["id"], r["state"], r["escalated"]) for r in json.loads(out)["alerts"]] == [
        (stuck, "sending", True)
    ]
    code, out = alerts_cli(runner, "list")
    assert "ESCALATED: interrupted while sending" in out


def test_test_command_reports_provider_ids(runner, sms_file):
    code, out = alerts_cli(runner, "test", "--to", "+8613800138000", "--json")
    assert code == 0, out
    shown = json.loads(out)
    assert shown["to"] == "**********8000" and len(shown["message_ids"]) == 1


def test_test_command_over_smpp_prints_provider_ids(runner, smsc, monkeypatch):
    monkeypatch.setenv("SETTLEGUARD_SMS_URL", smsc.url(timeout=1, submit_timeout=3))
    code, out = alerts_cli(runner, "test", "--to", "+8613800138000", "--json")
    assert code == 0, out
    assert json.loads(out)["message_ids"] == [s.message_id for s in smsc.submits]
    assert smsc.messages()[0][1] == "SettleGuard SMS test 结算守护短信测试"
    smsc.faults.bind_failures = 10**6
    monkeypatch.setenv("SETTLEGUARD_SMS_URL", smsc.url(submit_timeout=0.2))
    code, out = alerts_cli(runner, "test", "--to", "+1")
    assert code == 1 and "SMS test failed" in out


def test_run_without_gateway_says_why(runner, monkeypatch):
    monkeypatch.delenv("SETTLEGUARD_SMS_URL", raising=False)
    code, out = alerts_cli(runner, "run", "--once")
    assert code == 1 and "SETTLEGUARD_SMS_URL is not set" in out


# -- provider callbacks -------------------------------------------------------------------


def sent_alert(db: Store, message_id: str) -> int:
    add_merchant(db)
    gap = add_gap(db)
    alerts = AlertStore(db)
    now = datetime.now(UTC)
    alert_id = alerts.enqueue(NewAlert("k", "M1", str(gap), "day1", "+8613800138000", "t"), now)
    alerts.claim(alert_id, now)
    alerts.mark_sent(alert_id, SendResult((message_id,)), now)
    return alert_id


def test_twilio_status_callback_is_signature_checked_and_tracked(app, db):
    app.config["SMS_URL"] = (
        f"twilio+http://AC123:tok3n@127.0.0.1:9/?from=%2B15550001111&callback={TWILIO_CALLBACK}"
    )
    client = app.test_client()
    alert_id = sent_alert(db, "SM42")
    form = {"MessageSid": "SM42", "MessageStatus": "delivered", "AccountSid": "AC123"}
    bad = client.post("/api/sms/twilio/status", data=form, headers={"X-Twilio-Signature": "AAAA"})
    assert bad.status_code == 403
    assert db.count("alert_receipts") == 0
    good_sig = twilio_signature("tok3n", TWILIO_CALLBACK, form)
    for _ in range(2):  # a provider retry is harmless
        ok = client.post(
            "/api/sms/twilio/status", data=form, headers={"X-Twilio-Signature": good_sig}
        )
        assert ok.status_code == 204
    assert db.count("alert_receipts") == 1
    alerts = AlertStore(db)
    assert alerts.apply_receipts(datetime.now(UTC)) == [alert_id]
    assert alerts.get(alert_id).state.value == "delivered"


def test_aliyun_report_needs_the_shared_token(app, db):
    app.config["SMS_URL"] = "aliyun+http://KEY:SECRET@127.0.0.1:9/"
    client = app.test_client()
    alert_id = sent_alert(db, "900001")
    body = json.dumps([{"biz_id": "900001", "success": False, "err_code": "MOBILE_NOT_ON"}])
    closed = client.post("/api/sms/aliyun/report?token=x", data=body)
    assert closed.status_code == 403  # no SMS_CALLBACK_TOKEN configured: endpoint closed
    app.config["SMS_CALLBACK_TOKEN"] = "s3cret-token"
    assert client.post("/api/sms/aliyun/report?token=wrong", data=body).status_code == 403
    garbage = client.post("/api/sms/aliyun/report?token=s3cret-token", data=b"{")
    assert garbage.status_code == 400
    ok = client.post("/api/sms/aliyun/report?token=s3cret-token", data=body)
    assert ok.status_code == 200 and ok.get_json() == {"code": 0, "msg": "成功"}
    alerts = AlertStore(db)
    assert alerts.apply_receipts(datetime.now(UTC)) == [alert_id]
    row = db.query_one("SELECT state, last_error FROM alerts WHERE id = ?", (alert_id,))
    assert row == {"state": "failed", "last_error": "MOBILE_NOT_ON"}


@pytest.mark.parametrize("url", ["file:///tmp/unused.jsonl", "smpp://sg:pw@127.0.0.1:9", None])
def test_callbacks_404_when_another_gateway_is_configured(app, url):
    app.config["SMS_URL"] = url
    client = app.test_client()
    assert client.post("/api/sms/twilio/status", data={"a": "b"}).status_code == 404
    assert client.post("/api/sms/aliyun/report", data=b"[]").status_code == 404
    assert "settleguard.sms_callback_gateway" not in app.extensions  # no SMPP bind from the web


# -- templates and a template provider --------------------------------------------------------


def test_templates_export_csv_and_json(runner):
    code, out = alerts_cli(runner, "templates", "export", "--provider", "tencent")
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(out)))
    paid = next(r for r in rows if r["template"] == "PAID_TO_OLD_ACCOUNT")
    assert paid["type"] == "通知短信" and paid["text"].startswith("{1}交易的结算款¥{2}")
    code, out = alerts_cli(runner, "templates", "export", "--json")
    rows = json.loads(out)
    paid = next(r for r in rows if r["template"] == "PAID_TO_OLD_ACCOUNT")
    assert "${card_tail}" in paid["text"] and paid["variables"][2]["sample"] == "0017"


def test_run_through_aliyun_is_refused_without_every_approved_code(
    runner, db, tmp_path, monkeypatch
):
    fake = Fake(KEY, SECRET, register("aliyun", CODES))
    server, address = serve(AliyunHandler, fake)
    try:
        monkeypatch.setenv("SETTLEGUARD_SMS_URL", f"aliyun+http://{KEY}:{SECRET}@{address}/")
        add_merchant(db, tz=daytime_zone())
        add_gap(db, due="2020-01-01")
        code, out = alerts_cli(runner, "run", "--once")
        assert code == 1 and "SETTLEGUARD_SMS_TEMPLATE_CODES" in out
        codes = tmp_path / "codes.toml"
        partial = {k: v for k, v in CODES.items() if k not in ("HELD", "DIGEST")}
        codes.write_text("[aliyun]\n" + "".join(f'{k} = "{v}"\n' for k, v in partial.items()))
        monkeypatch.setenv("SETTLEGUARD_SMS_TEMPLATE_CODES", str(codes))
        code, out = alerts_cli(runner, "run", "--once")
        assert code == 1 and "no approved aliyun template code for DIGEST, HELD" in out
        assert fake.sent == [] and db.count("alerts") == 0  # refused before anything was queued
        codes.write_text("[aliyun]\n" + "".join(f'{k} = "{v}"\n' for k, v in CODES.items()))
        code, out = alerts_cli(runner, "run", "--once")
        assert code == 0 and "sent=1" in out, out
        [(number, text)] = fake.sent
        assert number == "13800138000" and text == db.query_one("SELECT text FROM alerts")["text"]
    finally:
        server.shutdown()
        server.server_close()
