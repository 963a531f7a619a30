"""Pages and API end to end in the test client: upload → gap on the timeline → act → audit."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from settleguard.collector.enrollment.keys import load_keys
from settleguard.collector.store import Store
from settleguard.collector.web.read_models import overview
from settleguard.collector.web.tokens import create_token

from tests.collector.web.conftest import csrf_token, seed_world
from tests.collector.web.scenario import ACCOUNT, MERCHANT, build_world


def _upload(client: FlaskClient, data: bytes) -> str:
    response = client.post(
        "/imports",
        data={"csrf_token": csrf_token(client), "file": (io.BytesIO(data), "bank.csv"),
              "format": "auto", "account": ACCOUNT},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def test_upload_gap_timeline_acknowledge_audit(
    web_app: Flask, db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    data = build_world(db, load_keys(Path(web_app.config["KEYS_DIR"])))
    client = as_role("operator")
    html = _upload(client, data)
    assert "3 credits" in html and "reconciled 1 merchants" in html
    (gap,) = db.query("SELECT id, category, amount FROM gaps WHERE merchant_id = ?", (MERCHANT,))
    assert gap["category"] == "MISSING" and gap["amount"] == 80000
    page = client.get(f"/merchants/{MERCHANT}").get_data(as_text=True)
    assert (
        f'id="gap-{gap["id"]}"' in page
        and ">Missing<" in page
        and "MISSING" not in page
        and "¥800.00" in page
    )
    assert page.index("T-M777 #1") < page.index("SETTLE-1") < page.index("T-M777 #2")  # time order
    assert "one_to_one" in page  # the match and its rule
    response = client.post(
        f"/gaps/{gap['id']}/acknowledge",
        data={"csrf_token": csrf_token(client), "next": f"/merchants/{MERCHANT}"},
    )
    assert response.status_code == 302 and response.headers["Location"] == f"/merchants/{MERCHANT}"
    assert db.query_one("SELECT status, acknowledged_by FROM gaps WHERE id = ?", (gap["id"],)) == {
        "status": "acknowledged", "acknowledged_by": "operator"
    }  # fmt: skip
    audit = client.get("/audit").get_data(as_text=True)
    assert "gap.acknowledge" in audit and "import.upload" in audit
    assert (
        f"&#34;before&#34;: {{&#34;id&#34;: {gap['id']}, &#34;status&#34;: &#34;open&#34;" in audit
    )
    # the same file again is a no-op, and says so
    assert "duplicate" in _upload(client, data)


def test_rejected_upload_is_recorded_with_reason(
    as_role: Callable[[str | None], FlaskClient],
) -> None:
    client = as_role("operator")
    response = client.post(
        "/imports",
        data={"csrf_token": csrf_token(client), "file": (io.BytesIO(b"\x00garbage"), "x.xml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    html = client.get("/imports").get_data(as_text=True)
    assert "x.xml" in html and "rejected" in html


def test_overview_search_queue_and_languages(
    db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    ids = seed_world(db)
    client = as_role("viewer")
    overview = client.get("/").get_data(as_text=True)
    assert 'id="money-at-risk">¥1,234.56' in overview and "<svg" in overview and "<rect" in overview
    assert "ag-1" not in overview  # pending agents are not "silent"
    for q, hit in (("M1", "M100"), ("noodle", "M100"), ("1234", "M100"), ("Tea", "M200")):
        assert hit in client.get(f"/merchants?q={q}").get_data(as_text=True), q
    at_risk = client.get("/merchants?status=at_risk").get_data(as_text=True)
    assert "M100" in at_risk and "M200" not in at_risk
    assert "M200" in client.get("/merchants?status=ok").get_data(as_text=True)
    queue = client.get("/gaps?sort=age").get_data(as_text=True)
    assert (
        f'id="gap-{ids["gap_id"]}"' in queue and "****1234" in queue and "6222****1234" not in queue
    )
    zh = client.get("/gaps?lang=zh-CN").get_data(as_text=True)
    assert "差异队列" in zh and 'lang="zh-CN"' in zh
    assert "差异队列" in client.get("/").get_data(as_text=True)  # kept in the session
    alerts = client.get("/alerts").get_data(as_text=True)
    assert "***1234" in alerts and "13800001234" not in alerts


def test_gap_outside_the_working_calendar_says_so(
    db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    seed_world(db)
    evidence = {"expected": 500, "due_date": "2027-02-08", "rule": "no_credit",
                "calendar_covers": False, "calendar_valid": "2025-01-01..2026-12-31"}  # fmt: skip
    with db.transaction() as tx:
        tx.insert("gaps", {"dedupe_key": "M100:MISSING:b9", "merchant_id": "M100",
                           "category": "MISSING", "amount": 500, "currency": "156",
                           "status": "open", "since": "2027-02-08",
                           "evidence": json.dumps(evidence)})  # fmt: skip
    client = as_role("viewer")
    queue = client.get("/gaps").get_data(as_text=True)
    assert "Due date outside the working calendar (2025-01-01..2026-12-31)" in queue
    assert queue.count("outside the working calendar") == 1  # the seeded gap is not marked
    assert "应到账日超出工作日历范围" in client.get("/gaps?lang=zh-CN").get_data(as_text=True)


def _calendar_file(path: Path, valid_to: date) -> Path:
    path.write_text(
        f'[calendar]\nname = "test"\nvalid_from = 2020-01-01\nvalid_to = {valid_to}\n'
        "weekend = [6, 7]\n"
    )
    return path


@pytest.mark.parametrize(("days", "shown"), [(10, True), (-3, True), (200, False)])
def test_overview_warns_before_the_working_calendar_ends(
    web_app: Flask, db: Store, as_role: Callable[[str | None], FlaskClient], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, days: int, shown: bool,
) -> None:  # fmt: skip
    end = datetime.now(UTC).date() + timedelta(days=days)
    monkeypatch.setenv("SETTLEGUARD_CALENDAR", str(_calendar_file(tmp_path / "c.toml", end)))
    page = as_role("viewer").get("/").get_data(as_text=True)
    assert ('id="calendar-warning"' in page) is shown
    if shown:
        assert f"The working calendar ends on {end.isoformat()} (test, {days} days left)" in page


def test_overview_banner_goes_once_the_calendar_file_is_extended(
    web_app: Flask, db: Store, as_role: Callable[[str | None], FlaskClient], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    today = datetime.now(UTC).date()
    path = _calendar_file(tmp_path / "c.toml", today + timedelta(days=5))
    monkeypatch.setenv("SETTLEGUARD_CALENDAR", str(path))
    client = as_role("viewer")
    assert 'id="calendar-warning"' in client.get("/").get_data(as_text=True)
    _calendar_file(path, today + timedelta(days=400))  # the operator adds next year
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert 'id="calendar-warning"' not in client.get("/").get_data(as_text=True)  # no restart


def test_overview_says_when_the_working_calendar_cannot_be_read(
    web_app: Flask, db: Store, as_role: Callable[[str | None], FlaskClient], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    broken = tmp_path / "broken.toml"
    broken.write_text("[calendar\n")
    monkeypatch.setenv("SETTLEGUARD_CALENDAR", str(broken))
    page = as_role("viewer").get("/?lang=zh-CN").get_data(as_text=True)
    assert "无法读取工作日历" in page and "broken.toml: not valid TOML" in page


def test_merchant_pages_scale_by_key(
    db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    with db.transaction() as tx:
        for i in range(120):
            tx.insert(
                "merchants",
                {"merchant_id": f"P{i:04d}", "name": f"shop {i}"},
                returning="merchant_id",
            )
    client = as_role("viewer")
    seen, after = [], ""
    while True:
        html = client.get(f"/merchants?after={after}").get_data(as_text=True)
        seen += [line.split(">")[1].split("<")[0] for line in html.split('href="/merchants/')[1:]]
        if "after=" not in html:
            break
        after = html.split("after=")[1].split('"')[0]
    assert seen == sorted(seen) and len(seen) == 120


def test_csv_export_every_table_without_secrets(
    db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    from settleguard.collector.web.export import TABLES

    seed_world(db)
    client = as_role("admin")
    for name in TABLES:
        response = client.get(f"/export/{name}.csv")
        assert response.status_code == 200 and response.mimetype == "text/csv", name
        text = response.get_data(as_text=True)
        assert "password_hash" not in text and "account_hmac" not in text and "$argon2" not in text
    rows = list(csv.DictReader(io.StringIO(client.get("/export/gaps.csv").get_data(as_text=True))))
    assert rows[0]["amount"] == "123456" and rows[0]["category"] == "MISSING"
    batches = client.get("/export/batches.csv").get_data(as_text=True)
    assert "source" in next(csv.reader(io.StringIO(batches)))  # terminal link or typed slip


def test_api_reads_and_actions_with_a_token(web_app: Flask, db: Store) -> None:
    ids = seed_world(db)
    client = web_app.test_client()
    viewer = {"Authorization": "Bearer " + create_token(db, "viewer", actor="t")}
    operator = {"Authorization": "Bearer " + create_token(db, "operator", actor="t")}
    merchants = client.get("/api/v1/merchants?q=noodle", headers=viewer).get_json()
    assert [m["merchant_id"] for m in merchants["items"]] == ["M100"]
    detail = client.get("/api/v1/merchants/M100", headers=viewer).get_json()
    assert {e["kind"] for e in detail["timeline"]} >= {"gap", "sms"}
    gaps = client.get("/api/v1/gaps", headers=viewer).get_json()["items"]
    assert gaps[0]["evidence"]["expected"] == 123456
    for path in (
        "/api/v1/batches",
        "/api/v1/credits",
        "/api/v1/imports",
        "/api/v1/agents",
        "/api/v1/alerts",
    ):
        assert client.get(path, headers=viewer).status_code == 200, path
    gap_path = f"/api/v1/gaps/{ids['gap_id']}"
    assert client.post(f"{gap_path}/resolve", json={}, headers=operator).status_code == 400
    assert client.post(f"{gap_path}/resend", headers=operator).get_json()["state"] == "queued"
    resolved = client.post(f"{gap_path}/resolve", json={"note": "paid in cash"}, headers=operator)
    assert resolved.get_json()["status"] == "resolved"
    assert client.post(f"{gap_path}/acknowledge", headers=operator).status_code == 409
    assert (
        client.post("/api/v1/agents/ag-1/approve", headers=operator).get_json()["status"]
        == "approved"
    )
    approvals = db.query("SELECT target, detail FROM audit_log WHERE action = 'agent.approved'")
    assert len(approvals) == 1, approvals  # one line per change, with before and after
    change = json.loads(approvals[0]["detail"])
    assert approvals[0]["target"] == "agent:ag-1"
    assert change["before"]["status"] != "approved" and change["after"]["status"] == "approved"
    assert client.get("/api/v1/gaps/424242", headers=viewer).status_code == 404


def test_overview_sums_money_past_the_64_bit_range(
    db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    # gaps stored before ingest refused implausible amounts: three near the 64-bit limit
    amount = 460 * (2**53 - 1)
    with db.transaction() as tx:
        for i in range(3):
            tx.insert("gaps", {"dedupe_key": f"M100:MISSING:huge{i}", "merchant_id": "M100",
                               "category": "MISSING", "amount": amount, "currency": "156",
                               "status": "open"})  # fmt: skip
        tx.insert("gaps", {"dedupe_key": "M100:SHORT_PAID:neg", "merchant_id": "M100",
                           "category": "SHORT_PAID", "amount": -1_500_000_001, "currency": "156",
                           "status": "open"})  # fmt: skip
    client = as_role("viewer")
    response = client.get("/")
    assert response.status_code == 200
    total = 3 * amount - 1_500_000_001
    assert f'id="money-at-risk">¥{total // 100:,}.{total % 100:02d}' in response.get_data(
        as_text=True
    )
    data = overview(db, now=datetime.now(UTC), silent_after_s=3600)
    assert data["money_at_risk"] == total
    assert [(c["category"], c["amount"]) for c in data["by_category"]] == [
        ("MISSING", 3 * amount), ("SHORT_PAID", -1_500_000_001)
    ]  # fmt: skip
    assert sum(day["amount"] for day in data["trend"]) == total


def test_upload_form_names_the_merchant_of_an_export_without_its_account(
    web_app: Flask, db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    from tests.collector.statements import examples

    build_world(db, load_keys(Path(web_app.config["KEYS_DIR"])))
    client = as_role("operator")

    def post(**fields: str) -> tuple[int, str]:
        response = client.post(
            "/imports",
            data={"csrf_token": csrf_token(client), "format": "auto",
                  "file": (io.BytesIO(examples.boc_csv()), "中国银行流水.csv"), **fields},
            content_type="multipart/form-data",
        )  # fmt: skip
        return response.status_code, response.get_data(as_text=True)

    status, html = post()
    assert status == 422 and "does not show its account; name the merchant" in html
    assert db.count("credits") == 0
    status, html = post(account_of=MERCHANT)
    assert status == 200 and "****1234: 2 credits" in html
    assert db.count("credits") == 3
