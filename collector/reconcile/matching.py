"""Matching credits to expected credits, rule by rule, for one merchant.

Theory of operation (docs/architecture.md §5 Reconciliation; docs/reconciliation.md "Matching"): the rules
run in a fixed order and each one only sees what the earlier ones left open.

1. ``reference`` - a credit whose reference or remittance text contains, as a whole token, a
   batch reference or an acquirer payout reference takes exactly those batches. A second credit
   naming batches already taken is a duplicate.
2. ``one_to_one`` - a credit of exactly one batch's amount on one of its candidate accounts,
   booked inside the date window around the due date (nearest date wins).
3. ``aggregated`` - a credit of exactly the sum of all open batches due the same day (合并到账).
   Then ``per_sale`` - several credits of one account booked on one day (the due day or the T+1
   fallback day) that together pay one batch or the day's batches within the fee interval: a
   秒到 (S0) merchant is paid each sale on its own.
4. ``subset_sum`` - for each remaining credit, the K nearest open batches by due date (K = 12 by
   default) are searched for a subset summing exactly to it, within a node budget.
5. ``tolerance`` - the remaining credits against one batch or one due-day group whose amount
   differs by at most ``tolerance_per_batch`` per batch (fee rounding) or lies inside the fee
   interval (another split of the bucket into sales); failing that, a credit up to
   ``max_fee_variance_bp`` *below* that amount (a fee variance: SHORT_PAID later).

A batch's candidate accounts are the account in force at payout time, the account of a pending
change, and the account a recent switch replaced; which one the money landed on is decided
later in :mod:`collector.reconcile.gaps`. Everything is iterated in sorted order, so the
outcome does not depend on input order.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from operator import attrgetter
from typing import NamedTuple

from settleguard.collector.reconcile.model import (
    Credit,
    ExpectedCredit,
    MatchRule,
    PayoutRecord,
    ReconcileConfig,
)
from settleguard.collector.reconcile.subset_sum import bounded_subset_sum

_TOKEN = re.compile(r"[0-9A-Za-z]+(?:[-_/#.][0-9A-Za-z]+)*")
MIN_REFERENCE_LENGTH = 6


class Pairing(NamedTuple):
    """Batches tied to credits by one rule, before it is judged a match or a gap."""

    rule: MatchRule
    batch_keys: tuple[str, ...]
    credit_ids: tuple[str, ...]
    expected: int
    actual: int
    account_key: str


#: A Pairing from a complete tuple of its fields, skipping the generated ``__new__``.
_new_pairing = partial(tuple.__new__, Pairing)


@dataclass(slots=True)
class MatchOutcome:
    """What matching decided; ``open_batches`` and ``open_credits`` are what it could not."""

    pairings: list[Pairing] = field(default_factory=list)
    duplicates: list[tuple[Credit, tuple[str, ...]]] = field(default_factory=list)
    open_batches: dict[str, ExpectedCredit] = field(default_factory=dict)
    open_credits: dict[str, Credit] = field(default_factory=dict)
    subset_nodes: int = 0


def reference_tokens(text: str) -> tuple[str, ...]:
    """Whole tokens of ``text`` that may be references (upper-cased, >= 6 characters).

    A token such as ``PO-2025-0001`` is also looked up by its parts. An ASCII letters-and-digits
    text is one token without the regex; other texts are memoised (remittance texts repeat a
    lot: "结算款").
    """
    if text.isascii() and text.isalnum():  # exactly one token, with no parts: no regex
        # (payout and credit references are mostly unique: caching them only churned the cache)
        return (text.upper(),) if len(text) >= MIN_REFERENCE_LENGTH else ()
    found = _token_cache.get(text)
    if found is None:
        found = tuple(_reference_tokens(text))
        if len(_token_cache) >= _TOKEN_CACHE_SIZE:
            _token_cache.clear()
        _token_cache[text] = found
    return found


_token_cache: dict[str, tuple[str, ...]] = {}
_TOKEN_CACHE_SIZE = 4096


def _reference_tokens(text: str) -> list[str]:
    tokens: list[str] = []
    for token in _TOKEN.findall(text):
        token = token.upper()
        if len(token) >= MIN_REFERENCE_LENGTH:
            tokens.append(token)
        if not token.isalnum():
            tokens.extend(
                part for part in re.split(r"[-_/#.]", token) if len(part) >= MIN_REFERENCE_LENGTH
            )
    return tokens


def credit_tokens(credit: Credit) -> tuple[str, ...]:
    """Reference tokens of a credit's reference and remittance text, in that order.

    The same as the tokens of ``f"{reference} {remittance}"``: a token never spans the space.
    """
    reference, remittance = credit.reference, credit.remittance
    if not remittance:
        return reference_tokens(reference) if reference else ()
    if not reference:
        return reference_tokens(remittance)
    return reference_tokens(reference) + reference_tokens(remittance)


def reference_index(
    open_batches: Iterable[ExpectedCredit], payouts: Sequence[PayoutRecord]
) -> dict[str, list[str]]:
    """Reference token -> keys of the batches it names (a key may repeat).

    Batch references name their batch; an acquirer payout reference names the batches its
    record lists (by batch key, ``TID#batch_no`` or batch reference), or without a list every
    batch due on its settlement date.
    """
    index: dict[str, list[str]] = {}
    # The aliases and due-date lists only serve payout references: skip them without one.
    # Otherwise only the aliases some payout asks for are indexed (a lookup of any other finds
    # nothing either way), and the due-date lists only when such a payout lists no batches.
    with_payouts = need_due = False
    wanted: set[str] = set()
    for payout in payouts:
        if payout.reference:
            with_payouts = True
            refs = payout.batch_refs
            if not refs:
                need_due = True
            elif len(refs) == 1:
                wanted.add(refs[0].upper())
            else:
                wanted.update(ref.upper() for ref in refs)
    if not with_payouts:
        for exp in open_batches:
            if exp.reference:
                for token in reference_tokens(exp.reference):
                    index.setdefault(token, []).append(exp.batch_key)
        return index
    # A batch key always holds "#" and "@", a TID#batch_no alias "#": when no wanted alias
    # holds one, no alias of that kind can be wanted.
    by_keys = any("@" in ref for ref in wanted)
    by_numbers = any("#" in ref for ref in wanted)
    by_alias: dict[str, list[str]] = {}
    by_due: dict[object, list[str]] = {}
    alias_of = by_alias.setdefault
    for exp in open_batches:
        key = exp.batch_key
        if by_keys:
            alias = key.upper()
            if alias in wanted:
                alias_of(alias, []).append(key)
        if by_numbers:
            alias = f"{exp.terminal_id}#{exp.batch_no}".upper()
            if alias in wanted:
                alias_of(alias, []).append(key)
        if need_due:
            by_due.setdefault(exp.due_date, []).append(key)
        if exp.reference:
            alias_of(exp.reference.upper(), []).append(key)
            for token in reference_tokens(exp.reference):
                index.setdefault(token, []).append(key)
    empty: tuple[str, ...] = ()
    for payout in payouts:
        reference = payout.reference
        if not reference:
            continue
        refs = payout.batch_refs
        keys: Sequence[str]
        if not refs:
            keys = by_due.get(payout.settlement_date, empty)
        elif len(refs) == 1:
            keys = by_alias.get(refs[0].upper(), empty)
        else:
            keys = [k for ref in refs for k in by_alias.get(ref.upper(), empty)]
        for token in reference_tokens(reference):
            index.setdefault(token, []).extend(keys)
    return index


def match_credits(
    expected: Sequence[ExpectedCredit],
    credits: Sequence[Credit],
    payouts: Sequence[PayoutRecord],
    config: ReconcileConfig,
) -> MatchOutcome:
    """Run the matching rules over one merchant's data.

    :param expected: expected credits sorted by batch key; non-positive amounts are skipped
    :param credits: booked, non-reversal, positive credits sorted by credit id
    :param payouts: the acquirer's payout records
    """
    if not credits:  # nothing to match: every batch with money owed stays open
        return MatchOutcome(open_batches={e.batch_key: e for e in expected if e.amount > 0})
    return _Matcher(expected, credits, payouts, config).run()


class _Matcher:
    def __init__(
        self,
        expected: Sequence[ExpectedCredit],
        credits: Sequence[Credit],
        payouts: Sequence[PayoutRecord],
        config: ReconcileConfig,
    ) -> None:
        self.config = config
        self.before = timedelta(days=config.window_before_days)
        self.after = timedelta(days=config.window_after_days)
        self.out = MatchOutcome()
        self.out.open_batches = {e.batch_key: e for e in expected if e.amount > 0}
        self.out.open_credits = {c.credit_id: c for c in credits}
        self.payouts = payouts
        self._by_account: dict[str, tuple[list[date], list[ExpectedCredit]]] | None = None
        #: the longest same-day-to-T+1 fallback: how much earlier a batch may be due
        self._stretch = max(
            (e.fallback_due - e.due_date for e in expected if e.fallback_due is not None),
            default=timedelta(0),
        )

    def run(self) -> MatchOutcome:
        out = self.out
        for step in (
            self._by_reference,
            self._one_to_one,
            self._aggregated,
            self._per_sale,
            self._subset_sum,
            self._tolerance,
        ):
            if not (out.open_credits and out.open_batches):
                break
            step()
        return out

    # -- helpers -------------------------------------------------------------------------
    def _in_window(self, exp: ExpectedCredit, credit: Credit) -> bool:
        last = exp.fallback_due or exp.due_date  # D0 额度不足: paid on the T+1 day instead
        return exp.due_date - self.before <= credit.booking_date <= last + self.after

    def _pair(self, rule: MatchRule, batches: Sequence[ExpectedCredit], credit: Credit) -> None:
        if len(batches) == 1:
            keys: tuple[str, ...] = (batches[0].batch_key,)
            expected = batches[0].amount
        else:
            keys = tuple(sorted(e.batch_key for e in batches))
            expected = sum(e.amount for e in batches)
        open_batches = self.out.open_batches
        for key in keys:
            del open_batches[key]
        del self.out.open_credits[credit.credit_id]
        self.out.pairings.append(
            _new_pairing(
                (rule, keys, (credit.credit_id,), expected, credit.amount, credit.account_key)
            )
        )

    def _sorted_open_credits(self) -> list[Credit]:
        return sorted(self.out.open_credits.values(), key=_credit_date_order)

    # -- rule 1: reference ---------------------------------------------------------------
    def _by_reference(self) -> None:
        wanted = []
        for credit in self._sorted_open_credits():
            if credit.reference or credit.remittance:
                tokens = credit_tokens(credit)
                if tokens:
                    wanted.append((credit, tokens))
        if not wanted:
            return
        index = reference_index(self.out.open_batches.values(), self.payouts)
        for credit, tokens in wanted:
            for token in tokens:
                keys = sorted(set(index.get(token, ())))
                if not keys:
                    continue
                batches = [self.out.open_batches[k] for k in keys if k in self.out.open_batches]
                if not batches:
                    self.out.duplicates.append((credit, tuple(keys)))
                    del self.out.open_credits[credit.credit_id]
                    break
                if any(credit.account_key in e.candidate_accounts for e in batches):
                    self._pair("reference", batches, credit)
                    break

    # -- rule 2: one credit = one batch --------------------------------------------------
    def _amount_index(self) -> dict[tuple[str, str, int], list[Credit]]:
        index: dict[tuple[str, str, int], list[Credit]] = {}
        for credit in self._sorted_open_credits():
            index.setdefault((credit.account_key, credit.currency, credit.amount), []).append(
                credit
            )
        return index

    def _nearest(
        self, exps: Sequence[ExpectedCredit], candidates: Iterable[Credit]
    ) -> Credit | None:
        exp = exps[0]
        best: Credit | None = None
        best_rank: tuple[int, str] | None = None
        for credit in candidates:
            if credit.credit_id not in self.out.open_credits or not self._in_window(exp, credit):
                continue
            rank = (abs((credit.booking_date - exp.due_date).days), credit.credit_id)
            if best_rank is None or rank < best_rank:
                best, best_rank = credit, rank
        return best

    def _one_to_one(self) -> None:
        index = self._amount_index()
        open_credits = self.out.open_credits
        before, after = self.before, self.after
        for exp in sorted(self.out.open_batches.values(), key=_due_order):
            for account in exp.candidate_accounts:
                candidates = index.get((account, exp.currency, exp.amount))
                if not candidates:
                    continue
                found: Credit | None
                if len(candidates) == 1:  # the common case, without the ranking
                    only, due = candidates[0], exp.due_date
                    last = exp.fallback_due or due
                    ok = only.credit_id in open_credits
                    found = (
                        only if ok and due - before <= only.booking_date <= last + after else None
                    )
                else:
                    found = self._nearest([exp], candidates)
                if found is not None:
                    self._pair("one_to_one", [exp], found)
                    break

    # -- rule 3: one credit = all batches of the day -------------------------------------
    def _day_groups(self) -> list[list[ExpectedCredit]]:
        groups: dict[tuple[object, str], list[ExpectedCredit]] = {}
        for exp in self.out.open_batches.values():
            groups.setdefault((exp.due_date, exp.currency), []).append(exp)
        return [sorted(g, key=lambda e: e.batch_key) for _, g in sorted(groups.items())]

    def _aggregated(self) -> None:
        if not self.out.open_credits:
            return
        index = self._amount_index()
        for group in self._day_groups():
            if len(group) < 2:
                continue
            total = sum(e.amount for e in group)
            for account in group[0].candidate_accounts:
                found = self._nearest(group, index.get((account, group[0].currency, total), ()))
                if found is not None:
                    self._pair("aggregated", group, found)
                    break

    # -- rule 3b: many credits = one batch or one day (秒到, paid per sale) -----------------
    def _per_sale(self) -> None:
        """Credits of one account booked on one day that together pay one batch or one day."""
        by_day: dict[tuple[str, date, str], list[Credit]] = {}
        for credit in self._sorted_open_credits():
            by_day.setdefault(
                (credit.account_key, credit.booking_date, credit.currency), []
            ).append(credit)
        tolerance = self.config.tolerance_per_batch
        for group in self._day_groups():
            options = [[e] for e in group]
            if len(group) > 1:
                options.append(group)
            for items in options:
                if any(e.batch_key not in self.out.open_batches for e in items):
                    continue
                first = items[0]
                low = sum(e.gross - e.fees_high for e in items) - tolerance * len(items)
                high = sum(e.gross - e.fees_low for e in items) + tolerance * len(items)
                for day in dict.fromkeys((first.due_date, first.fallback_due or first.due_date)):
                    found = self._credits_paying(by_day, first, day, low, high)
                    if found:
                        self._pair_many("per_sale", items, found)
                        break

    def _credits_paying(
        self,
        by_day: dict[tuple[str, date, str], list[Credit]],
        exp: ExpectedCredit,
        day: date,
        low: int,
        high: int,
    ) -> list[Credit]:
        for account in exp.candidate_accounts:
            credits = [
                c
                for c in by_day.get((account, day, exp.currency), ())
                if c.credit_id in self.out.open_credits
            ]
            if len(credits) > 1 and low <= sum(c.amount for c in credits) <= high:
                return credits
        return []

    def _pair_many(
        self, rule: MatchRule, batches: Sequence[ExpectedCredit], credits: Sequence[Credit]
    ) -> None:
        keys = tuple(sorted(e.batch_key for e in batches))
        for key in keys:
            del self.out.open_batches[key]
        for credit in credits:
            del self.out.open_credits[credit.credit_id]
        self.out.pairings.append(
            _new_pairing(
                (
                    rule,
                    keys,
                    tuple(sorted(c.credit_id for c in credits)),
                    sum(e.amount for e in batches),
                    sum(c.amount for c in credits),
                    credits[0].account_key,
                )
            )
        )

    # -- rule 4: bounded subset-sum ------------------------------------------------------
    def _account_index(self) -> dict[str, tuple[list[date], list[ExpectedCredit]]]:
        """Per candidate account: open batches sorted by (due date, key), with their due dates."""
        if self._by_account is None:
            lists: dict[str, list[ExpectedCredit]] = {}
            for exp in self.out.open_batches.values():
                for account in exp.candidate_accounts:
                    lists.setdefault(account, []).append(exp)
            self._by_account = {}
            for account, exps in lists.items():
                exps.sort(key=_due_order)
                self._by_account[account] = ([e.due_date for e in exps], exps)
        return self._by_account

    def _candidates(self, credit: Credit) -> list[ExpectedCredit]:
        """The K open batches nearest by due date that could have produced ``credit``.

        Found by bisecting the account's batches on due date, so the cost is the window's
        size, never the merchant's whole history.
        """
        entry = self._account_index().get(credit.account_key)
        if entry is None:
            return []
        dues, exps = entry
        low = bisect.bisect_left(dues, credit.booking_date - self.after - self._stretch)
        high = bisect.bisect_right(dues, credit.booking_date + self.before)
        pool = [
            e
            for e in exps[low:high]
            if e.batch_key in self.out.open_batches
            and e.currency == credit.currency
            and self._in_window(e, credit)
        ]
        pool.sort(key=lambda e: (abs((credit.booking_date - e.due_date).days), e.batch_key))
        return pool[: self.config.subset_max_candidates]

    def _subset_sum(self) -> None:
        for credit in self._sorted_open_credits():
            if not self.out.open_batches:
                return
            pool = self._candidates(credit)
            if len(pool) < 2:
                continue
            result = bounded_subset_sum(
                [e.amount for e in pool],
                credit.amount,
                max_items=self.config.subset_max_candidates,
                node_budget=self.config.subset_node_budget,
            )
            self.out.subset_nodes += result.nodes
            if result.indices is not None:
                self._pair("subset_sum", [pool[i] for i in result.indices], credit)

    # -- rule 5: tolerance and fee variance ----------------------------------------------
    def _tolerance(self) -> None:
        for credit in self._sorted_open_credits():
            pool = self._candidates(credit)
            if not pool:
                continue
            options = [[e] for e in pool]
            options.extend(g for g in bisect_groups(pool) if len(g) > 1)
            best: tuple[int, int, str] | None = None
            chosen: list[ExpectedCredit] = []
            for items in options:
                rank = self._tolerance_rank(credit.amount, items)
                if rank is not None and (best is None or rank < best):
                    best, chosen = rank, items
            if best is not None:
                self._pair("tolerance", chosen, credit)

    def _tolerance_rank(
        self, actual: int, items: Sequence[ExpectedCredit]
    ) -> tuple[int, int, str] | None:
        """Rank of an option (lower is better): within rounding tolerance, else a fee variance."""
        expected = sum(e.amount for e in items)
        diff = actual - expected
        tolerance = self.config.tolerance_per_batch * len(items)
        if abs(diff) <= tolerance:
            return (0, abs(diff), items[0].batch_key)
        # inside the fee interval: another split of the bucket totals into sales
        low = sum(e.gross - e.fees_high for e in items) - tolerance
        high = sum(e.gross - e.fees_low for e in items) + tolerance
        if low <= actual <= high:
            return (0, abs(diff), items[0].batch_key)
        if diff < 0 and -diff * 10000 <= expected * self.config.max_fee_variance_bp:
            return (1, -diff, items[0].batch_key)
        return None


_credit_date_order = attrgetter("booking_date", "credit_id")
_due_order = attrgetter("due_date", "batch_key")


def bisect_groups(pool: Sequence[ExpectedCredit]) -> list[list[ExpectedCredit]]:
    """Group ``pool`` by due date (sorted by due date, then batch key)."""
    ordered = sorted(pool, key=_due_order)
    dues = [e.due_date for e in ordered]
    groups: list[list[ExpectedCredit]] = []
    start = 0
    while start < len(ordered):
        end = bisect.bisect_right(dues, dues[start])
        groups.append(ordered[start:end])
        start = end
    return groups
