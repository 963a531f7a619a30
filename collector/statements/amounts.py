"""Decimal amounts to integer minor units, by the currency's ISO 4217 exponent.

ISO 4217 gives each currency a number of minor-unit digits. Most have two; the
exceptions below are the ones in use today. An amount with more decimals than its
currency allows is not rounded: it is refused, because rounding money silently hides
exactly the kind of error this product exists to find.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_ZERO_DECIMALS = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()
)
_THREE_DECIMALS = frozenset("BHD IQD JOD KWD LYD OMR TND".split())
_FOUR_DECIMALS = frozenset(["CLF", "UYW"])

_CURRENCY = re.compile(r"[A-Z]{3}")
_PLAIN = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_GROUPED = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")


class AmountError(ValueError):
    """An amount or currency that cannot be turned into minor units."""


def currency_exponent(currency: str) -> int:
    """Return the number of minor-unit digits of ``currency`` (2 for most).

    :param currency: ISO 4217 alphabetic code
    :raises AmountError: if ``currency`` is not three capital letters
    """
    if not _CURRENCY.fullmatch(currency):
        raise AmountError(f"currency {currency!r} is not an ISO 4217 code")
    if currency in _ZERO_DECIMALS:
        return 0
    if currency in _THREE_DECIMALS:
        return 3
    if currency in _FOUR_DECIMALS:
        return 4
    return 2


def parse_decimal(text: str, *, thousands: bool = False, comma_decimal: bool = False) -> Decimal:
    """Parse a decimal amount exactly, never through a float.

    :param text: the amount as written (``1234.56``, ``1,234.56`` when ``thousands``)
    :param thousands: accept ``,`` as a thousands separator (bank CSV exports)
    :param comma_decimal: ``,`` is the decimal mark (SWIFT MT940)
    :raises AmountError: if ``text`` is not a decimal number
    """
    s = text.strip()
    if comma_decimal:
        if not re.fullmatch(r"\d+,\d*", s):
            raise AmountError(f"amount {text!r} is not a decimal")
        s = s.replace(",", ".")
    elif thousands and _GROUPED.fullmatch(s):
        s = s.replace(",", "")
    if not _PLAIN.fullmatch(s):
        raise AmountError(f"amount {text!r} is not a decimal")
    try:
        return Decimal(s)
    except InvalidOperation as exc:  # pragma: no cover - the regex already vetted it
        raise AmountError(f"amount {text!r} is not a decimal") from exc


def to_minor_units(value: Decimal, currency: str) -> int:
    """Convert ``value`` to integer minor units of ``currency``.

    :param value: an exact decimal amount
    :param currency: ISO 4217 alphabetic code
    :raises AmountError: if ``value`` has more decimals than the currency allows
    """
    exponent = currency_exponent(currency)
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise AmountError(f"amount {value} has more decimals than {currency} allows ({exponent})")
    return int(scaled)


def format_minor(amount: int, currency: str | None) -> str:
    """Render minor units back as a decimal string for messages (``-12.50``)."""
    exponent = currency_exponent(currency) if currency else 2
    return str(Decimal(amount).scaleb(-exponent))
