"""The dashboard in words: every zh-CN page translated, gaps explained, one card mask, local
times, a page per gap that the SMS reference opens."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from settleguard.collector.enrollment.keys import load_keys
from settleguard.collector.store import Store
from settleguard.collector.web.wording import CATEGORIES, age, local_time, mask_card

from tests.collector.web.conftest import csrf_token, seed_world
from tests.collector.web.scenario import ACCOUNT, build_world

#: Latin words a zh-CN page may show: the product, codes and units readers know as such.
ALLOWED = {"settleguard", "SG", "CSV", "SMS", "EN", "CNY", "UPI", "Asia", "Shanghai", "auto",
           "camt053", "camt054", "mt940", "csv", "payout", "ccb", "icbc", "cmb", "abc", "boc", "ECR", "POS", "API",
           "docs", "md"}  # fmt: skip


class _Text(HTMLParser):
    """Visible text and the attributes people read (placeholder, title, aria-label)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "title", "code"):  # <code>: commands, not wording
            self._skip += 1
        for name, value in attrs:
            if name in ("placeholder", "title", "aria-label") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title", "code") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def untranslated(html: str, data: set[str]) -> set[str]:
    """English words on a page that are neither allowed codes nor data from the database."""
    parser = _Text()
    parser.feed(html)
    text = " ".join(parser.parts)
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    words = set(re.findall(r"[A-Za-z][A-Za-z0-9_'’]+", text))
    # codes such as rule names (old_account_exact) and ids (M777, k1) are not wording
    return {w for w in words if w not in ALLOWED and not re.search(r"[_0-9]", w)}


