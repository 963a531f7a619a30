"""The template catalog: one SMS each, typed variables, no signature inside, checked at load."""

from __future__ import annotations

import string
from datetime import date
from pathlib import Path

import pytest
from settleguard.collector.alerts.encoding import segment
from settleguard.collector.alerts.policy import AlertPolicy
from settleguard.collector.alerts.templates import (
    ARRIVED,
    DEFAULT_TEMPLATES,
    DIGEST,
    VARIABLE_MAX_CHARS,
    TemplateError,
    check_sign_name,
    default_catalog,
    format_amount,
    format_day,
    load_catalog,
    render,
    signed,
)


def longest_value(kind: str, max_chars: int) -> str:
    """A valid value of *kind* at its full allowed length."""
    return {
        "date": "12月31日",
        "money": format_amount(999_999_999),  # 9,999,999.99
        "number": "9" * max_chars,
        "chinese": "国" * max_chars,
        "others": "SG-" + "9" * (max_chars - 3),
    }[kind]


@pytest.mark.parametrize("name", sorted(default_catalog().templates))
def test_every_zh_template_with_longest_values_and_signature_is_one_sms(name):
    catalog = default_catalog()
    values = {}
    for var in catalog.templates[name].variables:
        spec = catalog.variables[var]
        values[var] = longest_value(spec.type, spec.max_chars)
        assert len(values[var]) == spec.max_chars, var
    text = render(name, values, "zh-CN").text
    sms = signed(text, "签" * catalog.signature_max_chars, "zh-CN")
    assert len(sms) <= 70, sms
    assert segment(sms).part_count == 1 and segment(sms).encoding == "ucs2"


def test_variables_are_typed_short_and_no_template_is_variables_alone():
    catalog = default_catalog()
    assert {DIGEST, ARRIVED} <= set(catalog.templates)
    for var in catalog.variables.values():
        assert var.type and var.meaning and 1 <= var.max_chars <= VARIABLE_MAX_CHARS
        assert len(var.sample) <= var.max_chars
    for template in catalog.templates.values():
        for locale, text in template.texts.items():
            fixed = "".join(lit for lit, *_ in string.Formatter().parse(text))
            assert len(fixed) >= 10, (template.name, locale)
            assert "【" not in text and "结算守护" not in text and "SettleGuard" not in text


def test_each_category_that_tells_the_merchant_something_has_a_template():
    alerting = {c for c, grace in AlertPolicy().grace.items() if grace is not None}
    assert alerting == {
        "PAID_TO_OLD_ACCOUNT", "CHANGE_PENDING", "RETURNED", "HELD", "MISSING", "SHORT_PAID",
    }  # fmt: skip
    assert alerting <= set(default_catalog().templates)
    assert "DUPLICATE_CREDIT" not in default_catalog().templates


def test_values_outside_their_type_never_render():
    good = {"date": "11月26日", "amount": "1,523.00", "card_tail": "0017", "reference": "SG-11"}
    assert "原卡尾号0017" in render("PAID_TO_OLD_ACCOUNT", good).text
    for bad in ({"card_tail": "12345678"}, {"card_tail": "00a7"}, {"amount": "¥1,523.00"},
                {"reference": "SG-" + "1" * 8}, {"date": "2026-11-26"}):  # fmt: skip
        with pytest.raises(TemplateError):
            render("PAID_TO_OLD_ACCOUNT", {**good, **bad})
    with pytest.raises(TemplateError, match="no value for reference"):
        render("PAID_TO_OLD_ACCOUNT", {k: v for k, v in good.items() if k != "reference"})
    with pytest.raises(TemplateError, match="no template"):
        render("DUPLICATE_CREDIT", good)


def test_formats_people_read():
    assert format_amount(152_300) == "1,523.00" and format_amount(638) == "6.38"
    assert format_day(date(2026, 11, 6), "zh-CN") == "11月6日"
    assert format_day(date(2026, 11, 6), "en") == "Nov 6"
    assert signed("x", "结算守护", "zh-CN") == "【结算守护】x"
    with pytest.raises(TemplateError):
        format_amount(-1)
    assert check_sign_name("结算守护") == "结算守护"
    for bad in ("守", "签" * 7, "【结算守护】"):
        with pytest.raises(TemplateError):
            check_sign_name(bad)


def write(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_TEMPLATES.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "templates.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("请查原卡。", "请查原卡，如有疑问请致电您的收单机构客服热线。", "one SMS holds 70"),
        ('"zh-CN" = "{date}交易的结算款¥{amount}已入', '"zh-CN" = "【结算守护】{date}交易的结算款¥{amount}已入',
         "signature never goes inside"),
        ("max_chars = 12", "max_chars = 21", "max_chars must be 1-20"),
        ('type = "money"', 'type = "float"', "type must be one of"),
        ("参考号{reference}\"\nen = \"Your settlement of CNY {amount} for trades on {date} was paid",
         "参考号{ref}\"\nen = \"Your settlement of CNY {amount} for trades on {date} was paid",
         "unknown variable"),
        ('"zh-CN" = "您此前待处理的{count}笔结算款已到账，共¥{amount}，参考号{reference}。"',
         '"zh-CN" = "{count}{amount}{reference}"', "variables alone"),
        ('use_zh = "此前通知的待处理结算款已到账，告知商户笔数与合计金额"\n', "", "Chinese \\(use_zh\\)"),
    ],
)  # fmt: skip
def test_a_catalog_that_breaks_a_rule_is_refused_at_load(tmp_path, old, new, message):
    with pytest.raises(TemplateError, match=message):
        load_catalog(write(tmp_path, old, new))
