"""``settleguard demo`` end to end: what the reconciliation finds is what the script injected."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from collector.broker import mosquitto_binary
from settleguard.demo.run import DemoOptions, run_demo
from settleguard.privacy import scan_path
from tests.helpers.calendar import calendar_covers_demo

GAP_CATEGORIES = {
    "PAID_TO_OLD_ACCOUNT", "CHANGE_PENDING", "RETURNED", "HELD", "MISSING", "SHORT_PAID",
    "BATCH_NOT_UPLOADED", "DUPLICATE_CREDIT", "AGGREGATED_UNRESOLVED", "STATEMENT_GAP",
}  # fmt: skip

brokers = [
    pytest.param(
        "embedded",
        id="amqtt",
        # amqtt leaves the stream writers of its client sessions unclosed at shutdown (a
        # ResourceWarning from inside amqtt, raised at garbage collection).
        marks=pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    ),
    pytest.param(
        None,
        id="mosquitto",
        marks=pytest.mark.skipif(mosquitto_binary() is None, reason="apt-get install mosquitto"),
    ),
]


@pytest.mark.parametrize("broker", brokers)
def test_every_injected_fault_is_found_and_nothing_else(tmp_path: Path, broker: str | None) -> None:
    messages: list[str] = []
    result, demo = run_demo(
        DemoOptions(workdir=tmp_path / "demo", broker=broker, seed=11), messages.append
    )
    injected_gaps = {c for c in result.injected if c in GAP_CATEGORIES}
    assert len(injected_gaps) >= 7, result.injected
    assert result.detected == result.injected
    assert result.false_positives == 0
    assert result.privacy_hits == 0
    assert result.records > 12 * 14  # every batch plus card changes and replacements
    assert any("reconciliation" in m for m in messages)
    outbox = tmp_path / "demo" / "sms" / "outbox.jsonl"
    sms = outbox.read_text(encoding="utf-8").splitlines() if outbox.exists() else []
    assert result.sms_sent == len(sms)  # every open, due gap of a merchant with a phone ...
    sent = [json.loads(line) for line in sms]
    assert len({m["to"] for m in sent}) == len(sent)  # one SMS per merchant per day
    assert all(m["parts"] == 1 and m["template"] for m in sent)  # approved, one segment
    assert result.sms_sent + result.sms_held > 0
    if calendar_covers_demo(demo.today, 14):  # ... unless the calendar ended before its due date
        assert result.sms_held == 0 and result.sms_sent > 0
        db = sqlite3.connect(tmp_path / "demo" / "collector" / "collector.db")
        try:
            m0001 = db.execute("SELECT template FROM alerts WHERE merchant_id = 'M0001'")
            assert m0001.fetchall() == [("DIGEST",)]  # several open gaps, one SMS
        finally:
            db.close()


def test_demo_folder_holds_no_full_account_number(tmp_path: Path) -> None:
    result, _ = run_demo(DemoOptions(workdir=tmp_path / "demo", terminals=4, days=6, seed=3), print)
    assert result.privacy_hits == 0
    assert scan_path(tmp_path / "demo") == []
    assert (tmp_path / "demo" / "collector" / "collector.db").exists()


def test_cli_json_contract_and_refusal_of_a_foreign_folder(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "settleguard.cli", "demo", "--no-serve", "--json",
               "--terminals", "4", "--days", "5"]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) >= {"injected", "detected", "false_positives", "sms_sent", "dashboard"}
    assert result["dashboard"] is None
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    refused = subprocess.run(
        [*command, "--workdir", str(foreign)], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode != 0 and "not a settleguard demo folder" in refused.stderr
    assert (foreign / "notes.txt").read_text() == "keep me"
