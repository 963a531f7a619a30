"""Bounded subset-sum: which of at most K amounts add up to a credit, within a node budget.

A depth-first search over the amounts sorted largest first, pruned when the remaining amounts
cannot reach the target or the partial sum already overshoots it. Two hard limits keep it from
ever going exponential in practice: callers pass at most ``max_items`` amounts (the engine's K,
12 by default, so at most 2**12 = 4096 subsets exist at all), and the search stops after
``node_budget`` visited nodes and reports that it ran out. The result is deterministic: the
first subset found in that fixed order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SubsetResult:
    """``indices`` into the input that sum to the target, or None; nodes the search visited."""

    indices: tuple[int, ...] | None
    nodes: int
    exhausted: bool


def bounded_subset_sum(
    amounts: Sequence[int], target: int, *, max_items: int = 12, node_budget: int = 20000
) -> SubsetResult:
    """Find a subset of ``amounts`` (all positive) summing exactly to ``target``.

    :param amounts: candidate amounts, at most ``max_items`` of them
    :param target: the sum wanted
    :param max_items: the K limit; more amounts is a programming error
    :param node_budget: maximum search nodes; ``exhausted`` is True when the search hit it
    :raises ValueError: when there are more than ``max_items`` amounts or one is not positive
    """
    if len(amounts) > max_items:
        raise ValueError(f"subset-sum given {len(amounts)} amounts, limit is {max_items}")
    if any(a <= 0 for a in amounts):
        raise ValueError("subset-sum amounts must be positive")
    order = sorted(range(len(amounts)), key=lambda i: (-amounts[i], i))
    values = [amounts[i] for i in order]
    suffix = [0] * (len(values) + 1)
    for pos in range(len(values) - 1, -1, -1):
        suffix[pos] = suffix[pos + 1] + values[pos]
    if target <= 0 or suffix[0] < target:
        return SubsetResult(None, 0, False)
    chosen: list[int] = []
    nodes = 0
    # Explicit stack of (position, remaining, depth of ``chosen``) keeps recursion out of it.
    stack: list[tuple[int, int, int]] = [(0, target, 0)]
    while stack:
        if nodes >= node_budget:
            return SubsetResult(None, nodes, True)
        pos, remaining, depth = stack.pop()
        nodes += 1
        del chosen[depth:]
        if remaining == 0:
            return SubsetResult(tuple(sorted(order[p] for p in chosen)), nodes, False)
        if pos >= len(values) or suffix[pos] < remaining:
            continue
        # Push "skip" first so that "take" is explored first (LIFO).
        stack.append((pos + 1, remaining, depth))
        if values[pos] <= remaining:
            chosen.append(pos)
            stack.append((pos + 1, remaining - values[pos], depth + 1))
    return SubsetResult(None, nodes, False)
