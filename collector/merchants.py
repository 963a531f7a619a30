"""Merchants and their settlement accounts (``settleguard collector merchants import FILE``).

Theory of operation (docs/architecture.md §5 "Reconciliation"):

* A merchants CSV (UTF-8, BOM allowed) has a header row naming these columns, in any order:
  ``merchant_id`` (required), ``name``, ``phones`` (``;``-separated), ``locale``, ``cycle``
  (``T+1`` or ``D0``), ``cutoff`` (``HH:MM`` local), ``timezone`` (IANA name), ``fees``, and
  optionally ``account`` (the settlement account number), ``account_holder`` and
  ``account_effective_at`` (ISO date or datetime, UTC when naive).
* ``fees`` is ``CARD=rate_bp[/cap[/fixed]]`` items separated by ``;``, amounts in minor units;
  ``*`` names the default rule for other card types, e.g. ``UNIONPAY=60/2000;WECHAT=38;*=60``.
* The whole file is validated first; any bad cell is a :class:`MerchantFileError` naming the
  line and column, and nothing is stored.
* An ``account`` is an operator edit of the settlement-account history: when it differs from
  the merchant's active account, a new ``active`` account is added (masked + keyed HMAC only,
  never the clear number) and the previous one retired, both with history rows.
  Agents' ``card_change`` records arrive through ingest as ``requested`` accounts (an agent
  only reports a change); :func:`set_account_status` is the operator's decision on them. A change under
  review or rejected leaves the old account in force (the engine's rule).
* Every change marks the merchant dirty for incremental reconciliation.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from settleguard.collector.account_numbers import mask_account
from settleguard.collector.reconcile.acquirers import fee_schedule_from_doc, load_profiles
from settleguard.collector.reconcile.acquirers import profile as acquirer_profile
from settleguard.collector.reconcile.model import CYCLES, FeeRule, FeeSchedule
from settleguard.collector.statements.importer import AccountHasher
from settleguard.collector.store import Store, Tx
from settleguard.collector.store.schema import ACCOUNT_STATUSES

COLUMNS = (
    "merchant_id",
    "name",
    "phones",
    "locale",
    "cycle",
    "cutoff",
    "timezone",
    "fees",
    "account",
    "account_holder",
    "account_effective_at",
    "acquirer",
)


class MerchantFileError(ValueError):
    """A merchants CSV cell (or the file) is wrong; ``line`` and ``column`` say where."""

    def __init__(self, reason: str, *, line: int | None = None, column: str | None = None):
        self.reason, self.line, self.column = reason, line, column
        where = "".join(
            [f"line {line}" if line else "", f" column {column}" if column else ""]
        ).strip()
        super().__init__(f"{where}: {reason}" if where else reason)


@dataclass(frozen=True, slots=True)
class MerchantRow:
    """One validated line of a merchants CSV (the account number only in memory)."""

    line: int
    merchant_id: str
    name: str
    phones: tuple[str, ...]
    locale: str
    cycle: str
    cutoff: str
    timezone: str
    fee_schedule: dict[str, Any]
    account: str | None
    account_holder: str | None
    account_effective_at: str | None
    acquirer: str = ""


def parse_fees(text: str) -> dict[str, Any]:
    """Parse a ``fees`` cell into the stored fee-schedule JSON object.

    :raises ValueError: with the item at fault
    """
    rules: list[dict[str, Any]] = []
    default: dict[str, Any] = {"card_type": "*", "rate_bp": 0, "cap": None, "fixed": 0}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        card, sep, spec = item.partition("=")
        parts = spec.split("/")
        if not sep or not card.strip() or len(parts) > 3:
            raise ValueError(f"fee item {item!r} is not CARD=rate_bp[/cap[/fixed]]")
        try:
            numbers = [int(p) if p.strip() else None for p in parts]
        except ValueError:
            raise ValueError(f"fee item {item!r}: amounts are integers in minor units") from None
        rate = numbers[0]
        cap = numbers[1] if len(numbers) > 1 else None
        fixed = numbers[2] if len(numbers) > 2 and numbers[2] is not None else 0
        if rate is None:
            raise ValueError(f"fee item {item!r} has no rate")
        card_type = card.strip()
        FeeRule(card_type, rate, cap, fixed)  # validates the ranges
        rule: dict[str, Any] = {"card_type": card_type, "rate_bp": rate, "cap": cap, "fixed": fixed}
        if rule["card_type"] == "*":
            default = rule
        elif any(r["card_type"] == rule["card_type"] for r in rules):
            raise ValueError(f"card type {rule['card_type']!r} listed twice")
        else:
            rules.append(rule)
    return {"rules": rules, "default": default, "refund_fee_returned": False}


def fee_schedule_from_json(text: str | None) -> FeeSchedule:
    """Build the engine's :class:`FeeSchedule` from the stored JSON (``{}``: no fees)."""
    return fee_schedule_from_doc(json.loads(text or "{}"))


