"""Reconciliation domain logic: plain functions over plain frozen dataclasses, no database.

The store adapter loads :class:`MerchantInputs`, calls :func:`reconcile_merchant` (or
:func:`reconcile_all`) and saves the :class:`MerchantResult`. See ``docs/reconciliation.md``.
"""

from settleguard.collector.reconcile.calendar import (
    CalendarError,
    WorkingCalendar,
    add_working_days,
    load_calendar,
    next_working_day,
)
from settleguard.collector.reconcile.engine import reconcile_all, reconcile_merchant
from settleguard.collector.reconcile.expected import (
    account_in_force,
    expected_credits,
    pending_change,
)
from settleguard.collector.reconcile.model import (
    AccountChange,
    Batch,
    Bucket,
    Credit,
    CreditNote,
    CreditSplit,
    ExpectedCredit,
    FeeRule,
    FeeSchedule,
    Gap,
    HandMatch,
    Match,
    Merchant,
    MerchantInputs,
    MerchantResult,
    PayoutRecord,
    ReconcileConfig,
    ReconcileInputError,
    StatementCoverage,
    TerminalReplacement,
    batch_key,
    split_part_id,
)

__all__ = [
    "AccountChange",
    "Batch",
    "Bucket",
    "CalendarError",
    "Credit",
    "CreditNote",
    "CreditSplit",
    "ExpectedCredit",
    "FeeRule",
    "FeeSchedule",
    "Gap",
    "HandMatch",
    "Match",
    "Merchant",
    "MerchantInputs",
    "MerchantResult",
    "PayoutRecord",
    "ReconcileConfig",
    "ReconcileInputError",
    "StatementCoverage",
    "TerminalReplacement",
    "WorkingCalendar",
    "account_in_force",
    "add_working_days",
    "batch_key",
    "expected_credits",
    "load_calendar",
    "next_working_day",
    "pending_change",
    "reconcile_all",
    "reconcile_merchant",
    "split_part_id",
]
