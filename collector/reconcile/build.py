"""Fast construction of the reconciliation engine's input objects from stored rows.

Theory of operation: the engine's input types (:mod:`collector.reconcile.model`) are frozen,
slotted dataclasses that validate in ``__post_init__``. The store adapter
(:mod:`collector.reconcile.store`) builds about four of them per batch, and their constructors were
most of its load time. The builders here fill the slots directly for rows that are valid by
construction, and fall back to the plain constructors whenever the model's shape differs from
the one they were written for. ``tests/collector/reconcile/test_recon_store_fast.py`` proves both ways
build equal objects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from settleguard.collector.reconcile import (
    AccountChange,
    Batch,
    Bucket,
    Credit,
    PayoutRecord,
    batch_key,
)

__all__ = [
    "new_account_change",
    "new_batch",
    "new_bucket",
    "new_credit",
    "new_payout",
]

# -- building the engine's objects ----------------------------------------------------------
#
# The engine's input types are frozen, slotted dataclasses that validate in ``__post_init__``
# (aware datetimes, derived keys). Their constructors set every field through
# ``object.__setattr__``; for the few objects per batch the loader builds that was most of its
# time (figures: docs/decisions/0006-hot-path-figures.md). Rows
# we turn into objects are valid by construction (``_closed`` makes every datetime aware, every
# amount goes through ``int``), so the builders below fill the slots directly and derive
# ``Batch.key`` with the model's own :func:`batch_key`. They are used only while the model has
# exactly the shape they were written for; otherwise the plain constructors are used.
# ``tests/collector/reconcile/test_recon_store.py`` proves both build equal objects.


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Any, ...] | None:
    """The slot descriptors' setters of ``cls``, or ``None`` if it has another shape."""
    if (
        not dataclasses.is_dataclass(cls)
        or tuple(f.name for f in dataclasses.fields(cls)) != names
        or "__slots__" not in cls.__dict__
        or not cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    ):
        return None
    return tuple(getattr(cls, name).__set__ for name in names)


def _key(tid: str, no: int, closed: datetime, text: str) -> str:
    """:func:`batch_key`, straight from the stored text when it is canonical UTC.

    Ingest stores ``closed_at`` as ``YYYY-MM-DDTHH:MM:SSZ``; dropping its ``-`` and ``:`` gives
    exactly the time part of :func:`batch_key` (``20250303T130000Z``) without a time-zone
    conversion and six formatted fields per batch. Any other spelling goes the long way.
    """
    if (
        len(text) == 20
        and text[4] == text[7] == "-"
        and text[10] == "T"
        and text[13] == text[16] == ":"
        and text[19] == "Z"
    ):
        return f"{tid}#{no}@{text.replace('-', '').replace(':', '')}"
    return batch_key(tid, no, closed)


def _batch_builder() -> Callable[..., Batch]:
    names = (
        "merchant_id",
        "terminal_id",
        "batch_no",
        "closed_at",
        "currency",
        "buckets",
        "net_amount",
        "reference",
        "key",
    )
    setters = _slot_setters(Batch, names)
    if setters is None:
        return lambda mid, tid, no, closed, cur, buckets, net, _text="": Batch(
            mid, tid, no, closed, cur, buckets, net
        )
    s_mid, s_tid, s_no, s_closed, s_cur, s_buckets, s_net, s_ref, s_key = setters
    new = object.__new__

    def build(
        mid: str,
        tid: str,
        no: int,
        closed: datetime,
        currency: str,
        buckets: tuple[Bucket, ...],
        net: int,
        closed_text: str = "",
    ) -> Batch:
        batch = new(Batch)
        s_mid(batch, mid)
        s_tid(batch, tid)
        s_no(batch, no)
        s_closed(batch, closed)
        s_cur(batch, currency)
        s_buckets(batch, buckets)
        s_net(batch, net)
        s_ref(batch, None)
        s_key(batch, _key(tid, no, closed, closed_text))
        return batch

    return build


def _bucket_builder() -> Callable[..., Bucket]:
    names = (
        "card_type",
        "sale_amount",
        "refund_amount",
        "void_amount",
        "sale_count",
        "refund_count",
        "void_count",
        "sales",
    )
    setters = _slot_setters(Bucket, names)
    if setters is None:
        return Bucket
    s_type, s_sale, s_refund, s_void, n_sale, n_refund, n_void, s_sales = setters
    new = object.__new__

    def build(
        card_type: str, sale: int, refund: int, void: int, sales: int, refunds: int, voids: int
    ) -> Bucket:
        bucket = new(Bucket)
        s_type(bucket, card_type)
        s_sale(bucket, sale)
        s_refund(bucket, refund)
        s_void(bucket, void)
        n_sale(bucket, sales)
        n_refund(bucket, refunds)
        n_void(bucket, voids)
        s_sales(bucket, ())
        return bucket

    return build


