"""Reconcile one merchant (or a stream of merchants): expected credits, matches, gaps.

Theory of operation (docs/architecture.md §5 Reconciliation): the inputs are normalised first (exact
duplicates dropped, everything sorted by its natural key) so that the same facts in any order
give the same result; then expected credits are computed (:mod:`.expected`), credits are matched
rule by rule (:mod:`.matching`), and what is left is explained (:mod:`.gaps`).

Invariant, checked by the property tests: for every batch with a positive expected amount, the
amount is covered by exactly one match (``covered`` plus any ``SHORT_PAID`` gap of that match
add up to ``expected``) or by exactly one gap of a batch category for its whole amount. Credits
that no batch explains end up in a ``DUPLICATE_CREDIT`` gap, in the evidence of an
``AGGREGATED_UNRESOLVED`` gap, or in ``credit_notes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from operator import attrgetter, itemgetter, lt
from typing import Any
from zoneinfo import ZoneInfo

from settleguard.collector.reconcile.calendar import WorkingCalendar, load_calendar
from settleguard.collector.reconcile.expected import ExpectedBuilder
from settleguard.collector.reconcile.fast import fast_match
from settleguard.collector.reconcile.gaps import (
    batch_number_gaps,
    build_context,
    classify_open,
    credit_leftovers,
    judge_pairings,
)
from settleguard.collector.reconcile.hand import hand_credits, hand_pairings, split_credits
from settleguard.collector.reconcile.matching import Pairing, match_credits
from settleguard.collector.reconcile.model import (
    AccountChange,
    Batch,
    Credit,
    CreditNote,
    MerchantInputs,
    MerchantResult,
    ReconcileConfig,
    ReconcileInputError,
)
from settleguard.collector.reconcile.payers import is_acquirer_payer

_batch_key = attrgetter("key")
_match_order = attrgetter("batch_keys", "credit_ids")
_change_id = attrgetter("change_id")
_credit_id = attrgetter("credit_id")
_gap_order = attrgetter("category", "batch_keys", "credit_ids")
_note_order = itemgetter(0, 3)  # CreditNote is a NamedTuple: (credit_id, kind)


def _batch_order(batch: Batch) -> tuple[Any, ...]:
    return (batch.key, batch.net_amount, batch.currency, batch.buckets, batch.reference or "")


def _credit_order(credit: Credit) -> tuple[Any, ...]:
    return (
        credit.credit_id,
        credit.account_key,
        credit.amount,
        credit.booking_date,
        credit.reference,
        credit.remittance,
        credit.status,
        credit.reversal,
    )


#: The identity of a payout record is all of it that matters (an attrgetter: built in C).
_payout_order = attrgetter("settlement_date", "reference", "status", "net", "batch_refs", "reason")


def _change_order(change: AccountChange) -> tuple[Any, ...]:
    return (change.requested_at, change.change_id, change.status, change.account_key)


def _unique_by(items: Sequence[Any], order: Any, identity: Any) -> list[Any]:
    """Sort ``items`` by identity and keep one per identity (the first by ``order``).

    Exact copies collapse; conflicting copies with one identity (which the store should have
    refused) resolve the same way whatever the input order.
    """
    if len(items) < 2:  # nothing to sort or collapse (the usual history, payouts)
        return list(items)
    ids = list(map(identity, items))
    if all(map(lt, ids, ids[1:])):  # already sorted, no two alike (the usual case); all in C
        return list(items)
    ordered = sorted(items, key=identity)
    kept: list[Any] = []
    for item in ordered:
        if kept and identity(kept[-1]) == identity(item):
            if order(item) < order(kept[-1]):
                kept[-1] = item
            continue
        kept.append(item)
    return kept


def reconcile_merchant(
    inputs: MerchantInputs,
    *,
    now: datetime,
    calendar: WorkingCalendar | None = None,
    config: ReconcileConfig | None = None,
    fast: bool = True,
) -> MerchantResult:
    """Reconcile one merchant's batches against its credits.

    :param inputs: the merchant and its batches, account history, credits, payouts, coverage
    :param now: an aware datetime; "due" is judged against its date in the merchant's timezone
    :param calendar: working-day calendar (default: :func:`load_calendar`)
    :param config: limits and tolerances (default: :class:`ReconcileConfig`)
    :param fast: try the one-pass matcher (:mod:`.fast`) first; False always runs the general
        one (the result is the same either way; the tests compare them)
    :raises ReconcileInputError: a batch of another merchant, or a naive ``now``
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ReconcileInputError("reconcile_merchant: now is a naive datetime")
    config = config or ReconcileConfig()
    calendar = calendar or load_calendar()
    merchant = inputs.merchant
    mid = merchant.merchant_id
    for batch in inputs.batches:
        if batch.merchant_id != mid:
            raise ReconcileInputError(
                f"batch {batch.key}: merchant {batch.merchant_id!r} given with merchant {mid!r}"
            )
    batches = _unique_by(inputs.batches, _batch_order, _batch_key)
    history = _unique_by(inputs.account_history, _change_order, _change_id)
    credits = _unique_by(inputs.credits, _credit_order, _credit_id)
    payouts = _unique_by(inputs.payouts, _payout_order, _payout_order)

    builder = ExpectedBuilder(merchant, history, calendar, config)
    expected = [builder.build(b) for b in batches]
    by_key = {e.batch_key: e for e in expected}
    hand: list[Pairing] = []
    if inputs.splits:
        credits = split_credits(credits, inputs.splits)
    if inputs.hand_matches:
        hand, expected_open, credits = hand_pairings(inputs.hand_matches, by_key, credits)
    else:
        expected_open = expected

    usable: list[Credit] = []
    others: list[Credit] = []
    notes: list[CreditNote] = []
    payers = merchant.payers
    for credit in credits:
        if credit.status != "booked":
            notes.append(CreditNote(credit.credit_id, credit.account_key, credit.amount, "pending"))
        elif credit.reversal or credit.amount <= 0:
            notes.append(
                CreditNote(credit.credit_id, credit.account_key, credit.amount, "reversal")
            )
        elif (
            payers
            and (credit.payer_name or credit.payer_account)
            and not is_acquirer_payer(credit.payer_name, credit.payer_account, payers)
        ):
            # Only the acquirer pays out: a friend's transfer of the same amount is no payout.
            others.append(credit)
            notes.append(
                CreditNote(credit.credit_id, credit.account_key, credit.amount, "not_from_acquirer")
            )
        else:
            usable.append(credit)
    outcome = fast_match(expected_open, usable, payouts, config) if fast else None
    if outcome is None:
        outcome = match_credits(expected_open, usable, payouts, config)
    if hand:
        outcome.pairings[:0] = hand
    matches, gaps, judged_notes = judge_pairings(outcome.pairings, by_key, mid, config)
    notes.extend(judged_notes)

    leftovers: list[Credit] = list(outcome.open_credits.values())
    if leftovers or outcome.duplicates:
        credit_by_id = {c.credit_id: c for c in usable}
        credit_by_id.update(hand_credits(hand, inputs.credits, inputs.splits))
        dupe_gaps, leftovers = credit_leftovers(
            leftovers, outcome.pairings, credit_by_id, outcome.duplicates, mid
        )
        gaps.extend(dupe_gaps)
    explained: set[str] = set()
    if outcome.open_batches:
        today = now.astimezone(ZoneInfo(merchant.timezone)).date()
        ctx = build_context(
            mid, today, config, payouts, inputs.coverage, leftovers, calendar, others
        )
        for exp in outcome.open_batches.values():
            gap = classify_open(exp, ctx)
            explained.update(gap.credit_ids)
            gaps.append(gap)
    notes.extend(
        CreditNote(c.credit_id, c.account_key, c.amount, "unexplained")
        for c in leftovers
        if c.credit_id not in explained
    )
    gaps.extend(batch_number_gaps(batches, inputs.replacements, mid, merchant.timezone, config))
    return MerchantResult(
        merchant_id=mid,
        expected=tuple(expected),
        matches=_sorted_tuple(matches, _match_order),
        gaps=_sorted_tuple(gaps, _gap_order),
        credit_notes=_sorted_tuple(notes, _note_order),
    )


def _sorted_tuple(items: list[Any], key: Any) -> tuple[Any, ...]:
    if len(items) > 1:
        items.sort(key=key)
    return tuple(items)


def reconcile_all(
    merchants: Iterable[MerchantInputs],
    *,
    now: datetime,
    calendar: WorkingCalendar | None = None,
    config: ReconcileConfig | None = None,
    fast: bool = True,
) -> Iterator[MerchantResult]:
    """Reconcile merchants one after another, yielding each result as soon as it is ready.

    The calendar is loaded once and shared, so its memoised lookups serve every merchant.
    """
    calendar = calendar or load_calendar()
    config = config or ReconcileConfig()
    for inputs in merchants:
        yield reconcile_merchant(inputs, now=now, calendar=calendar, config=config, fast=fast)
