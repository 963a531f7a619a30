"""Turning POSLink totals (R01, B01) into the protocol-neutral :class:`TerminalTotals`.

POSLink breaks totals out by EDC group (credit, debit, EBT, gift, loyalty, cash, check), not
by card brand, so those are the bucket names. It carries no receipt range and no currency;
B01 carries the terminal id, merchant id and the host's batch number. No public source shows
a balanced/unbalanced flag, so ``host_reconciled`` stays ``None``.
"""

from __future__ import annotations

from ..totals import BucketTotal, TerminalTotals
from .messages import BatchCloseResponse, EdcTotal, LocalTotalReportResponse


def _buckets(totals: tuple[EdcTotal, ...]) -> tuple[BucketTotal, ...]:
    return tuple(
        BucketTotal(t.edc, t.count, t.amount, t.refund_count, t.refund_amount) for t in totals
    )


def _terminal_time(stamp: str) -> str | None:
    if len(stamp) != 14:
        return None
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[8:10]}:{stamp[10:12]}:{stamp[12:14]}"


def totals_from_report(response: LocalTotalReportResponse) -> TerminalTotals:
    """R01 → ``TerminalTotals(kind="turnover_totals")``."""
    return TerminalTotals(
        protocol="poslink",
        kind="turnover_totals",
        terminal_id=None,
        currency=None,
        buckets=_buckets(response.totals),
    )


def totals_from_batch_close(response: BatchCloseResponse) -> TerminalTotals:
    """B01 → ``TerminalTotals(kind="end_of_day")``; the batch number comes from the host group."""
    batch = response.host.batch_number
    return TerminalTotals(
        protocol="poslink",
        kind="end_of_day",
        terminal_id=response.terminal_id or None,
        currency=None,
        buckets=_buckets(response.totals),
        batch_no=int(batch) if batch.isascii() and batch.isdigit() else None,
        terminal_time=_terminal_time(response.timestamp),
        host_reconciled=None,
    )
