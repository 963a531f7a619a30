"""How the dashboard puts codes, times, cards and gaps into words, in English and zh-CN.

Codes (``PAID_TO_OLD_ACCOUNT``, ``under_review``) stay in the API and CSV exports; pages show
the names and one-line meanings below. Card numbers are shown by one rule, the last four
digits (``****0017``); times in the merchant's timezone to the minute.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from settleguard.collector.money import format_money
from settleguard.collector.store import Store

#: The merchants' timezone when a merchant names none.
DEFAULT_TIMEZONE = "Asia/Shanghai"

# code → {lang: (name, one-line meaning)}
CATEGORIES: dict[str, dict[str, tuple[str, str]]] = {
    "NOT_DUE_YET": {
        "en": ("Not due yet", "The payout is not due yet; nothing to do."),
        "zh-CN": ("未到期", "结算款尚未到应到账日，无需处理。"),
    },
    "PAID_TO_OLD_ACCOUNT": {
        "en": (
            "Paid to the old card",
            "The money went to the previous settlement card because "
            "the card change was not in force yet.",
        ),
        "zh-CN": ("付至原结算卡", "结算卡变更尚未生效，款项付到了原结算卡。"),
    },
    "CHANGE_PENDING": {
        "en": (
            "Card change under review",
            "A settlement-card change is under review and nothing arrived on either card.",
        ),
        "zh-CN": ("结算卡变更审核中", "结算卡变更正在审核，新旧卡均未收到款项。"),
    },
    "RETURNED": {
        "en": ("Returned by the bank", "The acquirer paid, the bank sent the money back."),
        "zh-CN": ("银行退回", "收单机构已付款，但被银行退回。"),
    },
    "HELD": {
        "en": ("Held by the acquirer", "The acquirer holds the settlement (risk review)."),
        "zh-CN": ("收单机构暂缓", "收单机构暂缓结算（风险审核）。"),
    },
    "MISSING": {
        "en": ("Missing", "Due, not held or returned, and no credit on any statement."),
        "zh-CN": ("未到账", "已到期，未被暂缓或退回，对账单上也没有入账。"),
    },
    "SHORT_PAID": {
        "en": ("Short paid", "A credit arrived but less than expected (fees differ)."),
        "zh-CN": ("少付", "已入账，但金额低于应到金额（手续费不符）。"),
    },
    "AGGREGATED_UNRESOLVED": {
        "en": (
            "Combined credit unresolved",
            "A credit seems to pay several batches together, but no combination adds up.",
        ),
        "zh-CN": ("合并到账未核清", "一笔入账似乎合并了多个批次，但无法对上金额组合。"),
    },
    "DUPLICATE_CREDIT": {
        "en": ("Paid twice", "A second credit for batches already paid."),
        "zh-CN": ("重复入账", "已结算的批次又收到一笔入账。"),
    },
    "BATCH_NOT_UPLOADED": {
        "en": ("Batch not uploaded", "A terminal's batch never reached us; the amount is unknown."),
        "zh-CN": ("批次未上传", "终端有批次未上传，金额未知。"),
    },
    "STATEMENT_GAP": {
        "en": (
            "Statement missing",
            "No statement covers the due date, or the balances do not chain.",
        ),
        "zh-CN": ("对账单缺失", "没有覆盖应到账日的对账单，或余额不连续。"),
    },
}

STATUSES: dict[str, str] = {
    # gaps
    "open": "未处理",
    "acknowledged": "已确认",
    "resolved": "已解决",
    # settlement accounts and card changes
    "requested": "已申请",
    "under_review": "审核中",
    "active": "生效中",
    "rejected": "已驳回",
    "retired": "已停用",
    "approved": "已批准",
    "pending": "待批准",
    "revoked": "已吊销",
    # imports, alerts, credits
    "ok": "成功",
    "imported": "已导入",
    "duplicate": "重复",
    "queued": "排队中",
    "sending": "发送中",
    "sent": "已发送",
    "delivered": "已送达",
    "failed": "失败",
    "expired": "已过期",
    "cancelled": "已取消",
    "booked": "已记账",
    "paid": "已付款",
    "held": "暂缓",
    "returned": "已退回",
    "matched": "已匹配",
    "superseded": "已被取代",
    "unknown": "未知",
    "done": "完成",
    "disabled": "已停用",
    "escalated": "已升级",
    # user roles
    "viewer": "只读",
    "operator": "操作员",
    "admin": "管理员",
}

STATUSES_EN = {"under_review": "under review"}

_DIGITS_TAIL = re.compile(r"(\d{4})\D*$")


def category_name(code: str, lang: str) -> str:
    """The category's name in ``lang`` (the code itself for a category this table lacks)."""
    return CATEGORIES.get(code, {}).get(lang, (code, ""))[0]


def category_meaning(code: str, lang: str) -> str:
    """One line that says what the category means."""
    return CATEGORIES.get(code, {}).get(lang, ("", ""))[1]


