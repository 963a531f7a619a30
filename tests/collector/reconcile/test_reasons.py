"""Why money bounces or waits: bank and acquirer texts mapped to a small set of reasons."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from settleguard.collector.reconcile import (
    Batch,
    Bucket,
    MerchantInputs,
    PayoutRecord,
    StatementCoverage,
    reconcile_merchant,
)
from settleguard.collector.reconcile.reasons import hold_reason, is_same_day_fallback, return_reason

from .builders import CALENDAR, MID, OLD, active, local, merchant


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("户名不符", "name_mismatch"),
        ("收款人户名与账号不一致", "name_mismatch"),
        ("账户名称不符，退回", "name_mismatch"),
        ("Account name mismatch", "name_mismatch"),
        ("账户已冻结", "frozen_or_dormant"),
        ("久悬户", "frozen_or_dormant"),
        ("账户止付", "frozen_or_dormant"),
        ("账户已销户", "closed"),
        ("账户不存在", "closed"),
        ("II类账户超过限额", "type2_limit"),
        ("二类户日累计入账超限", "type2_limit"),
        ("系统繁忙", "other"),
        ("", "other"),
    ],
)
def test_return_reason(text: str, reason: str) -> None:
    assert return_reason(text) == reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("风控审核中", "risk_review"),
        ("交易调单，请提供签购单", "retrieval_request"),
        ("暂停结算", "other"),
    ],
)
def test_hold_reason(text: str, reason: str) -> None:
    assert hold_reason(text) == reason


def test_same_day_fallback_texts() -> None:
    assert is_same_day_fallback("D0额度不足")
    assert is_same_day_fallback("超出D0额度，转T+1结算")
    assert not is_same_day_fallback("户名不符")


def _with_payout(status: str, reason: str) -> MerchantInputs:
    closed = local(2025, 3, 12, 20)
    batch = Batch(MID, "T1", 3, closed, "CNY", (Bucket("UPI", 50_000, sale_count=2),), 50_000, "B3")
    payout = PayoutRecord(
        MID, date(2025, 3, 13), 50_000, 300, 49_700, "1111", status, reason, "LKL-9981", ("B3",)
    )  # type: ignore[arg-type]
    day = date(2025, 3, 13)
    return MerchantInputs(
        merchant(),
        (active("a", OLD, local(2024, 12, 1)),),
        (batch,),
        payouts=(payout,),
        coverage=(StatementCoverage(OLD, day - timedelta(days=9), day + timedelta(days=9)),),
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("户名不符", "name_mismatch"),
        ("账户冻结", "frozen_or_dormant"),
        ("已销户", "closed"),
        ("二类户限额", "type2_limit"),
        ("其他", "other"),
    ],
)
def test_returned_gap_carries_its_reason(text: str, reason: str) -> None:
    result = reconcile_merchant(
        _with_payout("returned", text), now=local(2025, 3, 20), calendar=CALENDAR
    )
    (gap,) = result.gaps
    assert gap.category == "RETURNED"
    assert gap.evidence["return_reason"] == reason
    assert gap.reason == text
    assert gap.evidence["acquirer_reference"] == "LKL-9981"


@pytest.mark.parametrize(
    ("text", "reason"), [("风控审核", "risk_review"), ("调单", "retrieval_request")]
)
def test_held_gap_carries_kind_and_reference(text: str, reason: str) -> None:
    result = reconcile_merchant(
        _with_payout("held", text), now=local(2025, 3, 20), calendar=CALENDAR
    )
    (gap,) = result.gaps
    assert gap.category == "HELD"
    assert gap.evidence["hold_reason"] == reason
    assert gap.evidence["acquirer_reference"] == "LKL-9981"


def test_payout_without_reason_text() -> None:
    inputs = _with_payout("held", "")
    record = inputs.payouts[0]
    bare = MerchantInputs(
        inputs.merchant,
        inputs.account_history,
        inputs.batches,
        payouts=(PayoutRecord(*[getattr(record, f) for f in ("merchant_id", "settlement_date",
                 "gross", "fees", "net", "target_account_masked", "status")], None,  # type: ignore[arg-type]
                 record.reference, record.batch_refs),),
        coverage=inputs.coverage,
    )  # fmt: skip
    (gap,) = reconcile_merchant(bare, now=local(2025, 3, 20), calendar=CALENDAR).gaps
    assert (gap.category, gap.evidence["hold_reason"]) == ("HELD", "other")
