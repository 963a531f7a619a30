"""Turn what a terminal reported (:class:`protocol.totals.TerminalTotals`) into signed records.

The terminal does not always say who it is (a POSLink R01 may carry no TID) nor which merchant
it belongs to; the agent's configuration fills those in. ``closed_at`` is the agent's UTC clock;
the terminal's own local time travels beside it so a skewed clock on either side is visible.
"""

from __future__ import annotations

from settleguard.protocol.buckets import CHINA_BUCKETS, china_bucket
from settleguard.protocol.records import BatchSummary, Bucket, TurnoverReading
from settleguard.protocol.totals import TerminalTotals


def buckets_of(totals: TerminalTotals) -> tuple[Bucket, ...]:
    """Map protocol buckets to record buckets (a bucket's count/amount are its sales).

    Every bucket is named by its China bucket; a protocol's own name (ZVT ``visa``, POSLink
    ``credit``) stays beside it as ``scheme``.
    """
    return tuple(
        Bucket(
            name=china_bucket(totals.protocol, b.name),
            scheme=None if b.name in CHINA_BUCKETS else b.name,
            sale_count=b.count,
            sale_amount=b.amount,
            refund_count=b.refund_count,
            refund_amount=b.refund_amount,
            void_count=b.void_count,
            void_amount=b.void_amount,
        )
        for b in totals.buckets
    )


def batch_summary(
    totals: TerminalTotals,
    *,
    closed_at: str,
    terminal_id: str | None,
    merchant_id: str | None,
    batch_no: int | None = None,
) -> BatchSummary:
    """The record for a closed batch.

    :param closed_at: the agent's UTC time of the close (RFC 3339, ``Z``)
    :param terminal_id: fallback when the terminal did not report its TID
    :param merchant_id: the merchant this terminal is bound to
    :param batch_no: fallback batch number when the protocol does not report one
    :raises agent.errors.UsageError: no terminal id or batch number is known
    """
    from settleguard.agent.errors import UsageError

    tid = totals.terminal_id or terminal_id
    merchant_id = merchant_id or totals.merchant_id
    number = totals.batch_no if totals.batch_no is not None else batch_no
    if not tid:
        raise UsageError("the terminal did not report its terminal id: pass --terminal-id")
    if number is None:
        raise UsageError("the terminal did not report a batch number: pass --batch-no")
    return BatchSummary(
        terminal_id=tid,
        merchant_id=merchant_id,
        batch_no=number,
        closed_at=closed_at,
        terminal_local_time=totals.terminal_time,
        currency=totals.currency,
        buckets=buckets_of(totals),
        receipt_start=totals.receipt_start,
        receipt_end=totals.receipt_end,
        host_reconciled=totals.host_reconciled,
        protocol=totals.protocol,
        source="slip" if totals.protocol == "slip" else "terminal",
    )


def turnover_reading(
    totals: TerminalTotals, *, read_at: str, terminal_id: str | None, merchant_id: str | None
) -> TurnoverReading:
    """The record for a totals reading that left the batch open."""
    return TurnoverReading(
        terminal_id=totals.terminal_id or terminal_id,
        merchant_id=merchant_id,
        read_at=read_at,
        terminal_local_time=totals.terminal_time,
        currency=totals.currency,
        buckets=buckets_of(totals),
        receipt_start=totals.receipt_start,
        receipt_end=totals.receipt_end,
        protocol=totals.protocol,
        batch_no=totals.batch_no,
    )
