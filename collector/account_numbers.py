"""Bank account and settlement-card numbers: normalise, mask, and key for matching.

DESIGN §6: a full account number is never stored. The collector keeps the masked form
(last four digits) for people and a keyed HMAC for matching statement accounts against
the settlement accounts merchants registered.
"""

from __future__ import annotations

import hashlib
import hmac
import re

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


def account_hmac(key: bytes, s: str) -> str:
    """Return HMAC-SHA256 (hex) of the normalised account number under ``key``.

    :param key: the collector's matching key (at least 16 bytes)
    :param s: an account number in any layout
    :raises ValueError: if the key is shorter than 128 bits
    """
    if len(key) < 16:
        raise ValueError("account HMAC key must be at least 128 bits")
    return hmac.new(key, normalize_account(s).encode("utf-8"), hashlib.sha256).hexdigest()
