"""A one-pass matcher for the common merchant; it gives up rather than guess.

Theory of operation (docs/reconciliation.md "Fast path"): most merchants on most days are
simple -- every credit names exactly one batch by reference, or pays exactly one batch's amount
-- and for them the five matching rules of :mod:`collector.reconcile.matching` reduce to a
single pass. :func:`fast_match` runs rules 1 (``reference``) and 2 (``one_to_one``) in that
pass and returns the same :class:`~collector.reconcile.matching.MatchOutcome` that
:func:`~collector.reconcile.matching.match_credits` returns, or ``None`` ("not simple") as soon
as it meets a situation whose general handling it does not replicate. The engine then runs the
general matcher, so ``None`` is always safe.

Why an outcome returned here equals the general one:

* Rule 1 visits credits in the same order (booking date, credit id), looks their tokens up in
  the same index (:func:`~collector.reconcile.matching.reference_index`, shared code) and, like
  the general rule, skips tokens the index does not know. At the first known token it requires
  exactly one batch, still open; the general rule then pairs the credit with that batch when
  the credit's account is a candidate of the batch, and otherwise moves on to the next token
  -- both done here the same way. A token naming several batches or a batch already taken (an
  aggregated reference, a duplicate credit) returns ``None``.
* Rule 2 is run only when every open credit has a distinct (account, currency, amount): then
  the general rule's candidate list for a batch holds at most one credit, and it takes it when
  it is still open and inside the window -- the "nearest credit" ranking never has a choice to
  make. Batches are visited in the same (due date, batch key) order.
* Rules 3 to 5 only run while open credits *and* open batches remain; in that case this
  returns ``None``. Otherwise they would have done nothing, so the outcome is complete.
  ``subset_nodes`` stays 0, as in the general matcher when rule 4 does not run.

``tests/collector/reconcile/test_fast_match.py`` checks this claim on random merchants,
near misses included (a cent off, a pending change, a duplicate, a holiday, the cut-off edge).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from operator import attrgetter

from settleguard.collector.reconcile.matching import (
    MatchOutcome,
    Pairing,
    credit_tokens,
    reference_index,
)
from settleguard.collector.reconcile.model import (
    Credit,
    ExpectedCredit,
    PayoutRecord,
    ReconcileConfig,
)

_new_pairing = partial(tuple.__new__, Pairing)
_credit_date_order = attrgetter("booking_date", "credit_id")
_due_order = attrgetter("due_date", "batch_key")


def fast_match(
    expected: Sequence[ExpectedCredit],
    credits: Sequence[Credit],
    payouts: Sequence[PayoutRecord],
    config: ReconcileConfig,
) -> MatchOutcome | None:
    """Rules 1 and 2 in one pass, or ``None`` when the general matcher is needed.

    Same parameters as :func:`~collector.reconcile.matching.match_credits`.
    """
    open_batches = {e.batch_key: e for e in expected if e.amount > 0}
    open_credits = {c.credit_id: c for c in credits}
    out = MatchOutcome(open_batches=open_batches, open_credits=open_credits)
    if not credits or not open_batches:
        return out  # the general matcher runs no rule either
    pairings = out.pairings
    ordered = credits if len(credits) == 1 else sorted(credits, key=_credit_date_order)

    # -- rule 1: reference ------------------------------------------------------------
    wanted = []
    for credit in ordered:
        if credit.reference or credit.remittance:
            tokens = credit_tokens(credit)
            if tokens:
                wanted.append((credit, tokens))
    if wanted:
        index = reference_index(open_batches.values(), payouts)
        for credit, tokens in wanted:
            for token in tokens:
                keys = index.get(token)
                if not keys:
                    continue
                key = keys[0]
                if len(keys) > 1 and any(k != key for k in keys):
                    return None  # one reference for several batches
                exp = open_batches.get(key)
                if exp is None:
                    return None  # a duplicate credit
                account = credit.account_key
                if account in exp.candidate_accounts:
                    del open_batches[key]
                    del open_credits[credit.credit_id]
                    pairings.append(
                        _new_pairing(
                            (
                                "reference",
                                (key,),
                                (credit.credit_id,),
                                exp.amount,
                                credit.amount,
                                account,
                            )
                        )
                    )
                    break
        if not (open_credits and open_batches):
            return out

    # -- rule 2: one credit = one batch, every amount unambiguous -----------------------
    by_amount: dict[tuple[str, str, int], Credit] = {}
    for credit in open_credits.values():
        slot = (credit.account_key, credit.currency, credit.amount)
        if slot in by_amount:
            return None  # two candidates: the general rule ranks them
        by_amount[slot] = credit
    before = timedelta(days=config.window_before_days)
    after = timedelta(days=config.window_after_days)
    exps = list(open_batches.values())
    if len(exps) > 1:
        exps.sort(key=_due_order)
    for exp in exps:
        if exp.fallback_due is not None:
            return None  # a same-day cycle's window reaches its T+1 fallback day
        amount, currency, due = exp.amount, exp.currency, exp.due_date
        for account in exp.candidate_accounts:
            only = by_amount.get((account, currency, amount))
            if only is None:
                continue
            if only.credit_id in open_credits and due - before <= only.booking_date <= due + after:
                key = exp.batch_key
                del open_batches[key]
                del open_credits[only.credit_id]
                pairings.append(
                    _new_pairing(
                        ("one_to_one", (key,), (only.credit_id,), amount, only.amount, account)
                    )
                )
                break
    if open_credits and open_batches:
        return None  # rules 3 to 5 would run
    return out
