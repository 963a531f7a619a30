"""Privacy scan after end-to-end runs: no full card or account number anywhere (docs/architecture.md §6).

Two runs, each with every logger at DEBUG written to a file for the whole run:

* an agent → Mosquitto → ingest worker flow with a settlement-card change carrying a real
  (test) card number, batches and heartbeats, an offline export bundle, and a subscriber on
  ``sg/#`` with the collector's credentials capturing every MQTT payload;
* ``run_demo`` (terminals, agents, broker, collector, bank files, reconciliation, SMS outbox).

Then every artifact — both SQLite databases (row by row and raw, WAL included), the log
files, the broker log, the captured payloads, the SMS outbox and the exported files — is
scanned for Luhn-valid card numbers and for the known test account numbers: zero hits. Each
test first proves the scanner would have caught the number it looks for (a positive control)
and that the number really went through the system (the masked form arrived).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from settleguard.agent.bundle import export_bundle
from settleguard.agent.card_change import CardChangeRequest, build_card_change
from settleguard.agent.config import SyncSettings
from settleguard.agent.home import agent_home
from settleguard.agent.keys import load_or_create_key
from settleguard.agent.outbox import Outbox
from settleguard.agent.recorder import append_record, heartbeat_record, seal_heartbeat
from settleguard.agent.sync import BrokerTarget, SyncLink
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.enrollment.broker import mosquitto_binary
from settleguard.collector.enrollment.keys import init_keys
from settleguard.collector.ingest.worker import IngestWorker
from settleguard.collector.store import open_store

from settleguard.demo.run import DemoOptions, run_demo
from settleguard.demo.world import build_world
from settleguard.privacy import scan_path, scan_texts
from tests.helpers.calendar import calendar_covers_demo
from tests.helpers.mosquitto import running_broker
from tests.helpers.mqtt import MqttProbe
from tests.helpers.records import batch

CARD = "6222021234567894"  # Luhn-valid UnionPay-shaped test number


@contextmanager
def debug_log(path: Path) -> Iterator[Path]:
    """Send every logger's output at DEBUG to ``path`` for the duration."""
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def test_scanner_positive_control() -> None:
    assert scan_texts([("x", f"card {CARD} here")])
    assert scan_texts([("x", "account 6217001231000001")], known=["6217001231000001"])


@pytest.mark.mosquitto
@pytest.mark.timeout(120)
def test_agent_broker_collector_flow_leaks_no_card_number(tmp_path: Path) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto binary not installed")
    with debug_log(tmp_path / "debug.log") as log_path:
        store = open_store(f"sqlite:///{tmp_path / 'collector.db'}")
        store.migrate()
        keys, _ = init_keys(tmp_path / "collector-keys")
        home = agent_home(tmp_path / "agent")
        key = load_or_create_key(home)
        token = enrollment.issue_token(store, "M100", ttl_s=600)
        enrolled = enrollment.enroll(store, token=token, public_key=key.public_raw,
                                     agent_id=key.agent_id)  # fmt: skip
        enrollment.approve(store, key.agent_id, actor="test")
        with running_broker(tmp_path / "broker", {key.agent_id: enrolled.broker_password}) as b:
            settings = {"host": "127.0.0.1", "port": b.port, "username": b.collector[0],
                        "password": b.collector[1], "protocol": "5"}  # fmt: skip
            worker = IngestWorker(store, settings, keys=keys)
            worker.start()
            stop = threading.Event()
            thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
            thread.start()
            spy = MqttProbe.connect(b.port, *b.collector)
            spy.subscribe("sg/#")
            box = Outbox(home.outbox_path)
            change = build_card_change(
                CardChangeRequest("M100", "Li Lei", "ICBC", "2026-03-01T10:00:00Z",
                                  old_account_masked="****0001"),
                f"{CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:]}", keys.sealing_public,
            )  # fmt: skip
            append_record(box, key, change)
            for n in range(1, 6):
                append_record(box, key, batch(terminal_id="T0001", batch_no=n, amount=1000 * n))
            (tmp_path / "export").mkdir()
            export_bundle(home, tmp_path / "export" / "bundle.sgb")
            link = SyncLink(box, key, BrokerTarget.from_url(
                f"mqtt://127.0.0.1:{b.port}", username=key.agent_id,
                password=enrolled.broker_password), SyncSettings(window=10, ack_timeout_s=2))  # fmt: skip
            result = link.flush(30, heartbeat=lambda: seal_heartbeat(
                key, heartbeat_record(box, link_state="connected", terminal_id="T0001"), 6))  # fmt: skip
            assert result.complete, result
            spy.wait_for(lambda msgs: len([t for t, _ in msgs if t.endswith("/rec")]) >= 6)
            stop.set()
            thread.join(5)
            worker.stop()
            spy.close()
            box.close()
        rows = store.query("SELECT new_account_masked, new_account_sealed FROM card_changes")
        store.close()
    assert [r["new_account_masked"][-4:] for r in rows] == [CARD[-4:]]  # it went through
    assert rows[0]["new_account_sealed"]  # ciphertext only
    assert spy.messages and log_path.stat().st_size > 0
    captured = [
        (f"mqtt:{topic}", payload.decode("utf-8", "replace")) for topic, payload in spy.messages
    ]
    assert scan_texts(captured, known=[CARD]) == []
    assert scan_path(tmp_path, known=[CARD]) == []  # both DBs, debug log, broker log, bundle


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_demo_artifacts_and_debug_logs_leak_nothing(tmp_path: Path) -> None:
    options = DemoOptions(workdir=tmp_path / "demo", terminals=12, days=14, seed=11)
    progress: list[str] = []
    with debug_log(tmp_path / "demo-debug.log") as log_path:
        result, demo = run_demo(options, progress.append)
    world = build_world(options.terminals, options.days, options.seed, demo.today)
    known = [n for shop in world.shops for n in (shop.account, shop.new_account)]
    assert known and all(scan_texts([("x", n)]) for n in known)  # positive control
    assert result.records > 0, progress[-4:]
    if calendar_covers_demo(demo.today, options.days):  # else the SMS wait for the calendar
        assert result.sms_sent > 0, progress[-4:]
        sms = list((tmp_path / "demo").rglob("*.jsonl"))
        assert sms, "the demo's SMS outbox (file:// gateway) was written"
    # the in-process demo emits few or no log records; whatever it wrote is scanned too
    assert log_path.exists()
    hits = scan_path(tmp_path, known=known)  # demo folder (DBs, SMS, bank files) + debug log
    assert hits == [], hits[:5]
    assert result.privacy_hits == 0
