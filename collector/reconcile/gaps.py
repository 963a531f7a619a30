"""Judging matches and explaining unmatched money as gaps.

Theory of operation (docs/architecture.md §5 Reconciliation; docs/reconciliation.md "Gaps"):

* A pairing from :mod:`collector.reconcile.matching` whose credit landed on the account in force
  while a change was pending or recently rejected, or on the account a recent switch replaced,
  is a ``PAID_TO_OLD_ACCOUNT`` gap for its whole expected amount. Otherwise it is a match; a
  credit short by more than the rounding tolerance leaves a ``SHORT_PAID`` gap for the shortfall.
* An open batch (no pairing) gets exactly one category, the first that applies in this order:
  ``RETURNED`` / ``HELD`` (the acquirer's payout record says so), ``NOT_DUE_YET``,
  ``AGGREGATED_UNRESOLVED`` (an unexplained credit sits on its account in its window),
  ``STATEMENT_GAP`` (no balanced statement covers the due date for the account in force),
  ``CHANGE_PENDING`` (a change is pending and nothing arrived), ``MISSING``.
* Credits: a second credit for batches already paid (by reference, or the same account, amount
  and reference text as a matched credit) is ``DUPLICATE_CREDIT`` for its full amount. Others
  left over are reported as unexplained credit notes.
* A gap of an open batch whose business or due date lies outside the working calendar's range
  carries ``calendar_covers: False`` and the range in its evidence: its due date counted
  weekends only, so public holidays there are unknown and it may be judged late too early
  (the alert planner holds such gaps' SMS up to 14 days; docs/reconciliation.md, "Working
  days").
* ``BATCH_NOT_UPLOADED``: holes in a terminal's batch numbers (up to ``max_batch_hole`` wide;
  wider jumps are counter resets) and replaced terminals whose final batch never arrived. The
  amount at risk is unknown and reported as 0 with ``amount_known: False`` in the evidence.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from itertools import pairwise
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

from settleguard.collector.reconcile.calendar import WorkingCalendar
from settleguard.collector.reconcile.matching import Pairing
from settleguard.collector.reconcile.model import (
    Batch,
    Credit,
    CreditNote,
    ExpectedCredit,
    Gap,
    Match,
    PayoutRecord,
    ReconcileConfig,
    StatementCoverage,
    TerminalReplacement,
    batch_key,
)
from settleguard.collector.reconcile.reasons import hold_reason, is_same_day_fallback, return_reason

#: Open-batch categories that exist only because the due date has passed; the others (returned,
#: held, paid short or to the old card, duplicated, not uploaded) stand whatever the calendar says.
LATE_BY_DUE_DATE = frozenset(
    {"MISSING", "CHANGE_PENDING", "AGGREGATED_UNRESOLVED", "STATEMENT_GAP"}
)
_due_order = attrgetter("due_date", "batch_key")
#: A Match from a complete tuple of its fields, skipping the generated ``__new__`` (half the cost).
_new_match = partial(tuple.__new__, Match)
_PROBLEM_STATUSES = {"returned": 0, "failed": 0, "held": 1, "paid": 2}


def _evidence(exp: ExpectedCredit, rule: str, **extra: Any) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "expected": exp.amount,
        "gross": exp.gross,
        "fees": exp.fees,
        "fees_interval": [exp.fees_low, exp.fees_high],
        "business_date": exp.business_date.isoformat(),
        "due_date": exp.due_date.isoformat(),
        "account_in_force": exp.account_masked,
        "pending_change_id": exp.pending_change_id,
        "rule": rule,
    }
    evidence.update(extra)
    return evidence


def judge_pairings(
    pairings: Sequence[Pairing],
    expected: dict[str, ExpectedCredit],
    merchant_id: str,
    config: ReconcileConfig,
) -> tuple[list[Match], list[Gap], list[CreditNote]]:
    """Turn pairings into matches, ``SHORT_PAID`` and ``PAID_TO_OLD_ACCOUNT`` gaps, overpay notes."""
    matches: list[Match] = []
    gaps: list[Gap] = []
    notes: list[CreditNote] = []
    tolerance_per_batch = config.tolerance_per_batch
    for pairing in pairings:
        keys = pairing.batch_keys
        if len(keys) == 1:
            first = expected[keys[0]]
            account = pairing.account_key
            old = account == first.previous_account_key or (
                account == first.account_key and first.pending_account_key is not None
            )
        else:
            exps = [expected[k] for k in keys]
            first = min(exps, key=_due_order)
            old = _paid_to_old(pairing.account_key, exps)
        if old:
            evidence = _evidence(
                first,
                "old_account_" + pairing.rule,
                expected=pairing.expected,
                seen=pairing.actual,
                credit_ids=list(pairing.credit_ids),
                paid_account_key=pairing.account_key,
            )
            gaps.append(
                Gap(
                    "PAID_TO_OLD_ACCOUNT",
                    merchant_id,
                    pairing.batch_keys,
                    pairing.expected,
                    first.due_date,
                    first.due_date,
                    evidence,
                    "paid to the previous settlement account",
                    pairing.credit_ids,
                )
            )
            continue
        residual = pairing.actual - pairing.expected
        tolerance = tolerance_per_batch * len(keys)
        if len(keys) == 1:
            slack = first.fees_high - first.fees
            spare = first.fees - first.fees_low
        else:
            slack = sum(e.fees_high - e.fees for e in exps)
            spare = sum(e.fees - e.fees_low for e in exps)
        # A credit inside the fee interval is paid in full; below it, short by at least this.
        shortfall = -residual - slack
        covered = pairing.expected - shortfall if shortfall > tolerance else pairing.expected
        matches.append(
            _new_match(
                (
                    pairing.rule,
                    pairing.batch_keys,
                    pairing.credit_ids,
                    pairing.expected,
                    pairing.actual,
                    residual,
                    covered,
                    pairing.account_key,
                )
            )
        )
        if shortfall > tolerance:
            evidence = _evidence(
                first,
                pairing.rule,
                expected=pairing.expected,
                expected_low=pairing.expected - slack,
                seen=pairing.actual,
                credit_ids=list(pairing.credit_ids),
            )
            gaps.append(
                Gap(
                    "SHORT_PAID",
                    merchant_id,
                    pairing.batch_keys,
                    shortfall,
                    first.due_date,
                    first.due_date,
                    evidence,
                    "credit below expected (fee variance)",
                    pairing.credit_ids,
                )
            )
        elif residual > tolerance + spare:
            notes.append(
                CreditNote(pairing.credit_ids[0], pairing.account_key, residual, "overpaid")
            )
    return matches, gaps, notes


def _paid_to_old(account: str, exps: Iterable[ExpectedCredit]) -> bool:
    for exp in exps:
        if account == exp.previous_account_key:
            return True
        if account == exp.account_key and exp.pending_account_key is not None:
            return True
    return False


@dataclass(slots=True)
class GapContext:
    """Indexes the open-batch classifier needs, built once per merchant."""

    merchant_id: str
    today: date
    config: ReconcileConfig
    payouts_by_ref: dict[str, PayoutRecord]
    payouts_by_day: dict[date, PayoutRecord]
    coverage: dict[str, list[StatementCoverage]]
    leftovers: dict[str, tuple[list[date], list[Credit]]]
    #: the calendar the due dates came from; ``None``: do not check its range
    calendar: WorkingCalendar | None = None
    #: credits set aside because their payer is not the acquirer, per account, by date
    others: dict[str, tuple[list[date], list[Credit]]] = field(default_factory=dict)


def build_context(
    merchant_id: str,
    today: date,
    config: ReconcileConfig,
    payouts: Sequence[PayoutRecord],
    coverage: Sequence[StatementCoverage],
    leftovers: Sequence[Credit],
    calendar: WorkingCalendar | None = None,
    others: Sequence[Credit] = (),
) -> GapContext:
    """Index payouts (problem statuses win), coverage per account and leftover credits by date.

    With ``calendar``, gaps whose business or due date it does not cover say so in their evidence.
    """
    by_ref: dict[str, PayoutRecord] = {}
    by_day: dict[date, PayoutRecord] = {}
    ranked = sorted(
        payouts, key=lambda p: (_PROBLEM_STATUSES.get(p.status, 3), p.settlement_date, p.reference)
    )
    for payout in reversed(ranked):  # best-ranked written last, so it wins
        for ref in payout.batch_refs:
            by_ref[ref.upper()] = payout
        if not payout.batch_refs:
            by_day[payout.settlement_date] = payout
    cover: dict[str, list[StatementCoverage]] = {}
    for item in coverage:
        cover.setdefault(item.account_key, []).append(item)
    left = _by_account(leftovers)
    return GapContext(
        merchant_id, today, config, by_ref, by_day, cover, left, calendar, _by_account(others)
    )


def _by_account(credits: Sequence[Credit]) -> dict[str, tuple[list[date], list[Credit]]]:
    lists: dict[str, list[Credit]] = {}
    for credit in sorted(credits, key=lambda c: (c.booking_date, c.credit_id)):
        lists.setdefault(credit.account_key, []).append(credit)
    return {k: ([c.booking_date for c in v], v) for k, v in lists.items()}


def _payout_for(exp: ExpectedCredit, ctx: GapContext) -> PayoutRecord | None:
    aliases = [exp.batch_key, f"{exp.terminal_id}#{exp.batch_no}"]
    if exp.reference:
        aliases.append(exp.reference)
    for alias in aliases:
        found = ctx.payouts_by_ref.get(alias.upper())
        if found is not None:
            return found
    return ctx.payouts_by_day.get(exp.due_date)


def _nearby_credits(
    exp: ExpectedCredit,
    ctx: GapContext,
    pool: dict[str, tuple[list[date], list[Credit]]] | None = None,
) -> list[Credit]:
    found: list[Credit] = []
    before = timedelta(days=ctx.config.window_before_days)
    after = timedelta(days=ctx.config.window_after_days)
    lists = ctx.leftovers if pool is None else pool
    for account in exp.candidate_accounts:
        entry = lists.get(account)
        if entry is None:
            continue
        dates, credits = entry
        low = bisect.bisect_left(dates, exp.due_date - before)
        high = bisect.bisect_right(dates, exp.due_date + after)
        found.extend(c for c in credits[low:high] if c.currency == exp.currency)
    return found


def _same_amount_from_others(exp: ExpectedCredit, ctx: GapContext) -> list[dict[str, Any]]:
    """Credits in the window paying what the batch would, from someone who is not the acquirer."""
    if not ctx.others:
        return []
    low = exp.gross - exp.fees_high
    high = exp.gross - exp.fees_low
    return [
        {
            "credit_id": c.credit_id,
            "amount": c.amount,
            "booking_date": c.booking_date.isoformat(),
            "payer_name": c.payer_name,
            "why": "not from the acquirer",
        }
        for c in _nearby_credits(exp, ctx, ctx.others)
        if low <= c.amount <= high or c.amount == exp.amount
    ]


def _statement_problem(exp: ExpectedCredit, ctx: GapContext) -> str | None:
    if exp.account_key is None:
        return None
    covering = [
        c for c in ctx.coverage.get(exp.account_key, ()) if c.start <= exp.due_date <= c.end
    ]
    if not covering:
        return "no statement covers the due date"
    if not any(c.balance_ok for c in covering):
        return "statement balance chain broken"
    return None


def classify_open(exp: ExpectedCredit, ctx: GapContext) -> Gap:
    """The one gap explaining an unmatched batch with a positive expected amount."""
    payout = _payout_for(exp, ctx)
    payout_seen = (
        None
        if payout is None
        else {
            "status": payout.status,
            "reason": payout.reason,
            "reference": payout.reference,
            "net": payout.net,
        }
    )

    calendar = ctx.calendar
    if calendar is not None and not (
        calendar.covers(exp.business_date) and calendar.covers(exp.due_date)
    ):
        uncovered = {
            "calendar_covers": False,
            "calendar_valid": f"{calendar.valid_from.isoformat()}..{calendar.valid_to.isoformat()}",
        }
    else:
        uncovered = {}

    def gap(category: Any, since: date, reason: str | None, rule: str, **extra: Any) -> Gap:
        evidence = _evidence(exp, rule, seen=0, payout=payout_seen, **extra, **uncovered)
        credit_ids = tuple(extra.get("credit_ids", ()))
        return Gap(
            category,
            ctx.merchant_id,
            (exp.batch_key,),
            exp.amount,
            since,
            exp.due_date,
            evidence,
            reason,
            credit_ids,
        )

    others = _same_amount_from_others(exp, ctx)
    if others:
        uncovered = {**uncovered, "not_from_acquirer": others}
    fallback = exp.fallback_due
    text = (payout.reason or "") if payout is not None else ""
    if payout is not None and payout.status in ("returned", "failed"):
        if not (fallback is not None and is_same_day_fallback(text)):
            code = return_reason(text)
            return gap(
                "RETURNED",
                exp.due_date,
                text or payout.status,
                "payout_record",
                return_reason=code,
                acquirer_reference=payout.reference,
            )
    if payout is not None and payout.status == "held":
        return gap(
            "HELD",
            exp.due_date,
            text or "held by the acquirer",
            "payout_record",
            hold_reason=hold_reason(text),
            acquirer_reference=payout.reference,
        )
    if ctx.today <= exp.due_date:
        return gap("NOT_DUE_YET", exp.business_date, None, "due_date")
    if fallback is not None and ctx.today <= fallback:
        # D0 额度不足: a same-day payout over the acquirer's limit is paid on the next working day.
        return gap(
            "NOT_DUE_YET",
            exp.business_date,
            "same-day payout may fall back to T+1",
            "same_day_fallback",
            fallback_due=fallback.isoformat(),
        )
    if fallback is not None:
        exp = exp._replace(due_date=fallback)  # late only once the T+1 day has passed too
    nearby = _nearby_credits(exp, ctx)
    if nearby:
        ids = sorted(c.credit_id for c in nearby)
        return gap(
            "AGGREGATED_UNRESOLVED",
            exp.due_date,
            "a credit nearby could not be split into batches",
            "unresolved_credit",
            credit_ids=ids,
            credit_amounts=[c.amount for c in nearby],
        )
    if exp.account_key is None:
        category = "CHANGE_PENDING" if exp.pending_account_key else "MISSING"
        return gap(category, exp.due_date, "no settlement account in force", "account_history")
    problem = _statement_problem(exp, ctx)
    if problem is not None:
        return gap("STATEMENT_GAP", exp.due_date, problem, "statement_coverage")
    if exp.pending_account_key is not None:
        return gap(
            "CHANGE_PENDING", exp.due_date, "settlement-account change pending", "account_history"
        )
    reason = "acquirer reports paid" if payout is not None and payout.status == "paid" else None
    return gap("MISSING", exp.due_date, reason, "no_credit")


def credit_leftovers(
    leftovers: Sequence[Credit],
    pairings: Sequence[Pairing],
    matched_credits: dict[str, Credit],
    duplicates: Sequence[tuple[Credit, tuple[str, ...]]],
    merchant_id: str,
) -> tuple[list[Gap], list[Credit]]:
    """``DUPLICATE_CREDIT`` gaps, and the credits that are still unexplained."""
    seen: dict[tuple[Any, ...], tuple[str, ...]] = {}
    for pairing in pairings:
        for credit_id in pairing.credit_ids:
            seen[_duplicate_key(matched_credits[credit_id])] = pairing.batch_keys
    dupes = list(duplicates)
    rest: list[Credit] = []
    for credit in leftovers:
        keys = seen.get(_duplicate_key(credit))
        if keys is not None and (credit.reference or credit.remittance):
            dupes.append((credit, keys))
        else:
            rest.append(credit)
    gaps = []
    for credit, keys in dupes:
        evidence = {
            "seen": credit.amount,
            "credit_ids": [credit.credit_id],
            "booking_date": credit.booking_date.isoformat(),
            "rule": "duplicate",
        }
        gaps.append(
            Gap(
                "DUPLICATE_CREDIT",
                merchant_id,
                keys,
                credit.amount,
                credit.booking_date,
                None,
                evidence,
                "second credit for batches already paid",
                (credit.credit_id,),
            )
        )
    return gaps, rest


def _duplicate_key(credit: Credit) -> tuple[Any, ...]:
    text = (credit.reference.strip().upper(), credit.remittance.strip().upper())
    return (credit.account_key, credit.currency, credit.amount, text)


def batch_number_gaps(
    batches: Sequence[Batch],
    replacements: Sequence[TerminalReplacement],
    merchant_id: str,
    timezone: str,
    config: ReconcileConfig,
) -> list[Gap]:
    """``BATCH_NOT_UPLOADED`` gaps: number holes per terminal and lost final batches."""
    if not replacements:
        if not batches:
            return []
        # The usual merchant: one terminal, contiguous numbers (same test as below).
        tid = batches[0].terminal_id
        numbers = {b.batch_no for b in batches}
        if max(numbers) - min(numbers) + 1 == len(numbers) and all(
            b.terminal_id == tid for b in batches
        ):
            return []
    tz = ZoneInfo(timezone)
    per_terminal: dict[str, list[Batch]] = {}
    for batch in batches:
        per_terminal.setdefault(batch.terminal_id, []).append(batch)
    gaps: list[Gap] = []
    for tid in sorted(per_terminal):
        terminal_batches = per_terminal[tid]
        numbers = {b.batch_no for b in terminal_batches}
        if max(numbers) - min(numbers) + 1 == len(numbers):
            continue  # contiguous numbers (the usual case): no pair of neighbours has a hole
        seq = sorted(terminal_batches, key=lambda b: (b.batch_no, b.closed_at))
        for prev, nxt in pairwise(seq):
            if 1 < nxt.batch_no - prev.batch_no <= config.max_batch_hole:
                missing = range(prev.batch_no + 1, nxt.batch_no)
                gaps.append(
                    _not_uploaded(
                        merchant_id,
                        tid,
                        missing,
                        prev.closed_at,
                        tz,
                        "batch numbers skipped",
                        after=prev.key,
                    )
                )
    for rep in sorted(replacements, key=_replacement_order):
        seq = sorted(per_terminal.get(rep.old_tid, ()), key=lambda b: (b.batch_no, b.closed_at))
        numbers = {b.batch_no for b in seq}
        if rep.final_batch_no is not None:
            if rep.final_batch_no in numbers:
                continue
            last = max((n for n in numbers if n < rep.final_batch_no), default=None)
            start = rep.final_batch_no
            if last is not None and rep.final_batch_no - last <= config.max_batch_hole:
                start = last + 1
            missing = range(start, rep.final_batch_no + 1)
        else:
            if any(b.closed_at >= rep.replaced_at - timedelta(days=1) for b in seq):
                continue
            missing = range(0)
        gaps.append(
            _not_uploaded(
                merchant_id,
                rep.old_tid,
                missing,
                rep.replaced_at,
                tz,
                "final batch of the replaced terminal never arrived",
                new_tid=rep.new_tid,
                final_batch_no=rep.final_batch_no,
            )
        )
    return gaps


def _not_uploaded(
    merchant_id: str,
    tid: str,
    missing: range,
    since: datetime,
    tz: ZoneInfo,
    reason: str,
    **extra: Any,
) -> Gap:
    keys = tuple(batch_key(tid, n, None) for n in missing) or (f"{tid}#final",)
    evidence: dict[str, Any] = {
        "terminal_id": tid,
        "missing_batch_nos": list(missing),
        "amount_known": False,
        "rule": "batch_numbers",
        **extra,
    }
    return Gap(
        "BATCH_NOT_UPLOADED",
        merchant_id,
        keys,
        0,
        since.astimezone(tz).date(),
        None,
        evidence,
        reason,
    )


def _replacement_order(rep: TerminalReplacement) -> tuple[Any, ...]:
    return (rep.replaced_at, rep.old_tid, rep.new_tid, rep.final_batch_no or -1)
