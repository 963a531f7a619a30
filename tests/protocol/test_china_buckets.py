"""China's card buckets in records: names, schemes, the batch source, and older bodies."""

from __future__ import annotations

from typing import Any

import pytest
from settleguard.protocol.buckets import CHINA_BUCKETS, china_bucket, totals_by_china_bucket
from settleguard.protocol.records import (
    BatchSummary,
    Bucket,
    RecordError,
    RecordValueError,
    record_from_body,
)

BASE: dict[str, Any] = {
    "terminal_id": "10060001", "merchant_id": "898310048160001", "batch_no": 123,
    "closed_at": "2026-11-26T13:30:05Z", "terminal_local_time": None, "currency": "156",
    "receipt_start": None, "receipt_end": None, "host_reconciled": None,
}  # fmt: skip


def batch(protocol: str, *buckets: Bucket, source: str = "terminal") -> BatchSummary:
    return BatchSummary(buckets=buckets, protocol=protocol, source=source, **BASE)


@pytest.mark.parametrize(
    ("protocol", "name", "expected"),
    [("zvt", "visa", "foreign"), ("zvt", "other", "other"), ("poslink", "debit", "foreign"),
     ("poslink", "gift", "other"), ("mispos", "wechat", "wechat"), ("zvt", "unknown", "other")],
)  # fmt: skip
def test_protocol_buckets_map_to_china_buckets(protocol: str, name: str, expected: str) -> None:
    assert china_bucket(protocol, name) == expected in CHINA_BUCKETS


def test_mispos_and_slip_use_china_names_only() -> None:
    batch("mispos", Bucket("unionpay_qr", 5, 6480))
    batch("slip", Bucket("ecny", 1, 1), source="slip")
    with pytest.raises(RecordValueError, match=r"buckets\[0\].name"):
        batch("mispos", Bucket("visa", 1, 100))


def test_zvt_keeps_its_scheme_and_schemes_may_share_a_bucket() -> None:
    record = batch("zvt", Bucket("foreign", 1, 100, scheme="visa"),
                   Bucket("foreign", 2, 300, scheme="amex"))  # fmt: skip
    assert totals_by_china_bucket("zvt", record.buckets) == {"foreign": [3, 400, 0, 0, 0, 0]}
    with pytest.raises(RecordValueError, match="scheme"):
        batch("zvt", Bucket("foreign", 1, 100, scheme="unionpay"))
    with pytest.raises(RecordValueError, match="unique"):
        batch("zvt", Bucket("foreign", 1, 100, scheme="visa"),
              Bucket("foreign", 1, 100, scheme="visa"))  # fmt: skip


def test_source_slip_goes_with_protocol_slip() -> None:
    with pytest.raises(RecordValueError, match="source"):
        batch("mispos", Bucket("wechat", 1, 1), source="slip")
    with pytest.raises(RecordValueError, match="source"):
        batch("slip", Bucket("wechat", 1, 1), source="terminal")


def test_an_older_body_without_scheme_or_source_still_reads() -> None:
    body = {**BASE, "protocol": "zvt", "journal": [], "buckets": [
        {"name": "girocard", "sale_count": 1, "sale_amount": 900, "refund_count": 0,
         "refund_amount": 0, "void_count": 0, "void_amount": 0}]}  # fmt: skip
    record = record_from_body("batch_summary", body)
    assert isinstance(record, BatchSummary)
    assert record.source == "terminal" and record.buckets[0].scheme is None
    assert totals_by_china_bucket(record.protocol, record.buckets) == {
        "foreign": [1, 900, 0, 0, 0, 0]
    }


def test_an_older_body_cannot_claim_a_slip_or_omit_other_fields() -> None:
    body = {**BASE, "protocol": "slip", "journal": [], "buckets": []}
    with pytest.raises(RecordError, match="source"):
        record_from_body("batch_summary", body)
    del body["currency"]
    with pytest.raises(RecordError, match="missing field"):
        record_from_body("batch_summary", body)