def status_name(code: str | None, lang: str) -> str:
    """A status code in words (``under_review`` → 审核中 / under review)."""
    if not code:
        return ""
    if lang == "zh-CN":
        return STATUSES.get(code, code)
    return STATUSES_EN.get(code, code)


def mask_card(text: str | None) -> str:
    """Any masked or full card/account text as ``****`` and its last four digits."""
    if not text:
        return "-"
    match = _DIGITS_TAIL.search(str(text))
    return f"****{match.group(1)}" if match else "****"


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def local_time(value: Any, timezone: str | None = None) -> str:
    """An ISO time (UTC or with an offset) as ``YYYY-MM-DD HH:MM`` in ``timezone``.

    A bare date stays a date; text that is not a time is returned as it is.
    """
    if value is None or value == "":
        return ""
    text = str(value)
    if len(text) == 10:
        return text
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(_zone(timezone)).strftime("%Y-%m-%d %H:%M")


def age(since: Any, lang: str, today: date | None = None) -> str:
    """How long ago ``since`` (a date or time) was, in whole days (``3 days`` / ``3 天``)."""
    if not since:
        return ""
    try:
        day = date.fromisoformat(str(since)[:10])
    except ValueError:
        return str(since)
    days = ((today or datetime.now(UTC).date()) - day).days
    if lang == "zh-CN":
        return "今天" if days <= 0 else f"{days} 天"
    return "today" if days <= 0 else ("1 day" if days == 1 else f"{days} days")


def _lookup_cards(store: Store, gap: dict[str, Any]) -> dict[str, Any]:
    """The card the money went to, and the change under review, for ``gap``'s evidence."""
    ev = gap.get("evidence") or {}
    found: dict[str, Any] = {}
    if ev.get("paid_account_key"):
        row = store.query_one(
            "SELECT account_masked FROM settlement_accounts WHERE account_hmac = ?"
            " AND merchant_id = ?",
            (ev["paid_account_key"], gap["merchant_id"]),
        )
        found["paid_to"] = mask_card(row["account_masked"]) if row else None
    if ev.get("pending_change_id"):
        row = store.query_one(
            "SELECT new_account_masked, review_status FROM card_changes WHERE change_id = ?",
            (ev["pending_change_id"],),
        )
        if row:
            found["new_card"] = mask_card(row["new_account_masked"])
            found["review"] = row["review_status"] or "under_review"
    return found


LABELS = {
    "expected": ("Expected", "应到金额"),
    "arrived": ("Arrived", "实到金额"),
    "paid_to": ("Paid to", "付至"),
    "account": ("Account in force", "生效结算卡"),
    "new_card": ("New card", "新卡"),
    "due": ("Due date", "应到账日"),
    "business_date": ("Business day", "交易日"),
    "fees": ("Fees", "手续费"),
    "credit": ("Credit", "入账记录"),
    "rule": ("Rule", "判定规则"),
    "reason": ("Reason", "原因"),
    "missing_batches": ("Missing batch numbers", "缺失批次号"),
    "fees_interval": ("Fees between (charged per sale)", "手续费区间（按笔收取）"),
    "return_reason": ("Returned because", "退票原因"),
    "hold_reason": ("Held for", "暂缓原因"),
    "acquirer_reference": ("Acquirer reference", "收单机构参考号"),
    "fallback_due": ("Same-day limit: may be paid on", "当日额度不足，可能于此日到账"),
    "not_from_acquirer": ("Not from the acquirer", "非收单机构付款"),
    "batch_source": ("Batch figures from", "批次数据来源"),
}

#: Words for the codes the evidence carries (return and hold reasons, batch sources).
CODE_WORDS = {
    "name_mismatch": ("holder name does not match the merchant", "户名不符"),
    "frozen_or_dormant": ("account frozen or dormant", "账户冻结或久悬"),
    "closed": ("account closed", "账户已销户"),
    "type2_limit": ("Type II account limit exceeded", "二类户限额"),
    "risk_review": ("risk review", "风控审核"),
    "retrieval_request": ("retrieval request", "调单"),
    "other": ("other reason", "其他原因"),
    "slip": ("typed settlement slip", "手工录入结算单"),
    "terminal": ("terminal link", "终端联动读取"),
}


def _code_word(code: str, lang: str) -> str:
    en, zh = CODE_WORDS.get(code, (code, code))
    return zh if lang == "zh-CN" else en


def _label(key: str, lang: str) -> str:
    en, zh = LABELS[key]
    return zh if lang == "zh-CN" else en