def _upload(client: FlaskClient, data: bytes) -> None:
    response = client.post(
        "/imports",
        data={"csrf_token": csrf_token(client), "file": (io.BytesIO(data), "bank.csv"),
              "format": "auto", "account": ACCOUNT},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert response.status_code == 200


def _old_card_world(db: Store) -> int:
    """A merchant whose payout went to the old card while the new one is under review."""
    with db.transaction() as tx:
        tx.insert("merchants", {"merchant_id": "M300", "name": "Bao Bar",
                                "timezone": "Asia/Shanghai"}, returning="merchant_id")  # fmt: skip
        tx.insert("settlement_accounts", {"merchant_id": "M300", "account_masked": "6222****0017",
                  "account_hmac": "hmac-old", "status": "active",
                  "effective_at": "2024-01-01T00:00:00Z"})  # fmt: skip
        tx.insert("settlement_accounts", {"merchant_id": "M300",
                  "account_masked": "**************0028", "account_hmac": "hmac-new",
                  "status": "under_review", "requested_at": "2024-05-01T02:00:00Z"})  # fmt: skip
        rid = tx.insert("received_records", {"agent_id": "ag-3", "seq": 1, "key_id": "k",
                        "record_type": "card_change", "created_at": "2024-05-01T02:00:00Z",
                        "source": "test", "payload_sha256": "p3", "envelope": b"x"})  # fmt: skip
        tx.insert("card_changes", {"received_record_id": rid, "change_id": "chg-1",
                  "merchant_id": "M300", "agent_id": "ag-3", "new_account_sealed": "sealed",
                  "new_account_masked": "**************0028", "review_status": "under_review",
                  "requested_at": "2024-05-01T02:00:00Z", "body": "{}"})  # fmt: skip
        return int(tx.insert("gaps", {
            "dedupe_key": "M300:old", "merchant_id": "M300", "category": "PAID_TO_OLD_ACCOUNT",
            "amount": 581862, "currency": "156", "status": "open", "since": "2024-05-03",
            "detected_at": "2024-05-03T01:02:03.456789Z",
            "reason": "paid to the previous settlement account",
            "evidence": json.dumps({"expected": 581862, "seen": 581862,
                                    "account_in_force": "6222****0017", "due_date": "2024-05-03",
                                    "pending_change_id": "chg-1", "credit_ids": [7],
                                    "paid_account_key": "hmac-old", "rule": "old_account_exact"}),
        }))  # fmt: skip


@pytest.fixture
def world(web_app: Flask, db: Store, as_role: Callable[[str | None], FlaskClient]) -> int:
    seed_world(db)
    _upload(as_role("operator"), build_world(db, load_keys(Path(web_app.config["KEYS_DIR"]))))
    return _old_card_world(db)


def _data_values(db: Store) -> set[str]:
    """What the database holds: names, ids, file names, reasons, texts (data, not wording)."""
    values: set[str] = set()
    for table, columns in {
        "merchants": ("merchant_id", "name"), "agents": ("agent_id", "key_id"),
        "imports": ("filename", "error", "actor"), "users": ("username",),
        "gaps": ("reason",), "alerts": ("text", "last_error"),
        "payout_records": ("reason", "reference"), "credits": ("reference",),
        "matches": ("rule", "explanation"), "batch_summaries": ("terminal_id",),
        "settlement_account_history": ("actor", "note"), "audit_log": ("action", "detail", "target"),
    }.items():  # fmt: skip
        for row in db.query(f"SELECT {', '.join(columns)} FROM {table}"):
            values |= {str(v) for v in row.values() if v}
    from settleguard.collector.reconcile import load_calendar

    return values | {load_calendar().name}


PAGES = ["/", "/merchants", "/merchants/M777", "/merchants/M300", "/gaps", "/gaps?status=resolved",
         "/agents", "/imports", "/alerts", "/escalations", "/audit", "/users"]  # fmt: skip


def test_zh_cn_pages_have_no_untranslated_text(
    world: int, db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    client = as_role("admin")
    data = _data_values(db)
    found = {}
    for path in [*PAGES, f"/gaps/{world}"]:
        sep = "&" if "?" in path else "?"
        response = client.get(f"{path}{sep}lang=zh-CN")
        assert response.status_code == 200, path
        words = untranslated(response.get_data(as_text=True), data)
        if words:
            found[path] = sorted(words)
    assert found == {}, json.dumps(found)


def test_zh_cn_sign_in_and_error_pages_are_translated(
    world: int, as_role: Callable[[str | None], FlaskClient]
) -> None:
    login = as_role(None).get("/login?lang=zh-CN").get_data(as_text=True)
    assert untranslated(login, {"English"}) == set()
    missing = as_role("viewer").get("/gaps/999999?lang=zh-CN")
    assert missing.status_code == 404
    assert untranslated(missing.get_data(as_text=True), {"viewer"}) == set()  # the user name
    assert "页面不存在" in missing.get_data(as_text=True)


def test_the_check_finds_english(world: int, as_role: Callable[[str | None], FlaskClient]) -> None:
    english = as_role("admin").get("/gaps?lang=en").get_data(as_text=True)
    assert {"Gap", "queue", "Reference"} <= untranslated(english, set())


def test_paid_to_old_account_names_both_cards(
    world: int, as_role: Callable[[str | None], FlaskClient]
) -> None:
    client = as_role("viewer")
    en = client.get(f"/gaps/{world}?lang=en").get_data(as_text=True)
    assert (
        "¥5,818.62 was paid to ****0017, the old card; the new card ****0028 is under review" in en
    )
    assert "paid_account_key" not in en and "hmac-old" not in en and "credit_ids" not in en
    assert "<dt>Arrived</dt><dd>¥5,818.62</dd>" in en and "<dt>Paid to</dt><dd>****0017</dd>" in en
    assert "**************0028" not in en and "6222****0017" not in en  # one mask rule
    zh = client.get(f"/gaps/{world}?lang=zh-CN").get_data(as_text=True)
    assert "¥5,818.62 已付至原结算卡 ****0017；新卡 ****0028 审核中" in zh
    assert "付至原结算卡" in zh and "PAID_TO_OLD_ACCOUNT" not in zh


def test_the_sms_reference_opens_the_gap(
    world: int, as_role: Callable[[str | None], FlaskClient]
) -> None:
    client = as_role("viewer")
    for query in (f"SG-{world}", f"sg-{world}", str(world)):
        response = client.get(f"/gaps?q={query}")
        assert response.status_code == 302 and response.location.endswith(f"/gaps/{world}")
    assert client.get("/gaps/999999").status_code == 404
    queue = client.get("/gaps").get_data(as_text=True)
    assert f'href="/gaps/{world}" class="ref">SG-{world}</a>' in queue


def test_a_change_under_review_leaves_one_account_in_force(
    world: int, as_role: Callable[[str | None], FlaskClient]
) -> None:
    page = as_role("viewer").get("/merchants/M300?lang=en").get_data(as_text=True)
    statuses = re.findall(r'<td class="account-status">([^<]*)</td>', page)
    assert statuses == ["in force", "under review"]


def test_times_ages_masks_and_categories() -> None:
    assert local_time("2024-05-03T01:02:03.456789Z", "Asia/Shanghai") == "2024-05-03 09:02"
    assert local_time("2024-05-03", "Asia/Shanghai") == "2024-05-03"
    assert mask_card("**************0028") == mask_card("6222 0200 0000 0028") == "****0028"
    from datetime import date

    assert age("2024-05-01", "en", today=date(2024, 5, 4)) == "3 days"
    assert age("2024-05-01T10:00:00Z", "zh-CN", today=date(2024, 5, 4)) == "3 天"
    from settleguard.collector.reconcile.model import GAP_CATEGORIES

    assert set(GAP_CATEGORIES) <= set(CATEGORIES)
    assert all(len(text) == 2 and all(text.values()) for text in CATEGORIES.values())


def test_trend_has_a_money_axis_with_one_day_of_data() -> None:
    from settleguard.collector.web.chart import bars, ticks

    points = [{"day": f"2024-05-{d:02d}", "amount": 0, "gaps": 0} for d in range(1, 31)]
    points[-1] = {"day": "2024-05-30", "amount": 80000, "gaps": 1}
    axis = ticks(points)
    assert [t["value"] for t in axis] == [0, 50000, 100000]  # ¥0, ¥500, ¥1,000
    (bar,) = [b for b in bars(points) if b["h"]]
    assert bar["h"] == round(120 * 80000 / 100000)
