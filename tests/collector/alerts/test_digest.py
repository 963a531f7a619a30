"""One SMS per merchant per day: each category's own text, the digest, follow-ups, arrivals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from settleguard.collector.alerts.planner import Wording, plan_alerts, preview_gap
from settleguard.collector.alerts.templates import TemplateError
from settleguard.collector.store import Store

from .collector_seed import add_gap, add_merchant, resolve_gap

DAY1 = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai; MISSING due 11-20 is day 1


def texts(store: Store) -> list[str]:
    return [r["text"] for r in store.query("SELECT text FROM alerts ORDER BY id")]


def test_seven_gaps_of_one_merchant_make_one_digest_then_follow_ups(store):
    add_merchant(store, "M0001")
    amounts = [12_000, 350_000, 4_800, 99_000, 7_000, 150_000, 61_000]
    gaps = [add_gap(store, "M0001", amount=a) for a in amounts]
    largest = gaps[1]
    report = plan_alerts(store, DAY1)
    assert len(report.queued) == 1 and report.skipped == {}
    [text] = texts(store)
    assert (
        text
        == f"【结算守护】您有7笔结算款待处理，最大一笔为11月20日交易的¥3,500.00，请致电客服并报参考号SG-{largest}"
    )
    row = store.query_one("SELECT template, params, gap_id FROM alerts")
    assert row["template"] == "DIGEST" and row["gap_id"] == largest
    covered = store.query("SELECT gap_id, stage FROM alert_gaps ORDER BY gap_id")
    assert [(r["gap_id"], r["stage"]) for r in covered] == [(g, "day1") for g in gaps]
    # the rest of the day, and day 2, add nothing; day 3 and day 7 one digest each
    for hours in (1, 8, 24):
        assert plan_alerts(store, DAY1 + timedelta(hours=hours)).queued == []
    assert len(plan_alerts(store, DAY1 + timedelta(days=2)).queued) == 1
    assert len(plan_alerts(store, DAY1 + timedelta(days=6)).queued) == 1
    assert plan_alerts(store, DAY1 + timedelta(days=9)).queued == []
    assert len(texts(store)) == 3


def test_a_lone_gap_gets_its_own_category_text_and_the_digest_counts_all_open(store):
    add_merchant(store)
    old = add_gap(store, "M1", "PAID_TO_OLD_ACCOUNT", 351_633,
                  evidence={"account_in_force": "****0017", "business_date": "2026-11-19"})  # fmt: skip
    plan_alerts(store, DAY1)
    assert texts(store) == [
        f"【结算守护】11月19日交易的结算款¥3,516.33已入原卡尾号0017，新卡仍在审核，请查原卡。参考号SG-{old}"
    ]
    # a new gap two days later: its day 1 and the old gap's day 3 share one digest of both
    new = add_gap(store, "M1", "SHORT_PAID", 638, due="2026-11-21")
    plan_alerts(store, DAY1 + timedelta(days=2))
    assert texts(store)[1].startswith("【结算守护】您有2笔结算款待处理，最大一笔为11月19日")
    stages = store.query("SELECT gap_id, stage FROM alert_gaps WHERE alert_id = 2 ORDER BY gap_id")
    assert [(r["gap_id"], r["stage"]) for r in stages] == [(old, "day3"), (new, "day1")]


def test_category_texts_say_where_the_money_is(store):
    cases = {
        "PAID_TO_OLD_ACCOUNT": ("已入原卡尾号4321", "新卡仍在审核"),
        "SHORT_PAID": ("少到账¥6.38", "手续费"),
        "RETURNED": ("被银行退回(户名不符)", "开户行"),
        "HELD": ("被收单机构暂缓结算", "客服"),
        "CHANGE_PENDING": ("换卡审核中暂缓入账", "无需操作"),
        "MISSING": ("未按时到账", "核查"),
    }
    for index, category in enumerate(cases):
        merchant = f"C{index}"
        add_merchant(store, merchant)
        gap = add_gap(store, merchant, category, 638)
        if category == "RETURNED":
            with store.transaction() as tx:
                tx.execute("UPDATE gaps SET reason = 'account name mismatch' WHERE id = ?", (gap,))
    plan_alerts(store, DAY1 + timedelta(days=1))
    sent = texts(store)
    assert len(sent) == len(cases)
    for text, (category, needles) in zip(sent, cases.items(), strict=True):
        assert all(n in text for n in needles), (category, text)
        assert "尚未到账" not in text and len(text) <= 70


def test_categories_the_merchant_is_not_told_about_send_nothing(store):
    add_merchant(store)
    for category in ("DUPLICATE_CREDIT", "BATCH_NOT_UPLOADED", "AGGREGATED_UNRESOLVED",
                     "STATEMENT_GAP", "NOT_DUE_YET"):  # fmt: skip
        add_gap(store, "M1", category, 0 if category == "BATCH_NOT_UPLOADED" else 5_000)
    assert plan_alerts(store, DAY1 + timedelta(days=10)).queued == []
    assert store.count("alerts") == 0


def test_money_arrived_for_several_gaps_is_one_sms_with_the_total(store):
    add_merchant(store)
    gaps = [add_gap(store, amount=a) for a in (10_000, 25_050)]
    plan_alerts(store, DAY1)
    for gap in gaps:
        resolve_gap(store, gap)
    [arrived] = plan_alerts(store, DAY1 + timedelta(days=1)).queued
    text = store.query_one("SELECT text FROM alerts WHERE id = ?", (arrived,))["text"]
    assert text == f"【结算守护】您此前待处理的2笔结算款已到账，共¥350.50，参考号SG-{gaps[1]}。"
    assert plan_alerts(store, DAY1 + timedelta(days=2)).queued == []


def test_through_a_template_provider_every_merchant_gets_the_chinese_template(store):
    add_merchant(store, "EN", ("+4915112345678",), locale="en")
    add_gap(store, "EN")
    plan_alerts(store, DAY1, wording=Wording(templates_only=True))
    [text] = texts(store)
    assert text.startswith("【结算守护】11月20日交易的结算款") and "SettleGuard" not in text
    assert store.query_one("SELECT locale FROM alerts")["locale"] == "zh-CN"


def test_preview_of_a_category_that_sends_nothing_says_so(store):
    add_merchant(store)
    gap = add_gap(store, "M1", "DUPLICATE_CREDIT")
    with pytest.raises(TemplateError, match="DUPLICATE_CREDIT gaps send the merchant nothing"):
        preview_gap(store, gap, now=DAY1)
