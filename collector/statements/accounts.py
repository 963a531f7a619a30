"""Tie an export whose own account is masked to one registered settlement account.

Chinese bank exports never print the full own account: ``6217****0122`` (ICBC, CCB),
``621700*********0122``, sometimes only a holder name (``李*华``) or nothing at all (BOC
prints the card's last four in a column). The HMAC of the digits that are visible would
never equal the HMAC of the registered number, so the import is tied by what the bank
shows instead: the visible first and last digits and the holder's name, against the
settlement accounts merchants registered (masked form, holder and, when the collector can
open it, the sealed full number). Exactly one fitting account ties the import; none or
several refuse it, listing the candidates, and the operator names the merchant with
``--account-of`` (or on the upload form). Nothing is guessed.

Plain functions over plain data; :mod:`collector.statements.importer` reads the accounts from the store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from settleguard.collector.reconcile.payers import payer_matches
from settleguard.collector.statements.errors import StatementError


@dataclass(frozen=True, slots=True)
class RegisteredAccount:
    """A merchant's settlement account as the collector stores it.

    ``full_number`` is set only in memory, when the sealed number could be opened.
    """

    merchant_id: str
    account_masked: str
    account_hmac: str
    holder_name: str | None
    status: str
    full_number: str | None = None

    def describe(self) -> str:
        """``merchant M1 account ****0122 (王小明, active)`` for messages."""
        holder = f"{self.holder_name}, " if self.holder_name else ""
        return f"merchant {self.merchant_id} account {self.account_masked} ({holder}{self.status})"


def visible_digits(printed: str) -> tuple[str, str]:
    """The digits shown before and after the mask: ``6217****0122`` -> ``("6217", "0122")``."""
    compact = re.sub(r"[\s\-]", "", printed)
    if "*" not in compact:
        digits = re.sub(r"\D", "", compact)
        return digits, digits
    head, _, rest = compact.partition("*")
    tail = rest.rstrip("*").rsplit("*", 1)[-1]
    return re.sub(r"\D", "", head), re.sub(r"\D", "", tail)


def fits(account: RegisteredAccount, printed: str | None, holder: str | None) -> bool:
    """Whether ``account`` could be the one the export shows."""
    if printed is not None:
        head, tail = visible_digits(printed)
        if len(tail) < 4 or not account.account_masked.endswith(tail[-4:]):
            return False
        if account.full_number is not None:
            digits = re.sub(r"\D", "", account.full_number)
            if not (digits.startswith(head) and digits.endswith(tail)):
                return False
    if holder and account.holder_name and not payer_matches(holder, account.holder_name):
        return False
    return True


def tie_account(
    printed: str | None,
    holder: str | None,
    accounts: Sequence[RegisteredAccount],
    *,
    merchant_id: str | None,
    filename: str,
) -> RegisteredAccount:
    """Return the one registered account the export belongs to.

    :param printed: the own account as the export prints it (masked), or None
    :param holder: the holder's name as printed, or None
    :param accounts: the registered accounts to choose from (all merchants', or one's)
    :param merchant_id: the merchant the operator named (``--account-of``), or None
    :param filename: for error messages
    :raises StatementError: no account fits, or several do (the candidates are listed)
    """
    # every status counts: a statement is the account's whatever its review said, and money
    # paid to a rejected or retired card is exactly what reconciliation must see
    pool = [a for a in accounts if merchant_id is None or a.merchant_id == merchant_id]
    shown = printed or "(no account number)"
    whose = f" of merchant {merchant_id}" if merchant_id else ""
    if printed is None and merchant_id is None:
        raise StatementError(
            "the export does not show its account; name the merchant with --account-of"
            " (or choose it on the upload form)",
            filename=filename,
        )
    found = [a for a in pool if fits(a, printed, holder)]
    if not found:
        raise StatementError(
            f"the export's account {shown}{_holder(holder)} fits no registered settlement"
            f" account{whose}; register the account or check the merchant",
            filename=filename,
        )
    if len(found) > 1:
        listed = "; ".join(a.describe() for a in found[:10])
        more = f" and {len(found) - 10} more" if len(found) > 10 else ""
        hint = "--account-of MERCHANT" if merchant_id is None else "--account NUMBER"
        raise StatementError(
            f"the export's account {shown}{_holder(holder)} fits {len(found)} registered"
            f" accounts: {listed}{more}; choose one with {hint}",
            filename=filename,
        )
    return found[0]


def _holder(holder: str | None) -> str:
    return f" (holder {holder})" if holder else ""
