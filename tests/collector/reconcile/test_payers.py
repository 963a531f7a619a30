"""Only the acquirer pays out: payer names and accounts, masked forms included."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from settleguard.collector.reconcile import (
    Batch,
    Bucket,
    Credit,
    FeeRule,
    FeeSchedule,
    Merchant,
    MerchantInputs,
    StatementCoverage,
    reconcile_merchant,
)
from settleguard.collector.reconcile.payers import is_acquirer_payer, payer_matches

from .builders import CALENDAR, MID, OLD, active, local

LAKALA = ("拉卡拉支付股份有限公司", "110060149018800012345")


@pytest.mark.parametrize(
    ("shown", "known", "same"),
    [
        ("拉卡拉支付股份有限公司", "拉卡拉支付股份有限公司", True),
        ("拉***付股份有限公司", "拉卡拉支付股份有限公司", True),  # CCB's mask
        ("拉*支付股份有限公司", "拉卡拉支付股份有限公司", True),
        ("拉卡拉支付股份有限公司", "拉*付股份有限公司", True),  # the configured side masked
        ("拉*拉支付股份有限公司", "拉卡拉支付股份有限公司", True),
        ("*卡拉支付股份有限公司", "拉卡拉支付股份有限公司", True),
        ("拉卡拉 支付股份有限公司", "拉卡拉支付股份有限公司", True),  # spaces do not matter
        ("拉卡拉支付（北京）有限公司", "拉卡拉支付(北京)有限公司", True),  # full-width brackets
        ("拉*付股份有限公司", "拉付股份有限公司", False),  # a run stands for one or more
        ("张*", "拉卡拉支付股份有限公司", False),
        ("张三", "拉卡拉支付股份有限公司", False),
        ("1100****2345", "110060149018800012345", True),
        ("1100****9999", "110060149018800012345", False),
        ("", "拉卡拉支付股份有限公司", False),
        ("***", "", False),
    ],
)
def test_payer_matches(shown: str, known: str, same: bool) -> None:
    assert payer_matches(shown, known) is same


def test_is_acquirer_payer_by_name_or_account_or_unknown() -> None:
    assert is_acquirer_payer("拉***付股份有限公司", "", LAKALA) is True
    assert is_acquirer_payer("", "1100****2345", LAKALA) is True
    assert is_acquirer_payer("张三", "6222****1234", LAKALA) is False
    assert is_acquirer_payer("", "", LAKALA) is None


def _inputs(*credits: Credit) -> MerchantInputs:
    schedule = FeeSchedule(rules=(), default=FeeRule("*", 0))
    m = Merchant(
        MID, "面馆", "T+1", time(23), "Asia/Shanghai", schedule, acquirer="lakala", payers=LAKALA
    )
    batch = Batch(
        MID, "T1", 1, local(2025, 3, 12, 20), "CNY", (Bucket("wechat", 152_300, sale_count=4),),
        152_300,
    )  # fmt: skip
    day = date(2025, 3, 13)
    return MerchantInputs(
        m,
        (active("a", OLD, local(2024, 12, 1)),),
        (batch,),
        credits=credits,
        coverage=(StatementCoverage(OLD, day - timedelta(days=9), day + timedelta(days=9)),),
    )


def _credit(cid: str, payer: str) -> Credit:
    day = date(2025, 3, 13)
    return Credit(cid, OLD, "1111", day, day, 152_300, "CNY", payer_name=payer)


def test_same_amount_transfer_from_a_friend_is_no_payout() -> None:
    result = reconcile_merchant(
        _inputs(_credit("friend", "张三")), now=local(2025, 3, 20), calendar=CALENDAR
    )
    assert result.matches == ()
    (gap,) = result.gaps
    assert gap.category == "MISSING"
    (other,) = gap.evidence["not_from_acquirer"]
    assert (other["credit_id"], other["why"]) == ("friend", "not from the acquirer")
    assert [(n.credit_id, n.kind) for n in result.credit_notes] == [("friend", "not_from_acquirer")]


def test_masked_acquirer_name_pays_and_the_friend_is_left_aside() -> None:
    result = reconcile_merchant(
        _inputs(_credit("friend", "张三"), _credit("lkl", "拉***付股份有限公司")),
        now=local(2025, 3, 20),
        calendar=CALENDAR,
    )
    assert [m.credit_ids for m in result.matches] == [("lkl",)]
    assert result.gaps == ()


def test_credit_without_payer_still_counts() -> None:
    result = reconcile_merchant(
        _inputs(_credit("c", "")), now=local(2025, 3, 20), calendar=CALENDAR
    )
    assert [m.credit_ids for m in result.matches] == [("c",)]


def test_account_and_name_in_one_cell() -> None:
    names = ("银联商务股份有限公司",)
    assert is_acquirer_payer("3105****9876/银联商务股份有限公司", "", names) is True
    assert is_acquirer_payer("6222****1234/张小红", "", names) is False
