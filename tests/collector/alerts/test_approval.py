"""The approval sheet in each provider's variable syntax, and the approved codes file."""

from __future__ import annotations

import csv
import io
import re

import pytest
from settleguard.collector.alerts.approval import (
    approval_sheet,
    load_codes,
    missing_codes,
    provider_text,
    sheet_csv,
)
from settleguard.collector.alerts.planner import sendable_templates
from settleguard.collector.alerts.policy import AlertPolicy
from settleguard.collector.alerts.templates import TemplateError, default_catalog


def test_aliyun_sheet_names_variables_and_tencent_numbers_them_in_order():
    catalog = default_catalog()
    aliyun = provider_text(catalog, "PAID_TO_OLD_ACCOUNT", "aliyun")
    tencent = provider_text(catalog, "PAID_TO_OLD_ACCOUNT", "tencent")
    assert aliyun == (
        "${date}交易的结算款¥${amount}已入原卡尾号${card_tail}，新卡仍在审核，请查原卡。参考号${reference}"
    )
    assert tencent == "{1}交易的结算款¥{2}已入原卡尾号{3}，新卡仍在审核，请查原卡。参考号{4}"
    for name, template in catalog.templates.items():
        numbered = [
            int(n) for n in re.findall(r"\{(\d+)\}", provider_text(catalog, name, "tencent"))
        ]
        assert sorted(set(numbered)) == list(range(1, len(template.variables) + 1))


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_sheet_rows_and_csv_parse_back(provider):
    rows = approval_sheet(provider)
    assert {r["template"] for r in rows} == set(default_catalog().templates)
    for row in rows:
        assert row["type"] == "通知短信" and row["text"] and row["use_case_en"]
        assert "商户" in str(row["use_case"])  # the reviewer reads Chinese
        for var in row["variables"]:
            assert var["sample"] and var["type"] and var["max_chars"] <= 20
    parsed = list(csv.DictReader(io.StringIO(sheet_csv(rows))))
    assert [p["template"] for p in parsed] == [r["template"] for r in rows]
    digest = next(p for p in parsed if p["template"] == "DIGEST")
    assert "count:数字:7" in digest["variables"] and digest["type"] == "通知短信"


def test_codes_file_is_checked_per_provider(tmp_path):
    path = tmp_path / "codes.toml"
    path.write_text('[aliyun]\nMISSING = "SMS_123"\n[tencent]\nMISSING = "1234567"\n', "utf-8")
    assert load_codes(path, "aliyun") == {"MISSING": "SMS_123"}
    assert load_codes(path, "tencent") == {"MISSING": "1234567"}
    for bad, message in (
        ('[aliyun]\nMISSING = "1234"\n', "not a aliyun template code"),
        ('[tencent]\nMISSING = "SMS_1"\n', "not a tencent template code"),
        ('[aliyun]\nNO_SUCH = "SMS_1"\n', "names no template"),
        ("[aliyun\n", "codes.toml"),
    ):
        path.write_text(bad, "utf-8")
        provider = "tencent" if "tencent" in bad else "aliyun"
        with pytest.raises(TemplateError, match=message):
            load_codes(path, provider)


def test_missing_codes_names_what_the_policy_can_send():
    needed = sendable_templates(AlertPolicy())
    assert needed == {"PAID_TO_OLD_ACCOUNT", "CHANGE_PENDING", "RETURNED", "HELD", "MISSING",
                      "SHORT_PAID", "DIGEST", "ARRIVED"}  # fmt: skip
    codes = {name: f"SMS_{i}" for i, name in enumerate(sorted(needed)) if name != "HELD"}
    assert missing_codes(codes, needed) == ["HELD"]