def gap_facts(store: Store, gap: dict[str, Any], lang: str) -> list[tuple[str, str]]:
    """The gap's evidence as labelled facts (never raw keys or hashes)."""
    ev = gap.get("evidence") or {}
    cards = _lookup_cards(store, gap)
    currency = gap.get("currency")
    facts: list[tuple[str, str]] = []

    def add(key: str, value: Any) -> None:
        if value not in (None, "", []):
            facts.append((_label(key, lang), str(value)))

    if isinstance(ev.get("expected"), int):
        add("expected", format_money(ev["expected"], currency))
    if isinstance(ev.get("seen"), int):
        add("arrived", format_money(ev["seen"], currency))
    elif ev.get("credit_amounts"):
        add("arrived", ", ".join(format_money(a, currency) for a in ev["credit_amounts"]))
    add("paid_to", cards.get("paid_to"))
    if ev.get("account_in_force"):
        add("account", mask_card(ev["account_in_force"]))
    if cards.get("new_card"):
        add("new_card", f"{cards['new_card']} ({status_name(cards.get('review'), lang)})")
    add("due", ev.get("due_date") or gap.get("due_at"))
    add("business_date", ev.get("business_date"))
    if isinstance(ev.get("fees"), int) and ev["fees"]:
        add("fees", format_money(ev["fees"], currency))
    credits = ev.get("credit_ids") or gap.get("credit_ids") or []
    if credits:
        add("credit", ", ".join(f"#{c}" for c in credits))
    add("reason", ev.get("reason"))
    if ev.get("missing_batch_nos"):
        add("missing_batches", ", ".join(str(n) for n in ev["missing_batch_nos"]))
    interval = ev.get("fees_interval")
    if isinstance(interval, list) and len(interval) == 2 and interval[0] != interval[1]:
        add("fees_interval", " – ".join(format_money(v, currency) for v in interval))
    for key in ("return_reason", "hold_reason"):
        if ev.get(key):
            add(key, _code_word(ev[key], lang))
    add("acquirer_reference", ev.get("acquirer_reference"))
    add("fallback_due", ev.get("fallback_due"))
    for other in ev.get("not_from_acquirer") or []:
        paid = format_money(other.get("amount"), currency)
        add(
            "not_from_acquirer",
            f"{paid} {other.get('booking_date', '')} {other.get('payer_name', '')}".strip(),
        )
    sources = gap.get("batch_sources") or []
    if sources:
        add("batch_source", ", ".join(_code_word(s, lang) for s in sources))
    add("rule", ev.get("rule"))
    return facts


def gap_story(store: Store, gap: dict[str, Any], lang: str) -> str:
    """One sentence that explains the gap, naming amounts and cards."""
    ev = gap.get("evidence") or {}
    cards = _lookup_cards(store, gap)
    currency = gap.get("currency")
    zh = lang == "zh-CN"
    amount = format_money(gap.get("amount"), currency)
    due = ev.get("due_date") or gap.get("due_at") or ""
    category = gap.get("category", "")
    if category == "PAID_TO_OLD_ACCOUNT":
        paid = cards.get("paid_to") or mask_card(ev.get("account_in_force"))
        new = cards.get("new_card") or "-"
        review = status_name(cards.get("review") or "under_review", lang)
        if zh:
            return (
                f"{amount} 已付至原结算卡 {paid}；新卡 {new} {review}，商户在新卡上看不到这笔款。"
            )
        return (
            f"{amount} was paid to {paid}, the old card; the new card {new} is {review}, "
            "so the merchant, watching the new card, sees nothing."
        )
    if category == "CHANGE_PENDING":
        new = cards.get("new_card") or "-"
        if zh:
            return f"{amount} 应于 {due} 到账；新卡 {new} 审核中，新旧卡均未收到。"
        return f"{amount} was due on {due}; the new card {new} is under review and neither card received it."
    if category == "MISSING":
        card = mask_card(ev.get("account_in_force"))
        if zh:
            return f"{amount} 应于 {due} 付至 {card}，至今未到账。"
        return f"{amount} was due on {due} to {card} and has not arrived."
    if category == "SHORT_PAID" and isinstance(ev.get("seen"), int):
        seen = format_money(ev["seen"], currency)
        expected = format_money(ev.get("expected"), currency)
        short = format_money(int(ev.get("expected") or 0) - ev["seen"], currency)
        if zh:
            return f"应到 {expected}，实到 {seen}，少付 {short}。"
        return f"{seen} arrived instead of {expected}: {short} short."
    return category_meaning(category, lang)


def register(app: Any) -> None:
    """Make the wording above available to the templates (language from the request)."""
    from flask import current_app
    from settleguard.collector.web.db import get_db
    from settleguard.collector.web.i18n import current_lang

    def merchant_zone() -> str | None:
        return current_app.config.get("DASHBOARD_TIMEZONE")

    app.jinja_env.filters["local_time"] = lambda v, tz=None: local_time(v, tz or merchant_zone())
    app.jinja_env.filters["card"] = mask_card
    app.jinja_env.globals.update(
        category_name=lambda code: category_name(code, current_lang()),
        category_meaning=lambda code: category_meaning(code, current_lang()),
        status_name=lambda code: status_name(code, current_lang()),
        age=lambda since: age(since, current_lang()),
        gap_story=lambda gap: gap_story(get_db(), gap, current_lang()),
        gap_facts=lambda gap: gap_facts(get_db(), gap, current_lang()),
    )
