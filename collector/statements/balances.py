"""The balance chain check shared by every format that reports balances.

docs/architecture.md §5: opening balance + booked credits − booked debits must equal the closing
balance. A chain that does not close is not an exception: the file is still imported,
and the caller turns the ``balance_mismatch`` warning into a statement gap.
"""

from __future__ import annotations

from collections.abc import Iterable

from settleguard.collector.statements.amounts import format_minor
from settleguard.collector.statements.model import Balance, StatementEntry


def balance_warning(
    opening: Balance | None,
    closing: Balance | None,
    entries: Iterable[StatementEntry],
    currency: str | None,
    where: str = "",
) -> str | None:
    """Return a ``balance_mismatch: …`` warning, or None when the chain closes or can't be checked.

    :param opening: opening (or previous closing) balance
    :param closing: closing booked balance
    :param entries: the statement's entries; only booked ones move the balance
    :param currency: for rendering amounts in the message
    :param where: a prefix naming the statement inside the file
    """
    if opening is None or closing is None:
        return None
    movement = sum(e.signed_amount for e in entries if e.status == "booked")
    expected = opening.amount + movement
    if expected == closing.amount:
        return None
    return (
        f"balance_mismatch: {where}opening {format_minor(opening.amount, currency)}"
        f" + movements {format_minor(movement, currency)}"
        f" = {format_minor(expected, currency)}"
        f" but closing is {format_minor(closing.amount, currency)}"
    )