def _cell(raw: dict[str, str | None], name: str) -> str:
    return (raw.get(name) or "").strip()


def _check_row(raw: dict[str, str | None], line: int) -> MerchantRow:
    def bad(column: str, reason: str) -> MerchantFileError:
        return MerchantFileError(reason, line=line, column=column)

    mid = _cell(raw, "merchant_id")
    if not mid:
        raise bad("merchant_id", "merchant id is empty")
    acquirer = _cell(raw, "acquirer")
    defaults = acquirer_profile(acquirer)
    if acquirer and defaults is None:
        known = ", ".join(sorted(load_profiles())) or "none"
        raise bad("acquirer", f"no acquirer profile {acquirer!r} (known: {known})")
    cycle = _cell(raw, "cycle") or (defaults.cycle if defaults else "T+1")
    if cycle not in CYCLES:
        raise bad("cycle", f"cycle {cycle!r} is not one of {', '.join(CYCLES)}")
    cutoff = _cell(raw, "cutoff") or (defaults.cutoff.strftime("%H:%M") if defaults else "23:00")
    try:
        time.fromisoformat(cutoff)
    except ValueError:
        raise bad("cutoff", f"cut-off {cutoff!r} is not HH:MM") from None
    zone = _cell(raw, "timezone") or "Asia/Shanghai"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise bad("timezone", f"unknown time zone {zone!r}") from None
    try:
        fees = parse_fees(_cell(raw, "fees"))
    except ValueError as exc:
        raise bad("fees", str(exc)) from None
    if not _cell(raw, "fees") and defaults is not None:
        fees = defaults.fees  # the contract says nothing: the acquirer's example terms
    account = _cell(raw, "account") or None
    if account is not None and sum(ch.isdigit() for ch in account) < 8:
        raise bad("account", "a settlement account has at least 8 digits")
    effective = _cell(raw, "account_effective_at") or None
    if effective is not None:
        try:
            effective = _utc_iso(effective)
        except ValueError:
            raise bad("account_effective_at", f"{effective!r} is not an ISO date") from None
    phones = tuple(
        p.strip() for p in _cell(raw, "phones").replace(",", ";").split(";") if p.strip()
    )
    return MerchantRow(
        line,
        mid,
        _cell(raw, "name"),
        phones,
        _cell(raw, "locale") or "zh-CN",
        cycle,
        cutoff,
        zone,
        fees,
        account,
        _cell(raw, "account_holder") or None,
        effective,
        acquirer,
    )


