"""Bank account and settlement-card numbers: normalise, mask, and key for matching.

docs/architecture.md §6: a full account number is never stored. The collector keeps the masked form
(last four digits) for people and a keyed HMAC for matching statement accounts against
the settlement accounts merchants registered.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

_SEPARATORS = re.compile(r"[\s\-_./]+")


def normalize_account(s: str) -> str:
    """Return ``s`` without spaces, dashes, dots or slashes, upper-cased.

    ``"de89 3704-0044 0532 0130 00"`` becomes ``"DE89370400440532013000"``.

    :param s: an account number, IBAN or card number as printed or typed
    """
    return _SEPARATORS.sub("", s).upper()


def mask_account(s: str) -> str:
    """Return the masked form, only the last four characters visible: ``****1234``.

    Already-masked input (``6217****1234``, ``****1234``) masks to the same result.
    Unmasked numbers of four characters or fewer are masked completely, because showing
    all of them would show the whole number.

    :param s: an account number in any layout
    """
    normalized = normalize_account(s)
    visible = normalized.replace("*", "")
    if "*" not in normalized and len(visible) <= 4:
        return "****"
    return "****" + visible[-4:]


_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")


def _iban_ok(text: str) -> bool:
    """True when ``text`` has the IBAN shape and its ISO 13616 mod-97 check passes."""
    if not _IBAN.fullmatch(text):
        return False
    moved = text[4:] + text[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def account_key_text(s: str) -> str:
    """Return the canonical text that :func:`account_hmac` hashes.

    * An **IBAN** (the whole input, or one ``/``-separated part of it such as the account after
      a BIC in an MT940 ``:25:`` field) hashes as the IBAN, upper-case letters included: its
      country code and, in countries such as GB or NL, its bank code are letters, and two
      accounts that differ only there must not collide. Recognised by shape and the mod-97
      check digits, after dropping spaces and other marks.
    * **Anything else** -- a Chinese bank account, a settlement card, ``BIC/account`` or
      ``bank-code/account`` -- hashes as its digits only, so layout, bank prefixes in letters
      and separators never matter. This is what the collector has always hashed for digits.

    Input is Unicode-compatibility normalised first (full-width ``１２３`` is ``123``).

    :param s: an account number, IBAN or card number as printed or typed
    """
    text = unicodedata.normalize("NFKC", s).upper()
    for part in (text, *text.split("/")):
        compact = "".join(ch for ch in part if ch.isascii() and ch.isalnum())
        if _iban_ok(compact):
            return compact
    return "".join(ch for ch in text if "0" <= ch <= "9")


def account_hmac(key: bytes, s: str) -> str:
    """Return HMAC-SHA256 (hex) of :func:`account_key_text` of ``s`` under ``key``.

    This is the one definition of the account matching key: statement importers, the
    merchants import, card changes from agents (:meth:`collector.enrollment.keys.CollectorKeys.account_hmac`)
    all call it, so the same account hashes equal whichever way it arrived.

    :param key: the collector's matching key (at least 16 bytes)
    :param s: an account number in any layout
    :raises ValueError: if the key is shorter than 128 bits
    """
    if len(key) < 16:
        raise ValueError("account HMAC key must be at least 128 bits")
    return hmac.new(key, account_key_text(s).encode("ascii"), hashlib.sha256).hexdigest()
