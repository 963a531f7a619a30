"""``settleguard demo`` end to end: what the reconciliation finds is what the script injected."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from settleguard.collector.enrollment.broker import mosquitto_binary

from settleguard.demo.run import DemoOptions, run_demo
from settleguard.demo.services import wait_for
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


def _settleguard(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "settleguard.cli", *args],
        env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.skipif(mosquitto_binary() is None, reason="apt-get install mosquitto")
def test_dashboard_approve_in_the_demo_lets_a_new_agent_sync(tmp_path: Path) -> None:
    """The technician's path on the demo: token from the CLI pointed at the demo's instance,
    enroll, approval in the dashboard, then a sync through the demo's Mosquitto."""
    import os

    from tests.collector.web.conftest import csrf_token

    result, demo = run_demo(
        DemoOptions(workdir=tmp_path / "demo", terminals=2, days=4, seed=5), print,
        keep_running=True, port=0,
    )  # fmt: skip
    try:
        assert result.instance == str((tmp_path / "demo" / "collector").resolve())
        env = {**os.environ, "SETTLEGUARD_INSTANCE_PATH": result.instance,
               "SETTLEGUARD_AGENT_HOME": str(tmp_path / "tech")}  # fmt: skip
        merchant = demo.store.query("SELECT merchant_id FROM merchants ORDER BY 1")[0]
        token = _settleguard("collector", "agents", "token", "--merchant",
                             merchant["merchant_id"], env=env)  # fmt: skip
        assert token.returncode == 0, token.stderr
        assert f"collector: instance {result.instance}" in token.stderr
        enrolled = _settleguard("agent", "enroll", "--collector", str(result.dashboard),
                                "--token", token.stdout.strip(), env=env)  # fmt: skip
        assert enrolled.returncode == 0, enrolled.stderr
        (agent,) = demo.store.query("SELECT agent_id FROM agents WHERE status = 'pending'")
        client = demo.app.test_client()
        assert result.login is not None
        client.post("/login", data={"username": result.login[0], "password": result.login[1],
                                    "csrf_token": csrf_token(client)})  # fmt: skip
        overview = client.get("/?lang=en").get_data(as_text=True)
        from settleguard.collector.money import format_money

        shown = f'id="money-at-risk">{format_money(result.money_at_risk)}<'
        assert shown in overview  # one definition of money at risk: overview and summary
        page = client.get("/agents").get_data(as_text=True)
        depths = re.findall(r'<td class="num outbox-depth">([^<]*)</td>', page)
        assert depths.count("0") == 2  # the demo's agents reported an empty outbox
        approved = client.post(f"/agents/{agent['agent_id']}/approve",
                               data={"csrf_token": csrf_token_from(page)})  # fmt: skip
        assert approved.status_code in (200, 302)
        row = demo.store.query_one("SELECT status FROM agents WHERE agent_id = ?",
                                   (agent["agent_id"],))  # fmt: skip
        assert row is not None and row["status"] == "approved"
        changed = _settleguard("agent", "card-change", "--holder", "张三", "--bank", "ICBC",
                               "--card-stdin", env=env, stdin="6222021234567894\n")  # fmt: skip
        assert changed.returncode == 0, changed.stderr
        synced = _settleguard("agent", "sync", "--json", env=env)
        assert synced.returncode == 0, synced.stderr
        assert json.loads(synced.stdout)["acked"] >= 1
    finally:
        demo.close()


def csrf_token_from(page: str) -> str:
    import re

    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, "no csrf_token on the page"
    return match.group(1)


@pytest.mark.skipif(mosquitto_binary() is None, reason="apt-get install mosquitto")
def test_sigterm_ends_the_demo_and_its_mosquitto(tmp_path: Path) -> None:
    import os
    import signal

    workdir = tmp_path / "demo"
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "settleguard.cli", "demo", "--terminals", "2", "--days", "4",
             "--port", "0", "--workdir", str(workdir)],
            stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    try:
        wait_for(lambda: "press Ctrl-C" in log.read_text() or process.poll() is not None, 240,
                 "the demo to serve")  # fmt: skip
        assert process.poll() is None, log.read_text()
    except BaseException:
        process.kill()
        raise
    assert "export SETTLEGUARD_INSTANCE_PATH=" in log.read_text()  # how to point the CLI
    broker_pid = int((workdir / "broker" / "mosquitto.pid").read_text())
    os.kill(broker_pid, 0)  # running
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 128 + signal.SIGTERM

    def gone() -> bool:
        try:
            os.kill(broker_pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{broker_pid}/stat") as stat:  # a zombie no one reaped yet is gone
            return stat.read().split(") ")[1].startswith("Z")

    wait_for(gone, 20, "the demo's mosquitto to end with it")