def _utc_iso(text: str) -> str:
    if len(text) == 10:
        parsed = datetime.combine(date.fromisoformat(text), time(0), UTC)
    else:
        parsed = datetime.fromisoformat(text)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_merchants_csv(data: bytes) -> list[MerchantRow]:
    """Validate a merchants CSV.

    :raises MerchantFileError: the first bad cell, with its line and column
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MerchantFileError(f"not UTF-8 (byte {exc.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)  # no half-quoted cells
    header = [h.strip() for h in reader.fieldnames or ()]
    if "merchant_id" not in header:
        raise MerchantFileError("header row has no merchant_id column", line=1)
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise MerchantFileError(f"unknown column {unknown[0]!r}", line=1, column=unknown[0])
    reader.fieldnames = header
    rows: list[MerchantRow] = []
    seen: dict[str, int] = {}
    try:
        for raw in reader:
            line = reader.line_num
            if not any((v or "").strip() for v in raw.values() if isinstance(v, str)):
                continue
            if None in raw:  # DictReader keeps cells beyond the header under the key None
                raise MerchantFileError(
                    f"{len(header) + len(raw[None])} cells but the header has {len(header)}"
                    " columns",
                    line=line,
                    column=f"#{len(header) + 1}",
                )
            row = _check_row(raw, line)
            if row.merchant_id in seen:
                raise MerchantFileError(
                    f"merchant {row.merchant_id} already on line {seen[row.merchant_id]}",
                    line=line,
                    column="merchant_id",
                )
            seen[row.merchant_id] = line
            rows.append(row)
    except csv.Error as exc:
        # the csv module has not counted the bad record's lines yet: it starts on the next one
        raise MerchantFileError(f"bad CSV: {exc}", line=reader.line_num + 1) from None
    return rows


def mark_dirty(tx: Tx, merchant_id: str, reason: str) -> None:
    """Queue ``merchant_id`` for the next incremental reconciliation."""
    tx.execute(
        "INSERT INTO recon_dirty (merchant_id, reason) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (merchant_id, reason),
    )


def import_merchants(
    store: Store, data: bytes, *, account_hmac: AccountHasher, actor: str = "operator"
) -> dict[str, int]:
    """Create or update the merchants of a CSV (all or nothing).

    :returns: counts ``merchants`` (rows read) and ``accounts`` (settlement accounts added)
    :raises MerchantFileError: a bad cell; nothing is stored
    """
    rows = parse_merchants_csv(data)
    accounts = 0
    with store.transaction() as tx:
        for row in rows:
            tx.execute(
                "INSERT INTO merchants (merchant_id, name, fee_schedule, settlement_cycle,"
                " cutoff_local, timezone, locale, phones, acquirer)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (merchant_id) DO UPDATE SET name = excluded.name,"
                " acquirer = excluded.acquirer,"
                " fee_schedule = excluded.fee_schedule,"
                " settlement_cycle = excluded.settlement_cycle,"
                " cutoff_local = excluded.cutoff_local, timezone = excluded.timezone,"
                " locale = excluded.locale, phones = excluded.phones",
                (
                    row.merchant_id,
                    row.name,
                    json.dumps(row.fee_schedule, sort_keys=True),
                    row.cycle,
                    row.cutoff,
                    row.timezone,
                    row.locale,
                    json.dumps(list(row.phones)),
                    row.acquirer,
                ),
            )
            mark_dirty(tx, row.merchant_id, "merchants import")
            if row.account is not None:
                accounts += _operator_account(tx, row, account_hmac(row.account), actor)
    return {"merchants": len(rows), "accounts": accounts}


def _operator_account(tx: Tx, row: MerchantRow, key: str, actor: str) -> int:
    assert row.account is not None
    active = tx.query(
        "SELECT id, account_hmac FROM settlement_accounts WHERE merchant_id = ? AND status = 'active'",
        (row.merchant_id,),
    )
    if any(a["account_hmac"] == key for a in active):
        return 0
    effective = row.account_effective_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for old in active:
        tx.execute(
            "UPDATE settlement_accounts SET status = 'retired', retired_at = ? WHERE id = ?",
            (effective, old["id"]),
        )
        _history(tx, old["id"], "retired", actor, "replaced by merchants import")
    account_id = tx.insert(
        "settlement_accounts",
        {
            "merchant_id": row.merchant_id,
            "account_masked": mask_account(row.account),
            "account_hmac": key,
            "holder_name": row.account_holder,
            "status": "active",
            "requested_at": effective,
            "effective_at": effective,
        },
    )
    _history(tx, account_id, "active", actor, "merchants import")
    return 1


def _history(tx: Tx, account_id: int, status: str, actor: str, note: str) -> None:
    tx.insert(
        "settlement_account_history",
        {"account_id": account_id, "status": status, "actor": actor, "note": note},
    )


#: The review of a settlement-account change: which decision may follow which state. A change
#: the acquirer rejected may be sent for review again (the merchant fixed the holder name).
ACCOUNT_TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"under_review", "active", "rejected"}),
    "under_review": frozenset({"active", "rejected"}),
    "active": frozenset({"retired"}),
    "rejected": frozenset({"under_review"}),
    "retired": frozenset(),
}


class AccountTransitionError(ValueError):
    """A settlement account cannot move from its state to the one asked for."""


def set_account_status(
    store: Store,
    account_id: int,
    status: str,
    *,
    actor: str,
    at: datetime | None = None,
    note: str | None = None,
    reference: str | None = None,
) -> str:
    """Operator decision on a settlement account (review a card change, approve, reject, retire).

    Becoming ``active`` sets ``effective_at`` (``at``, default now) unless already set. The
    history row keeps who, when, the note and the acquirer's reference for the decision.

    :returns: the merchant id (to re-reconcile it)
    :raises ValueError: unknown status or account
    :raises AccountTransitionError: a move :data:`ACCOUNT_TRANSITIONS` does not allow
    """
    if status not in ACCOUNT_STATUSES:
        raise ValueError(f"unknown account status {status!r}")
    when = (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with store.transaction() as tx:
        row = tx.query_one(
            "SELECT merchant_id, status FROM settlement_accounts WHERE id = ?", (account_id,)
        )
        if row is None:
            raise ValueError(f"no settlement account {account_id}")
        if status not in ACCOUNT_TRANSITIONS.get(row["status"], frozenset()):
            raise AccountTransitionError(
                f"settlement account {account_id} is {row['status']}: it cannot become {status}"
            )
        tx.execute(
            "UPDATE settlement_accounts SET status = ?,"
            " effective_at = CASE WHEN ? = 'active' AND effective_at IS NULL THEN ?"
            " ELSE effective_at END,"
            " retired_at = CASE WHEN ? = 'retired' THEN ? ELSE retired_at END WHERE id = ?",
            (status, status, when, status, when, account_id),
        )
        tx.insert(
            "settlement_account_history",
            {
                "account_id": account_id,
                "status": status,
                "actor": actor,
                "note": note,
                "changed_at": when,
                "reference": reference,
            },
        )
        mark_dirty(tx, row["merchant_id"], f"account {account_id} {status}")
    return str(row["merchant_id"])
