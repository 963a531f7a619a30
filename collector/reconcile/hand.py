"""Operators' decisions the rules must respect: hand matches and credit splits.

Theory of operation (docs/reconciliation.md "Matching by hand"): a split replaces one credit by
its parts (``<credit_id>/1``, ``/2``, …, same account and date) before anything else, so rules
and hand matches see only the parts. Each hand match then takes its batches and credits out of
what the rules see and becomes a ``manual`` pairing, judged like any other (a credit short of
the fee interval still leaves a ``SHORT_PAID`` gap). Hand matches are applied in id order; one
naming a batch or credit an earlier one took, or naming nothing that exists, is skipped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from settleguard.collector.reconcile.matching import Pairing
from settleguard.collector.reconcile.model import (
    Credit,
    CreditSplit,
    ExpectedCredit,
    HandMatch,
    split_part_id,
)


def split_credits(credits: Sequence[Credit], splits: Iterable[CreditSplit]) -> list[Credit]:
    """``credits`` with each split credit replaced by its parts (a split not adding up is ignored)."""
    by_id = {s.credit_id: s for s in splits}
    out: list[Credit] = []
    for credit in credits:
        split = by_id.get(credit.credit_id)
        if split is None or sum(split.amounts) != credit.amount:
            out.append(credit)
            continue
        out.extend(
            dataclasses.replace(credit, credit_id=split_part_id(credit.credit_id, n), amount=a)
            for n, a in enumerate(split.amounts, 1)
        )
    return out


def hand_pairings(
    hand_matches: Iterable[HandMatch],
    expected: dict[str, ExpectedCredit],
    credits: Sequence[Credit],
) -> tuple[list[Pairing], list[ExpectedCredit], list[Credit]]:
    """Pairings of the hand matches, and the expected credits and credits left for the rules."""
    credit_by_id = {c.credit_id: c for c in credits}
    taken_batches: set[str] = set()
    taken_credits: set[str] = set()
    pairings: list[Pairing] = []
    for hand in sorted(hand_matches):
        keys = tuple(sorted(k for k in set(hand.batch_keys) if k in expected))
        ids = tuple(sorted(c for c in set(hand.credit_ids) if c in credit_by_id))
        if not keys or not ids or taken_batches.intersection(keys):
            continue
        if taken_credits.intersection(ids):
            continue
        taken_batches.update(keys)
        taken_credits.update(ids)
        pairings.append(
            Pairing(
                "manual",
                keys,
                ids,
                sum(expected[k].amount for k in keys),
                sum(credit_by_id[c].amount for c in ids),
                credit_by_id[ids[0]].account_key,
            )
        )
    rest_expected = [e for k, e in expected.items() if k not in taken_batches]
    rest_credits = [c for c in credits if c.credit_id not in taken_credits]
    return pairings, rest_expected, rest_credits


def hand_credits(
    pairings: Sequence[Pairing], credits: Sequence[Credit], splits: Sequence[CreditSplit]
) -> dict[str, Credit]:
    """The credits hand pairings took, by id (for the duplicate check of leftover credits)."""
    if not pairings:
        return {}
    wanted = {c for p in pairings for c in p.credit_ids}
    return {c.credit_id: c for c in split_credits(credits, splits) if c.credit_id in wanted}
