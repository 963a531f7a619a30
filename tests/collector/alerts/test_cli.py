from __future__ import annotations

import json
from datetime import UTC, datetime

from click.testing import CliRunner
from collector.alerts.outbox import NewAlert, SqliteAlertStore

from collector.alerts.cli import alerts


def test_alerts_test_over_smpp_prints_provider_ids(smsc):
    runner = CliRunner()
    url = smsc.url(timeout=1, submit_timeout=3)
    result = runner.invoke(
        alerts, ["test", "--to", "+8613800138000", "--json"], env={"SETTLEGUARD_SMS_URL": url}
    )
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert outcome["message_ids"] == [s.message_id for s in smsc.submits]
    assert outcome["to"].endswith("8000") and "13800" not in outcome["to"]
    assert smsc.messages()[0][1] == "SettleGuard SMS test 结算守护短信测试"
    plain = runner.invoke(
        alerts, ["test", "--to", "+8613800138000", "--text", "hi"], env={"SETTLEGUARD_SMS_URL": url}
    )
    assert plain.exit_code == 0 and smsc.submits[-1].message_id in plain.output


def test_alerts_test_errors_are_one_line(smsc):
    runner = CliRunner()
    result = runner.invoke(alerts, ["test", "--to", "+1"], env={"SETTLEGUARD_SMS_URL": ""})
    assert result.exit_code == 1 and "SETTLEGUARD_SMS_URL is not set" in result.output
    smsc.faults.bind_failures = 10**6
    result = runner.invoke(
        alerts, ["test", "--to", "+1"], env={"SETTLEGUARD_SMS_URL": smsc.url(submit_timeout=0.2)}
    )
    assert result.exit_code == 1 and "SMS test failed" in result.output


def daytime_zone() -> str:
    """A fixed-offset zone where it is now between 10:00 and 19:59 (outside quiet hours)."""
    hour = datetime.now(UTC).hour
    offset = (14 - hour + 12) % 24 - 12  # Etc/GMT-N is UTC+N
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


def test_run_once_and_list(tmp_path):
    db = tmp_path / "alerts.db"
    store = SqliteAlertStore(db)
    store.enqueue(
        NewAlert("M1", "G1", "day1", "+8613800138000", "hello", tz=daytime_zone()),
        datetime(2020, 1, 1, 12, tzinfo=UTC),
    )
    store.close()
    sms = tmp_path / "sms.jsonl"
    runner = CliRunner()
    env = {"SETTLEGUARD_SMS_URL": f"file://{sms}"}
    result = runner.invoke(alerts, ["run", "--db", str(db), "--once"], env=env)
    assert result.exit_code == 0, result.output
    assert "sent=1" in result.output and json.loads(sms.read_text())["text"] == "hello"
    listed = runner.invoke(alerts, ["list", "--db", str(db), "--json"])
    rows = json.loads(listed.output)
    # the file gateway reports delivery at once, so the same pass finished it
    assert rows[0]["state"] == "delivered" and "hello" not in listed.output
    again = runner.invoke(alerts, ["run", "--db", str(db), "--once"], env=env)
    assert again.exit_code == 0 and sms.read_text().count("\n") == 1
    text = runner.invoke(alerts, ["list", "--db", str(db)])
    assert "delivered" in text.output and "*********8000" in text.output
