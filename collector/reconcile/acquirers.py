"""Acquirer profiles: default cycle, cut-off, fees per bucket and the payers of their payouts.

Each ``acquirers/<name>.toml`` holds *example* terms (a merchant's contract always wins: the
merchants file sets its own cycle, cut-off and fees) and the payer names and accounts bank
statements show on the acquirer's payouts. ``SETTLEGUARD_ACQUIRERS`` may point at another folder
of files in the same format.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from settleguard.collector.reconcile.model import CYCLES, FeeRule, FeeSchedule, ReconcileInputError

DEFAULT_FOLDER = Path(__file__).with_name("acquirers")


@dataclass(frozen=True, slots=True)
class AcquirerProfile:
    """One acquirer's defaults and payers."""

    name: str
    display_name: str
    cycle: str
    cutoff: time
    payers: tuple[str, ...]
    fees: dict[str, Any]

    def fee_schedule(self) -> FeeSchedule:
        """The default fee schedule as the engine's :class:`FeeSchedule`."""
        return fee_schedule_from_doc(self.fees)


def fee_schedule_from_doc(doc: dict[str, Any]) -> FeeSchedule:
    """A schedule from the stored JSON shape ``{"rules": [...], "default": {...}, ...}``."""

    def rule(item: dict[str, Any]) -> FeeRule:
        return FeeRule(
            str(item.get("card_type", "*")),
            int(item.get("rate_bp", 0)),
            item.get("cap"),
            int(item.get("fixed", 0)),
        )

    return FeeSchedule(
        tuple(rule(r) for r in doc.get("rules", ())),
        rule(doc.get("default") or {}),
        bool(doc.get("refund_fee_returned", False)),
        int(doc.get("per_payout", 0)),
    )


def _fees(table: dict[str, Any], source: str) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    default: dict[str, Any] = {"card_type": "*", "rate_bp": 0, "cap": None, "fixed": 0}
    for card_type, spec in table.items():
        if card_type in ("per_payout", "refund_fee_returned"):
            continue
        if not isinstance(spec, dict):
            raise ReconcileInputError(f"{source}: [fees].{card_type} must be a table")
        rate, fixed = int(spec.get("rate_bp", 0)), int(spec.get("fixed", 0))
        cap = None if spec.get("cap") is None else int(spec["cap"])
        FeeRule(card_type, rate, cap, fixed)  # validates
        item: dict[str, Any] = {"card_type": card_type, "rate_bp": rate, "cap": cap, "fixed": fixed}
        if card_type == "*":
            default = item
        else:
            rules.append(item)
    return {
        "rules": rules,
        "default": default,
        "refund_fee_returned": bool(table.get("refund_fee_returned", False)),
        "per_payout": int(table.get("per_payout", 0)),
    }


def parse_profile(document: dict[str, Any], source: str) -> AcquirerProfile:
    """Build a profile from a parsed TOML document.

    :raises ReconcileInputError: naming ``source`` and the entry at fault
    """
    head = document.get("acquirer")
    if not isinstance(head, dict) or not head.get("name"):
        raise ReconcileInputError(f"{source}: missing [acquirer] name")
    cycle = str(head.get("cycle", "T+1"))
    if cycle not in CYCLES:
        raise ReconcileInputError(f"{source}: [acquirer].cycle {cycle!r} is not one of {CYCLES}")
    try:
        cutoff = time.fromisoformat(str(head.get("cutoff", "23:00")))
    except ValueError:
        raise ReconcileInputError(f"{source}: [acquirer].cutoff is not HH:MM") from None
    payers = document.get("payers", {})
    names = [str(n) for n in payers.get("names", [])]
    accounts = [str(a) for a in payers.get("accounts", [])]
    return AcquirerProfile(
        name=str(head["name"]),
        display_name=str(head.get("display_name", head["name"])),
        cycle=cycle,
        cutoff=cutoff,
        payers=tuple(names + accounts),
        fees=_fees(document.get("fees", {}), source),
    )


@lru_cache(maxsize=8)
def load_profiles(folder: str | None = None) -> dict[str, AcquirerProfile]:
    """Every profile of ``folder`` (default ``$SETTLEGUARD_ACQUIRERS`` or the shipped one)."""
    chosen = Path(folder or os.environ.get("SETTLEGUARD_ACQUIRERS") or DEFAULT_FOLDER)
    profiles: dict[str, AcquirerProfile] = {}
    for path in sorted(chosen.glob("*.toml")):
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ReconcileInputError(f"{path}: cannot read: {exc}") from exc
        profile = parse_profile(document, str(path))
        profiles[profile.name] = profile
    return profiles


def profile(name: str | None) -> AcquirerProfile | None:
    """The profile called ``name`` (None for an empty or unknown name)."""
    if not name:
        return None
    return load_profiles().get(name)
