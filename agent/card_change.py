"""Settlement-card changes as the technician records them (DESIGN.md §3.2, §6).

The new card number is typed without echo, checked (digits, length, Luhn), shown and stored
only as its last four digits, and otherwise exists only as a token sealed to the collector's
public key. The clear number is never written anywhere by the agent.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from agent.errors import UsageError
from protocol.records import CardChange
from protocol.sealed import card_change_context, seal

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


def build_card_change(
    request: CardChangeRequest,
    card_number: str,
    collector_public_key: bytes,
    *,
    change_id: str | None = None,
) -> CardChange:
    """Validate the card number and build the record with the number sealed.

    :param card_number: as typed; spaces and dashes allowed
    :param collector_public_key: the collector's raw X25519 public key (from enrollment)
    :param change_id: fixed id for tests; a new UUID otherwise
    :raises UsageError: bad card number or missing fields
    """
    if not request.holder_name.strip():
        raise UsageError("the account holder's name is required (the bank checks it)")
    if not request.bank.strip():
        raise UsageError("the bank's name is required")
    digits = normalize_card_number(card_number)
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
    )
