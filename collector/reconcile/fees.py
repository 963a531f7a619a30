"""Merchant discount fees charged per transaction, and what bucket totals allow us to know of them.

Theory of operation (docs/reconciliation.md "Fees"): Chinese acquirers charge each *sale*:
``min(cap, round_half_up(amount * rate_bp / 10000)) + fixed``. A debit-card contract caps the
percentage per sale (0.60 % capped at ¥20 is common), so five ¥10,000 debit sales cost five caps,
¥100, not one. A batch only tells us a bucket's sale count and total, so the fee of a bucket is
known only as an interval over every way of splitting the total into that many sales:

* ``low``: no split can cost less. ``min(cap, a·r)`` is concave with value 0 at 0, hence
  subadditive, so the sales together pay at least ``min(cap, total·r)``; rounding takes at most
  half a fen off each sale: ``low = ceil(min(cap, total·r) - count/2)`` (never below 0).
* ``high``: no split can cost more: each sale pays at most ``cap`` and at most ``a·r + 1/2``:
  ``high = min(count·cap, floor(total·r + count/2))``.
* ``point``: the percentage rounded once on the bucket total, capped at ``count·cap``: what an
  acquirer that rounds per bucket charges, and, when the cap binds, what equal sales cost. It
  lies in the interval and is the amount the matcher looks for first.

With one sale, or with the sales' own amounts (a transaction journal), the fee is exact and the
interval is one point. The fixed part is ``count · fixed`` in every case. A bucket with no
positive fee base costs nothing, not even the fixed part. A bucket whose count is unknown (0)
is treated as one sale for the fixed part and for ``low``; ``high`` then ignores the cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple


class FeeInterval(NamedTuple):
    """A fee in minor units: the most likely value and the bounds it surely lies within."""

    point: int
    low: int
    high: int


def sale_fee(amount: int, rate_bp: int, cap: int | None, fixed: int) -> int:
    """The exact fee of one sale of ``amount`` minor units (0 for a non-positive amount)."""
    if amount <= 0:
        return 0
    variable = (amount * rate_bp * 2 + 10000) // 20000  # round half up, amount > 0
    if cap is not None and variable > cap:
        variable = cap
    return variable + fixed


def fee_interval(
    base: int,
    count: int,
    rate_bp: int,
    cap: int | None,
    fixed: int,
    sales: Sequence[int] | None = None,
) -> FeeInterval:
    """The fee of a bucket of ``count`` sales totalling ``base`` minor units.

    :param base: the fee base (sales less voids, and refunds where the contract returns fees)
    :param count: number of sales the base is made of; 0 when the terminal did not say
    :param sales: each sale's amount when a transaction journal exists: the fee is then exact
    """
    if sales:
        exact = sum(sale_fee(amount, rate_bp, cap, fixed) for amount in sales)
        return _interval((exact, exact, exact))
    if base <= 0:
        return _NOTHING
    if rate_bp == 0:  # only the fixed part: nothing to round
        fixed_total = (count if count > 1 else 1) * fixed
        return _interval((fixed_total, fixed_total, fixed_total))
    rounded = (base * rate_bp * 2 + 10000) // 20000  # round half up, base > 0
    if count <= 1:
        one = (rounded if cap is None or rounded <= cap else cap) + fixed
        if count == 1:
            return _interval((one, one, one))
        return _interval((one, one, max(one, rounded + fixed)))
    count = min(count, base)  # every sale is at least one fen
    scaled = base * rate_bp  # the fee in 1/10000 of a minor unit
    if cap is None:
        point, concave, most = rounded, scaled, None
    else:
        most = count * cap
        point = rounded if rounded <= most else most
        concave = scaled if scaled <= cap * 10000 else cap * 10000
    low = max(0, -((count * 5000 - concave) // 10000))  # ceil((concave - count/2) / 10000)
    high = (scaled + count * 5000) // 10000
    if most is not None and high > most:
        high = most
    fixed_total = count * fixed
    return _interval((point + fixed_total, low + fixed_total, high + fixed_total))


#: A FeeInterval from a complete tuple, skipping the generated ``__new__``.
_interval = partial(tuple.__new__, FeeInterval)
_NOTHING = FeeInterval(0, 0, 0)
