"""Check an export's own totals (its trailer) against the rows that were read.

Banks close their exports with totals: 工商银行 a ``人民币合计`` row whose income and
expense sit under the 记账金额(收入)/(支出) columns, 招商银行 ``# 收入合计`` / ``# 支出合计``
lines. When they disagree with the sum of the rows, rows were lost (a cut-off download, a
hand-edited file), and importing it would understate the credits; the file is refused.
"""

from __future__ import annotations

import re

from settleguard.collector.statements.amounts import (
    AmountError,
    format_minor,
    parse_decimal,
    to_minor_units,
)
from settleguard.collector.statements.errors import StatementError
from settleguard.collector.statements.model import StatementEntry
from settleguard.collector.statements.tabular import Header, Row, strip_money

# a total is written with decimals (3,166.40); a bare integer after the label is a count (3笔)
_NUMBER = re.compile(r"[+-]?\d[\d,]*\.\d+")


def _label_of(row: Row, labels: tuple[str, ...]) -> str | None:
    first = next((c for c in row.cells if c), "")
    compact = first.replace(" ", "")
    return next((label for label in labels if compact.startswith(label.replace(" ", ""))), None)


def _amount(text: str, currency: str) -> int | None:
    try:
        return to_minor_units(parse_decimal(strip_money(text), thousands=True), currency)
    except AmountError:
        return None


def _stated(row: Row, label: str, column: int | None, currency: str) -> int | None:
    """The total a trailer row states: under ``column`` when given, else the number after the
    label (``# 收入合计: 1,234.00``)."""
    if column is not None and column < len(row.cells) and row.cells[column]:
        value = _amount(row.cells[column], currency)
        if value is not None:
            return value
    text = ",".join(row.cells).replace(" ", "").replace("，", ",")
    compact = label.replace(" ", "")
    after = text[text.find(compact) + len(compact) :] if compact in text else text
    match = _NUMBER.search(after)
    return _amount(match.group(0).rstrip(","), currency) if match else None


def check_totals(
    header: Header,
    trailers: list[Row],
    entries: list[StatementEntry],
    currency: str,
    rejected: int,
    filename: str,
    sheet: str | None,
) -> None:
    """Refuse the file when a trailer total differs from the sum of its rows.

    :param header: the chosen profile and header (its total labels and columns)
    :param trailers: the rows after the header that were not entries
    :param entries: the entries read
    :param currency: the statement currency (totals are in it)
    :param rejected: how many rows were rejected (named in the message)
    :raises StatementError: naming the trailer row, the stated and the summed total
    """
    profile = header.profile
    sums = {
        "credit": sum(e.amount for e in entries if e.direction == "credit"),
        "debit": sum(e.amount for e in entries if e.direction == "debit"),
    }
    for row in trailers:
        for direction, labels in (
            ("credit", profile.credit_total_labels),
            ("debit", profile.debit_total_labels),
        ):
            label = _label_of(row, labels)
            if label is None:
                continue
            # one row holding both totals (人民币合计) has them under the amount columns
            aligned = label in profile.credit_total_labels and label in profile.debit_total_labels
            column = header.mapping.get(direction) if aligned else None
            stated = _stated(row, label, column, currency)
            if stated is None or stated == sums[direction]:
                continue
            words = "收入 (credit)" if direction == "credit" else "支出 (debit)"
            also = f"; {rejected} rows were rejected" if rejected else ""
            raise StatementError(
                f"the trailer's {words} total {format_minor(stated, currency)} {currency} differs"
                f" from the rows' sum {format_minor(sums[direction], currency)} {currency}{also};"
                " rows are missing or were changed: download the export again",
                filename=filename,
                line=row.line,
                sheet=sheet,
            )
