"""Rows the alert tests need in the collector store: merchants, settlement accounts, gaps."""

from __future__ import annotations

import itertools
import json
from typing import Any

from settleguard.collector.store import Store

_keys = itertools.count(1)


def add_merchant(
    store: Store,
    merchant_id: str = "M1",
    phones: tuple[str, ...] = ("+8613800138000",),
    *,
    tz: str = "Asia/Shanghai",
    locale: str = "zh-CN",
    account_masked: str | None = "****4321",
) -> None:
    """A merchant with phones, zone, locale and (optionally) an active settlement account."""
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO merchants (merchant_id, name, timezone, locale, phones) VALUES (?,?,?,?,?)",
            (merchant_id, f"Shop {merchant_id}", tz, locale, json.dumps(list(phones))),
        )
        if account_masked is not None:
            tx.insert(
                "settlement_accounts",
                {
                    "merchant_id": merchant_id,
                    "account_masked": account_masked,
                    "account_hmac": f"hmac-{merchant_id}",
                    "status": "active",
                    "effective_at": "2026-01-01T00:00:00Z",
                },
            )


def add_gap(
    store: Store,
    merchant_id: str = "M1",
    category: str = "MISSING",
    amount: int = 123_456,
    due: str = "2026-11-20",
    *,
    status: str = "open",
    evidence: dict[str, Any] | None = None,
) -> int:
    """An open gap as reconciliation writes it; returns its id."""
    with store.transaction() as tx:
        gap_id = tx.insert(
            "gaps",
            {
                "dedupe_key": f"{merchant_id}:{category}:{due}:{next(_keys)}",
                "merchant_id": merchant_id,
                "category": category,
                "amount": amount,
                "currency": "CNY",
                "due_at": due,
                "status": status,
                "since": f"{due}T00:00:00+00:00",
                "evidence": json.dumps(evidence or {}),
                "explanation": category,
            },
        )
    return int(gap_id)


def resolve_gap(store: Store, gap_id: int, resolution: str = "matched") -> None:
    """Mark a gap resolved the way reconciliation does."""
    with store.transaction() as tx:
        tx.execute(
            "UPDATE gaps SET status = 'resolved', resolution = ?, resolved_at = ? WHERE id = ?",
            (resolution, "2026-11-27T01:00:00+00:00", gap_id),
        )
