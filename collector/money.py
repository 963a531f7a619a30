"""How people see money: yuan with the currency, from integer minor units (fen).

Amounts stay integers of minor units inside the collector and in ``--json`` output (keys end
in ``_minor``); this module is the one place that turns them into text for the CLI and the
dashboard, so a fen amount is never shown bare (``581862`` read as yuan is a 100x error).
"""

from __future__ import annotations

from typing import Any

# ISO 4217 numeric codes the terminals report, as the alphabetic code people read.
NUMERIC_CODES = {"156": "CNY", "344": "HKD", "446": "MOP", "840": "USD", "978": "EUR"}
SYMBOLS = {"CNY": "¥"}
DEFAULT_CURRENCY = "CNY"


def currency_code(currency: str | int | None) -> str:
    """The alphabetic ISO 4217 code of ``currency`` (``156`` → ``CNY``; None → CNY)."""
    text = str(currency or "").strip().upper() or DEFAULT_CURRENCY
    return NUMERIC_CODES.get(text, text)


def format_money(amount_minor: int | None, currency: str | int | None = None) -> str:
    """``581862`` fen → ``¥5,818.62``; other currencies as ``EUR 12.00``; None → ``-``.

    :param amount_minor: integer minor units (two decimals: every currency above has two)
    :param currency: alphabetic or numeric ISO 4217 code; None means the collector's CNY
    """
    if amount_minor is None:
        return "-"
    sign = "-" if int(amount_minor) < 0 else ""
    major, minor = divmod(abs(int(amount_minor)), 100)
    code = currency_code(currency)
    symbol = SYMBOLS.get(code)
    number = f"{major:,}.{minor:02d}"
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{code} {number}"


def minor_keys(row: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """``row`` with each of ``names`` renamed ``<name>_minor`` (JSON output says its unit)."""
    return {f"{k}_minor" if k in names else k: v for k, v in row.items()}
