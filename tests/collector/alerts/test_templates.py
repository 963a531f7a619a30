from __future__ import annotations

from datetime import date

import pytest

from collector.alerts.encoding import segment
from collector.alerts.templates import (
    DEFAULT_TEMPLATES,
    GAP_CATEGORIES,
    GapInfo,
    TemplateError,
    format_amount,
    load_catalog,
    preview,
    render,
)

GAP = GapInfo("G1", "PAID_TO_OLD_ACCOUNT", 123456, date(2026, 11, 2), "1234", "SG-7F3K2Q")


def test_amount_formatting_in_minor_units():
    assert format_amount(123456, "zh-CN") == "¥1,234.56"
    assert format_amount(123456, "en") == "CNY 1,234.56"
    assert format_amount(5, "zh-CN") == "¥0.05"
    assert format_amount(-100, "en") == "CNY -1.00"


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("category", GAP_CATEGORIES)
def test_every_category_renders_within_three_parts(locale, category):
    gap = GapInfo("G1", category, 99_999_999_999, date(2026, 12, 31), "9876", "SG-ABCDEFGHI")
    text = render(gap, locale)
    assert "9876" in text and "SG-ABCDEFGHI" in text and "2026-12-31" in text
    assert segment(text).part_count <= 3


def test_zh_is_default_and_en_is_gsm7():
    assert "¥1,234.56" in render(GAP) and "尾号1234" in render(GAP)
    assert preview(GAP, "en")["encoding"] == "gsm7"
    assert "has arrived" in render(GAP, "en", "arrived")


@pytest.mark.parametrize("tail", ["12345", "6222021234567890", "123", "12a4"])
def test_card_tail_must_be_last_four_only(tail):
    with pytest.raises(TemplateError, match="last 4"):
        render(GapInfo("G1", "MISSING", 1, date(2026, 1, 1), tail, "SG-1"))


def test_bad_reference_and_category_refused():
    with pytest.raises(TemplateError, match="reference"):
        render(GapInfo("G1", "MISSING", 1, date(2026, 1, 1), "1234", "6222021234567890123"))
    with pytest.raises(TemplateError, match="category"):
        render(GapInfo("G1", "NOPE", 1, date(2026, 1, 1), "1234", "SG-1"))


def override(tmp_path, old: str, new: str):
    path = tmp_path / "templates.toml"
    path.write_text(DEFAULT_TEMPLATES.read_text(encoding="utf-8").replace(old, new, 1), "utf-8")
    return path


def test_user_override_is_used(tmp_path):
    catalog = load_catalog(override(tmp_path, "【结算守护】您{date}", "【某银行】您{date}"))
    assert render(GAP, catalog=catalog).startswith("【某银行】")


def test_template_that_can_exceed_max_parts_refused_at_load(tmp_path):
    path = override(tmp_path, "尚未到账。", "尚未到账。" + "请注意" * 40)
    with pytest.raises(TemplateError, match=r"\[zh-CN\]\.gap .* 4 SMS parts.*max_parts is 3"):
        load_catalog(path)


def test_template_errors_say_where(tmp_path):
    with pytest.raises(TemplateError, match="unknown variable"):
        load_catalog(override(tmp_path, "尾号{card_tail}）尚未", "尾号{card_number}）尚未"))
    bad = tmp_path / "bad.toml"
    bad.write_text("max_parts = 3\n[en\n", "utf-8")
    with pytest.raises(TemplateError, match="line 2"):
        load_catalog(bad)
