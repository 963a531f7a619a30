"""Sample records for the agent tests (no pytest import: the kill worker uses it too)."""

from __future__ import annotations

from settleguard.protocol.records import Bucket, TurnoverReading


def sample_record(n: int = 0) -> TurnoverReading:
    """A small valid non-batch record (a totals reading); ``n`` makes each one distinct."""
    return TurnoverReading(
        terminal_id="T0000001",
        merchant_id="m-100",
        read_at="2026-03-01T10:00:00Z",
        terminal_local_time="2026-03-01T11:00:00",
        currency="978",
        buckets=(Bucket("visa", sale_count=1, sale_amount=100 + n),),
        receipt_start=1,
        receipt_end=1,
        protocol="zvt",
    )