def _credit_builder() -> Callable[..., Credit]:
    names = (
        "credit_id",
        "account_key",
        "account_masked",
        "booking_date",
        "value_date",
        "amount",
        "currency",
        "reference",
        "remittance",
        "status",
        "reversal",
        "import_id",
        "payer_name",
        "payer_account",
    )
    setters = _slot_setters(Credit, names)
    if setters is None:
        return Credit
    (
        s_id,
        s_key,
        s_masked,
        s_booked,
        s_value,
        s_amount,
        s_cur,
        s_ref,
        s_rem,
        s_status,
        s_rev,
        s_imp,
        s_payer,
        s_payer_account,
    ) = setters
    new = object.__new__

    def build(
        credit_id: str,
        key: str,
        masked: str,
        booked: date,
        value: date | None,
        amount: int,
        currency: str,
        reference: str,
        remittance: str,
        status: str,
        reversal: bool,
        payer_name: str = "",
        payer_account: str = "",
    ) -> Credit:
        credit = new(Credit)
        s_id(credit, credit_id)
        s_key(credit, key)
        s_masked(credit, masked)
        s_booked(credit, booked)
        s_value(credit, value)
        s_amount(credit, amount)
        s_cur(credit, currency)
        s_ref(credit, reference)
        s_rem(credit, remittance)
        s_status(credit, status)
        s_rev(credit, reversal)
        s_imp(credit, "")
        s_payer(credit, payer_name)
        s_payer_account(credit, payer_account)
        return credit

    return build


def _payout_builder() -> Callable[..., PayoutRecord]:
    names = (
        "merchant_id",
        "settlement_date",
        "gross",
        "fees",
        "net",
        "target_account_masked",
        "status",
        "reason",
        "reference",
        "batch_refs",
    )
    setters = _slot_setters(PayoutRecord, names)
    if setters is None:
        return PayoutRecord
    s_mid, s_day, s_gross, s_fees, s_net, s_masked, s_status, s_reason, s_ref, s_refs = setters
    new = object.__new__

    def build(
        mid: str,
        day: date,
        gross: int,
        fees: int,
        net: int,
        masked: str,
        status: str,
        reason: str,
        reference: str,
        refs: tuple[str, ...],
    ) -> PayoutRecord:
        payout = new(PayoutRecord)
        s_mid(payout, mid)
        s_day(payout, day)
        s_gross(payout, gross)
        s_fees(payout, fees)
        s_net(payout, net)
        s_masked(payout, masked)
        s_status(payout, status)
        s_reason(payout, reason)
        s_ref(payout, reference)
        s_refs(payout, refs)
        return payout

    return build


def _account_change_builder() -> Callable[..., AccountChange]:
    """AccountChange from the loader: every datetime aware, ``effective_at`` set when active.

    The loader makes them so (``_dt`` gives aware datetimes; an active or retired account
    without ``effective_at`` takes ``requested_at``); anything else goes to the constructor,
    which raises what it raises.
    """
    names = (
        "requested_at",
        "change_id",
        "merchant_id",
        "account_key",
        "account_masked",
        "status",
        "effective_at",
        "status_changed_at",
    )
    setters = _slot_setters(AccountChange, names)
    if setters is None:
        return AccountChange
    s_req, s_id, s_mid, s_key, s_masked, s_status, s_eff, s_changed = setters
    new = object.__new__

    def aware(value: datetime | None) -> bool:
        return value is None or (value.tzinfo is not None and value.utcoffset() is not None)

    def build(
        requested_at: datetime,
        change_id: str,
        merchant_id: str,
        account_key: str,
        account_masked: str,
        status: Any,
        effective_at: datetime | None,
        status_changed_at: datetime | None,
    ) -> AccountChange:
        if not (
            requested_at is not None
            and aware(requested_at)
            and aware(effective_at)
            and aware(status_changed_at)
            and (effective_at is not None or status not in ("active", "retired"))
        ):
            return AccountChange(
                requested_at,
                change_id,
                merchant_id,
                account_key,
                account_masked,
                status,
                effective_at,
                status_changed_at,
            )
        change = new(AccountChange)
        s_req(change, requested_at)
        s_id(change, change_id)
        s_mid(change, merchant_id)
        s_key(change, account_key)
        s_masked(change, account_masked)
        s_status(change, status)
        s_eff(change, effective_at)
        s_changed(change, status_changed_at)
        return change

    return build


new_batch = _batch_builder()
new_bucket = _bucket_builder()
new_credit = _credit_builder()
new_payout = _payout_builder()
new_account_change = _account_change_builder()
