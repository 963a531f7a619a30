"""Settlement-card changes as the technician records them (docs/architecture.md §3.2, §6).

The new account number is typed without echo, checked, shown and stored only as its last four
digits, and otherwise exists only as a token sealed to the collector's public key. The clear
number is never written anywhere by the agent.

Two kinds of settlement account: a personal bank card (12-19 digits with a Luhn check digit)
and a corporate account (对公账户: banks number them with up to about 32 digits and no check
digit). What the merchant declares -- holder name, bank, personal or corporate, Type I or II --
travels with the record. A holder name that differs from the merchant's registered name is the
change most likely to be returned by the bank (户名不符), so intake warns about it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from settleguard.agent.errors import UsageError
from settleguard.protocol.records import CardChange
from settleguard.protocol.sealed import card_change_context, seal

_SEPARATORS = re.compile(r"[\s-]+")


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` passes the Luhn (mod 10) check used by bank card numbers."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


CORPORATE_DIGITS = (8, 32)


def normalize_account_number(text: str, kind: str = "card") -> str:
    """Strip spaces and dashes; check the number fits ``kind`` (``card`` or ``corporate``).

    :raises UsageError: not digits or the wrong length (and for a card, a failing Luhn
        check); the message never repeats the number
    """
    if kind == "card":
        return normalize_card_number(text)
    if kind != "corporate":
        raise UsageError(f"account kind {kind!r} is not card or corporate")
    digits = _SEPARATORS.sub("", text)
    if not digits.isdigit() or not digits.isascii():
        raise UsageError("the account number may contain only digits, spaces and dashes")
    low, high = CORPORATE_DIGITS
    if not low <= len(digits) <= high:
        raise UsageError(
            f"a corporate account has {low} to {high} digits, this one has {len(digits)}"
        )
    return digits


def _plain_name(name: str) -> str:
    """A name compared without spaces, bracket width or letter case."""
    name = "".join(name.split())
    return name.replace("（", "(").replace("）", ")").casefold()


def intake_warnings(request: CardChangeRequest) -> list[str]:
    """What the technician should double-check before the change goes to the acquirer."""
    warnings = []
    registered = (request.registered_name or "").strip()
    if registered and _plain_name(registered) != _plain_name(request.holder_name):
        warnings.append(
            f"the holder name {request.holder_name.strip()!r} differs from the merchant's "
            f"registered name {registered!r}: banks return payouts whose holder is not the "
            "merchant (户名不符); check the new account belongs to the merchant"
        )
    if request.account_kind == "corporate" and request.account_class is not None:
        warnings.append("Type I/II applies to personal accounts only; it is ignored here")
    if request.account_class == "II":
        warnings.append(
            "a Type II account (二类户) has daily inflow limits: large payouts may be returned"
        )
    return warnings


def normalize_card_number(text: str) -> str:
    """Strip spaces and dashes; check the result is a plausible bank card number.

    Chinese debit cards (UnionPay, 62…) are 16–19 digits; we accept 12–19 and require Luhn.

    :raises UsageError: not digits, wrong length or failing the Luhn check; the message never
        repeats the number
    """
    digits = _SEPARATORS.sub("", text)
    if not digits.isdigit() or not digits.isascii():
        raise UsageError("the card number may contain only digits, spaces and dashes")
    if not 12 <= len(digits) <= 19:
        raise UsageError(f"a card number has 12 to 19 digits, this one has {len(digits)}")
    if not luhn_valid(digits):
        raise UsageError("the card number fails its check digit (Luhn): a typo? type it again")
    return digits


def mask_card(digits: str) -> str:
    """Only the last four digits, e.g. ``****1234``."""
    return "*" * max(4, len(digits) - 4) + digits[-4:]


@dataclass(frozen=True, slots=True)
class CardChangeRequest:
    """What the technician entered, apart from the card number itself."""

    merchant_id: str
    holder_name: str
    bank: str
    requested_at: str
    old_account_masked: str | None = None
    acquirer_ref: str | None = None
    effective_at: str | None = None
    #: ``card`` (personal bank card) or ``corporate`` (对公账户)
    account_kind: str = "card"
    #: ``I`` or ``II`` for a personal account, when the merchant knows it
    account_class: str | None = None
    #: the merchant's registered name (business licence), to compare with the holder
    registered_name: str | None = None


def build_card_change(
    request: CardChangeRequest,
    card_number: str,
    collector_public_key: bytes,
    *,
    change_id: str | None = None,
) -> CardChange:
    """Validate the card number and build the record with the number sealed.

    :param card_number: the card or corporate account number as typed; spaces and dashes allowed
    :param collector_public_key: the collector's raw X25519 public key (from enrollment)
    :param change_id: fixed id for tests; a new UUID otherwise
    :raises UsageError: bad card number or missing fields
    """
    if not request.holder_name.strip():
        raise UsageError("the account holder's name is required (the bank checks it)")
    if not request.bank.strip():
        raise UsageError("the bank's name is required")
    if request.account_class not in (None, "I", "II"):
        raise UsageError("the account type is I or II")
    digits = normalize_account_number(card_number, request.account_kind)
    corporate = request.account_kind == "corporate"
    change_id = change_id or uuid.uuid4().hex
    sealed = seal(
        collector_public_key, digits.encode("ascii"), context=card_change_context(change_id)
    )
    return CardChange(
        merchant_id=request.merchant_id,
        change_id=change_id,
        old_account_masked=request.old_account_masked,
        new_account_masked=mask_card(digits),
        new_account_sealed=sealed,
        holder_name=request.holder_name.strip(),
        bank=request.bank.strip(),
        requested_at=request.requested_at,
        effective_at=request.effective_at,
        review_status="requested",
        acquirer_ref=request.acquirer_ref,
        account_kind=request.account_kind,
        account_class=None if corporate else request.account_class,
        holder_declared_personal=not corporate,
    )
