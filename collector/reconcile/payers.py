"""Is a credit from the acquirer? Payer names and accounts, masked forms included.

Banks show who sent a credit (对方户名, 对方账号) in their exports, many of them masked: CCB shows
``拉***付股份有限公司``, others ``6222****1234``. A run of ``*`` (or ``＊``) stands for one or more
characters that the bank hid. :func:`payer_matches` is the one comparison every part of the
collector uses (matching, evidence, suggestions, importers); :func:`is_acquirer_payer` applies
it to a credit's payer name and account against an acquirer's list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_MASK = re.compile(r"[*＊]+")
_SPACE = re.compile(r"\s+")
_PARTS = re.compile(r"[/|,;，；\s]+")


def _normal(text: str) -> str:
    """Compare without spaces, in one width and case (full-width brackets are common in names)."""
    text = _SPACE.sub("", text)
    return text.replace("（", "(").replace("）", ")").upper()


@lru_cache(maxsize=4096)
def _pattern(text: str) -> re.Pattern[str] | None:
    parts = _MASK.split(_normal(text))
    if len(parts) == 1:
        return None
    return re.compile(".+".join(re.escape(part) for part in parts), re.DOTALL)


def payer_matches(shown: str, known: str) -> bool:
    """True when ``shown`` (as a statement shows it, maybe masked) can be ``known``.

    Either side may be masked: each run of ``*`` stands for one or more hidden characters.
    Spaces, letter case and full-width brackets do not matter. An empty side never matches.

    :param shown: a payer name or account number from a statement
    :param known: a configured payer name or account number
    """
    if not shown.strip() or not known.strip():
        return False
    plain_shown, plain_known = _normal(shown), _normal(known)
    if plain_shown == plain_known:
        return True
    pattern = _pattern(shown)
    if pattern is not None and pattern.fullmatch(plain_known):
        return True
    pattern = _pattern(known)
    return pattern is not None and pattern.fullmatch(plain_shown) is not None


def is_acquirer_payer(payer_name: str, payer_account: str, payers: Iterable[str]) -> bool | None:
    """Whether a credit's payer is one of ``payers`` (names or accounts).

    :returns: True or False, or None when the statement names no payer at all (unknown)
    """
    if not payer_name.strip() and not payer_account.strip():
        return None
    shown = {payer_name, payer_account}
    # Some exports print account and name in one cell ("3105****9876/银联商务股份有限公司").
    shown.update(_PARTS.split(payer_name))
    return any(payer_matches(text, known) for text in shown for known in payers)
