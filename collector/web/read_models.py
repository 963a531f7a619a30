"""What the dashboard pages and the JSON API show: plain read functions over the store.

Views only translate these into HTML or JSON. Every list is bounded: merchant search pages by
key (``merchant_id > after``) so page 2,000 costs what page 1 does at 100k merchants; the
timeline takes at most :data:`TIMELINE_LIMIT` items of each kind, newest first.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from settleguard.collector.store import Store

OPEN_STATUSES = ("open", "acknowledged")
# NOT_DUE_YET money is expected, not at risk: shown apart on the overview.
NOT_AT_RISK = ("NOT_DUE_YET",)
TIMELINE_LIMIT = 200
PAGE_SIZE = 50
#: Digits of a phone number a viewer sees (and may search by).
PHONE_TAIL = 4


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


# Money sums in two parts that cannot overflow a 64-bit integer (SQLite's SUM raises on
# overflow): whole billions of fen and the rest, joined exactly in Python. Both stores divide
# integers toward zero, so hi * 10**9 + lo == amount for negative amounts too.
_SPLIT = 1_000_000_000
_SAFE_SUM = (
    f"COALESCE(SUM(amount / {_SPLIT}), 0) AS amount_hi,"
    f" COALESCE(SUM(amount - amount / {_SPLIT} * {_SPLIT}), 0) AS amount_lo"
)


def _join_sum(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with ``amount`` from its :data:`_SAFE_SUM` parts (and without them)."""
    hi, lo = int(row.pop("amount_hi")), int(row.pop("amount_lo"))
    row["amount"] = hi * _SPLIT + lo
    return row


def _open_by_category(store: Store) -> list[dict[str, Any]]:
    categories = [
        _join_sum(row)
        for row in store.query(
            f"SELECT category, COUNT(*) AS gaps, {_SAFE_SUM} FROM gaps"  # noqa: S608 - our SQL
            " WHERE status IN ('open', 'acknowledged') GROUP BY category"
        )
    ]
    categories.sort(key=lambda c: c["amount"], reverse=True)
    return categories


def _at_risk(categories: list[dict[str, Any]]) -> int:
    return sum(int(c["amount"]) for c in categories if c["category"] not in NOT_AT_RISK)


def money_at_risk(store: Store) -> int:
    """Money at risk, the one definition the overview and the demo's summary share: the amount
    of every unresolved gap (open or acknowledged) except ``NOT_DUE_YET`` ones, whose payout is
    not due yet (integer minor units)."""
    return _at_risk(_open_by_category(store))


def overview(store: Store, *, now: datetime, silent_after_s: int) -> dict[str, Any]:
    """Money at risk, open gaps by category, a 30-day trend, silent agents, last imports."""
    categories = _open_by_category(store)
    at_risk = _at_risk(categories)
    not_due = sum(int(c["amount"]) for c in categories if c["category"] in NOT_AT_RISK)
    start = (now - timedelta(days=29)).date()
    rows = store.query(
        f"SELECT substr(detected_at, 1, 10) AS day, COUNT(*) AS gaps, {_SAFE_SUM}"  # noqa: S608
        " FROM gaps WHERE detected_at >= ? GROUP BY substr(detected_at, 1, 10)",
        (start.isoformat(),),
    )
    by_day = {r["day"]: _join_sum(r) for r in rows}
    trend = []
    for offset in range(30):
        day = (start + timedelta(days=offset)).isoformat()
        row = by_day.get(day)
        trend.append(
            {
                "day": day,
                "gaps": int(row["gaps"]) if row else 0,
                "amount": int(row["amount"]) if row else 0,
            }
        )
    silent = store.query(
        "SELECT agent_id, merchant_id, last_seen, outbox_depth FROM agents"
        " WHERE status = 'approved' AND (last_seen IS NULL OR last_seen < ?)"
        " ORDER BY last_seen LIMIT 20",
        (_iso(now - timedelta(seconds=silent_after_s)),),
    )
    imports = store.query(
        "SELECT id, filename, file_format, kind, imported_at, status, row_count, reject_count,"
        " error FROM imports ORDER BY id DESC LIMIT 5"
    )
    return {
        "money_at_risk": at_risk,
        "not_due_yet": not_due,
        "open_gaps": sum(int(c["gaps"]) for c in categories),
        "by_category": categories,
        "trend": trend,
        "silent_agents": silent,
        "last_imports": imports,
    }


def search_merchants(
    store: Store,
    *,
    q: str = "",
    status: str = "",
    category: str = "",
    after: str = "",
    limit: int = PAGE_SIZE,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of merchants in id order and the ``after`` key of the next page (or None).

    :param q: a merchant id prefix, part of the name, or 3–4 trailing digits of a phone
        number (only the last four digits are shown, so only they are searched)
    :param status: ``at_risk`` (has unresolved gaps), ``ok`` (none), or empty for all
    :param category: only merchants with an unresolved gap of this category
    :param after: the last merchant id of the previous page
    """
    where, params = ["m.merchant_id > ?"], [after]
    q = q.strip()
    if q:
        clauses = ["m.merchant_id LIKE ? ESCAPE '\\'", "LOWER(m.name) LIKE ? ESCAPE '\\'"]
        params += [_like_prefix(q), f"%{_escape_like(q.lower())}%"]
        if q.isdigit() and 3 <= len(q) <= PHONE_TAIL:
            # Only within the tail every viewer sees: a longer suffix would let a viewer
            # recover a whole number one digit at a time.
            clauses.append("m.phones LIKE ?")
            params.append(f'%{q}"%')
        where.append("(" + " OR ".join(clauses) + ")")
    open_gap = "SELECT 1 FROM gaps g WHERE g.merchant_id = m.merchant_id AND g.status IN ('open', 'acknowledged')"
    if status == "at_risk":
        where.append(f"EXISTS ({open_gap})")
    elif status == "ok":
        where.append(f"NOT EXISTS ({open_gap})")
    if category:
        # one pass over that category's open gaps (an index), not one probe per merchant
        where.append(
            "m.merchant_id IN (SELECT merchant_id FROM gaps WHERE status IN ('open',"
            " 'acknowledged') AND category = ?)"
        )
        params.append(category)
    sql = (
        "SELECT m.merchant_id, m.name, m.settlement_cycle, m.phones,"  # noqa: S608 - fixed fragments, bound values
        f" (SELECT COUNT(*) FROM ({open_gap}) x) AS open_gaps"
        " FROM merchants m WHERE " + " AND ".join(where) + " ORDER BY m.merchant_id LIMIT ?"
    )
    rows = store.query(sql, [*params, limit + 1])
    for row in rows:
        row["phone_tail"] = [
            p[-PHONE_TAIL:] for p in _json(row.pop("phones"), []) if isinstance(p, str)
        ]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["merchant_id"] if more and rows else None)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(text: str) -> str:
    return f"{_escape_like(text)}%"


def merchant(store: Store, merchant_id: str) -> dict[str, Any] | None:
    """One merchant with its settlement accounts (masked only) and terminals."""
    row = store.query_one(
        "SELECT merchant_id, name, settlement_cycle, cutoff_local, timezone, locale, phones,"
        " created_at FROM merchants WHERE merchant_id = ?",
        (merchant_id,),
    )
    if row is None:
        return None
    row["phone_tail"] = [
        p[-PHONE_TAIL:] for p in _json(row.pop("phones"), []) if isinstance(p, str)
    ]
    row["accounts"] = store.query(
        "SELECT id, account_masked, holder_name, status, requested_at, effective_at, retired_at"
        " FROM settlement_accounts WHERE merchant_id = ? ORDER BY id",
        (merchant_id,),
    )
    row["in_force_id"] = account_in_force(row["accounts"], _iso(datetime.now(UTC)))
    row["terminals"] = store.query(
        "SELECT terminal_id, agent_id, protocol, status, replaced_by, first_seen FROM terminals"
        " WHERE merchant_id = ? ORDER BY first_seen",
        (merchant_id,),
    )
    return row


def account_in_force(accounts: list[dict[str, Any]], now: str) -> int | None:
    """The id of the one account payouts go to at ``now``: the active account that took
    effect last (another ``active`` row is superseded, or not in force yet)."""
    started = [a for a in accounts if a["status"] == "active" and (a["effective_at"] or "") <= now]
    if not started:
        return None
    return int(max(started, key=lambda a: (a["effective_at"] or "", a["id"]))["id"])


def _event(at: str | None, kind: str, title: str, **details: Any) -> dict[str, Any]:
    return {"at": at or "", "kind": kind, "title": title, "details": details}


def timeline(store: Store, merchant_id: str) -> list[dict[str, Any]]:
    """Everything that happened to a merchant's money, oldest first.

    Batches (per terminal), terminal replacements, settlement-card changes with their review
    state, expected credits (the acquirer's payout records), credits on the merchant's
    accounts, matches with their rule, gaps with their evidence, and SMS with delivery state.
    """
    n, mid = TIMELINE_LIMIT, (merchant_id,)
    events: list[dict[str, Any]] = []
    for b in store.query(
        "SELECT id, terminal_id, batch_no, closed_at, currency, total_amount, host_reconciled,"
        " source FROM batch_summaries WHERE merchant_id = ? ORDER BY closed_at DESC LIMIT ?",
        (*mid, n),
    ):
        events.append(
            _event(
                b["closed_at"],
                "batch",
                f"{b['terminal_id']} #{b['batch_no']}",
                amount=b["total_amount"],
                currency=b["currency"],
                id=b["id"],
                terminal_id=b["terminal_id"],
                host_reconciled=b["host_reconciled"],
                source=b["source"],
            )
        )
    for r in store.query(
        "SELECT old_terminal_id, new_terminal_id, replaced_at, final_batch_no FROM"
        " terminal_replacements WHERE merchant_id = ? ORDER BY id DESC LIMIT ?",
        (*mid, n),
    ):
        events.append(
            _event(
                r["replaced_at"],
                "replacement",
                f"{r['old_terminal_id']} → {r['new_terminal_id']}",
                final_batch_no=r["final_batch_no"],
            )
        )
    for c in store.query(
        "SELECT change_id, old_account_masked, new_account_masked, requested_at, effective_at,"
        " review_status FROM card_changes WHERE merchant_id = ? ORDER BY id DESC LIMIT ?",
        (*mid, n),
    ):
        events.append(
            _event(
                c["requested_at"],
                "card_change",
                f"{c['old_account_masked'] or '-'} → {c['new_account_masked']}",
                review=c["review_status"],
                effective_at=c["effective_at"],
            )
        )
    for h in store.query(
        "SELECT h.changed_at, h.status, h.actor, h.note, a.account_masked FROM"
        " settlement_account_history h JOIN settlement_accounts a ON a.id = h.account_id"
        " WHERE a.merchant_id = ? ORDER BY h.id DESC LIMIT ?",
        (*mid, n),
    ):
        events.append(
            _event(
                h["changed_at"],
                "account",
                f"{h['account_masked']}: {h['status']}",
                actor=h["actor"],
                note=h["note"],
            )
        )
    for p in store.query(
        "SELECT payout_date, net_amount, gross_amount, fee_amount, currency, account_masked,"
        " status, reason, reference FROM payout_records WHERE merchant_id = ?"
        " ORDER BY id DESC LIMIT ?",
        (*mid, n),
    ):
        events.append(
            _event(
                p["payout_date"],
                "expected",
                f"{p['status'] or ''} {p['account_masked'] or ''}",
                amount=p["net_amount"],
                currency=p["currency"],
                fees=p["fee_amount"],
                reason=p["reason"],
                reference=p["reference"],
            )
        )
    for c in store.query(
        "SELECT c.id, c.value_date, c.booked_at, c.amount, c.currency, c.account_masked,"
        " c.reference, c.status FROM credits c WHERE c.account_hmac IN (SELECT account_hmac"
        " FROM settlement_accounts WHERE merchant_id = ?) ORDER BY c.id DESC LIMIT ?",
        (*mid, n),
    ):
        events.append(
            _event(
                c["value_date"] or c["booked_at"],
                "credit",
                c["account_masked"] or "",
                amount=c["amount"],
                currency=c["currency"],
                id=c["id"],
                reference=c["reference"],
                status=c["status"],
            )
        )
    for m in store.query(
        "SELECT id, rule, expected_amount, credited_amount, residual, explanation, created_at,"
        " batch_ids, credit_ids FROM matches WHERE merchant_id = ? ORDER BY id DESC LIMIT ?",
        (*mid, n),
    ):
        events.append(
            _event(
                m["created_at"],
                "match",
                m["rule"],
                expected=m["expected_amount"],
                credited=m["credited_amount"],
                residual=m["residual"],
                explanation=m["explanation"],
            )
        )
    for g in store.query(
        "SELECT id, category, amount, currency, status, due_at, since, detected_at, reason,"
        " evidence, explanation FROM gaps WHERE merchant_id = ? ORDER BY id DESC LIMIT ?",
        (*mid, n),
    ):
        events.append(
            _event(
                g["since"] or g["detected_at"],
                "gap",
                g["category"],
                id=g["id"],
                amount=g["amount"],
                currency=g["currency"],
                status=g["status"],
                reason=g["reason"],
                evidence=_json(g["evidence"], {}),
            )
        )
    for a in store.query(
        "SELECT id, phone, state, created_at, sent_at, delivered_at, last_error, text FROM alerts"
        " WHERE merchant_id = ? ORDER BY id DESC LIMIT ?",
        (*mid, n),
    ):
        events.append(
            _event(
                a["created_at"],
                "sms",
                a["state"],
                phone=_mask_phone(a["phone"]),
                sent_at=a["sent_at"],
                delivered_at=a["delivered_at"],
                error=a["last_error"],
                text=a["text"],
            )
        )
    events.sort(key=lambda e: e["at"])
    return events


def _mask_phone(phone: str | None) -> str:
    return f"***{phone[-PHONE_TAIL:]}" if phone else ""


# Each sort is a total order (``id`` breaks ties), so a page can start after a key instead of
# an OFFSET: page 1,000 of the queue costs what page 1 does. ``key`` is the sort expression.
GAP_SORTS = {
    "money": {"order": "amount DESC, id", "key": "amount", "cmp": "<"},
    "age": {
        "order": "COALESCE(since, detected_at), id",
        "key": "COALESCE(since, detected_at)",
        "cmp": ">",
    },
}


def gap_cursor(row: dict[str, Any], sort: str) -> str:
    """The ``after`` value that continues a gap queue sorted by ``sort`` after ``row``."""
    if sort == "age":
        since = row["since"] if row["since"] is not None else row["detected_at"]
        return f"{since}~{row['id']}"
    return f"{row['amount']}~{row['id']}"


def _after_clause(sort: str, after: str) -> tuple[str, list[Any]]:
    """``(key < v OR (key = v AND id > i))`` for a cursor ``v~i``; empty for a bad cursor."""
    value, sep, last_id = after.rpartition("~")
    if not sep or not last_id.isdigit() or len(last_id) > 18:
        return "", []
    spec = GAP_SORTS[sort]
    key: Any = value
    if sort == "money":
        if not value.lstrip("-").isdigit() or len(value) > 19:
            return "", []
        key = int(value)
    # The first, redundant term is a range the index can seek to; the rest breaks ties by id.
    clause = (
        f"{spec['key']} {spec['cmp']}= ? AND ({spec['key']} {spec['cmp']} ? OR"
        f" ({spec['key']} = ? AND id > ?))"
    )
    return clause, [key, key, key, int(last_id)]


def gap_queue(
    store: Store,
    *,
    sort: str = "money",
    status: str = "open",
    category: str = "",
    merchant_id: str = "",
    after: str = "",
    limit: int = PAGE_SIZE,
) -> list[dict[str, Any]]:
    """Unresolved gaps (or ``status``) sorted by money or age, each with its evidence.

    :param after: :func:`gap_cursor` of the last row of the previous page (keyset paging;
        a malformed cursor starts at the first page)
    """
    sort = sort if sort in GAP_SORTS else "money"
    where, params = [], []
    if status == "open":
        where.append("status IN ('open', 'acknowledged')")
    elif status:
        where.append("status = ?")
        params.append(status)
    if category:
        where.append("category = ?")
        params.append(category)
    if merchant_id:
        where.append("merchant_id = ?")
        params.append(merchant_id)
    if after:
        clause, args = _after_clause(sort, after)
        if clause:
            where.append(clause)
            params += args
    sql = (
        "SELECT id, merchant_id, category, amount, currency, due_at, since, detected_at, status,"  # noqa: S608 - fixed fragments, bound values
        " reason, evidence, explanation, note, acknowledged_by, acknowledged_at, resolved_at,"
        " resolution, batch_ids, credit_ids FROM gaps"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY {GAP_SORTS[sort]['order']} LIMIT ?"
    )
    rows = store.query(sql, [*params, limit])
    for row in rows:
        row["evidence"] = _json(row["evidence"], {})
        row["batch_ids"] = _json(row["batch_ids"], [])
        row["credit_ids"] = _json(row["credit_ids"], [])
    _add_batch_sources(store, rows)
    return rows


def _add_batch_sources(store: Store, gaps: list[dict[str, Any]]) -> None:
    """Set each gap's ``batch_sources``: where its batches' figures came from (``terminal``
    link or typed ``slip``), so an operator knows how far to trust them.

    Batch keys are ``terminal#batch_no@time``; the terminal and number identify the batch.
    """
    wanted: set[tuple[str, int]] = set()
    for row in gaps:
        row["batch_sources"] = []
        for key in row["batch_ids"]:
            terminal, _, rest = str(key).partition("#")
            number = rest.partition("@")[0]
            if number.isdigit():
                wanted.add((terminal, int(number)))
    if not wanted:
        return
    terminals = sorted({t for t, _ in wanted})
    marks = ", ".join("?" * len(terminals))
    found = {
        (r["terminal_id"], int(r["batch_no"])): r["source"]
        for r in store.query(
            "SELECT terminal_id, batch_no, source FROM batch_summaries"  # noqa: S608 - placeholders only
            f" WHERE terminal_id IN ({marks})",
            terminals,
        )
    }
    for row in gaps:
        sources = set()
        for key in row["batch_ids"]:
            terminal, _, rest = str(key).partition("#")
            number = rest.partition("@")[0]
            if number.isdigit() and (terminal, int(number)) in found:
                sources.add(found[(terminal, int(number))])
        row["batch_sources"] = sorted(sources)


def gap(store: Store, gap_id: int) -> dict[str, Any] | None:
    """One gap by id with its evidence."""
    row = store.query_one("SELECT * FROM gaps WHERE id = ?", (gap_id,))
    if row is not None:
        for name, default in (("evidence", {}), ("batch_ids", []), ("credit_ids", [])):
            row[name] = _json(row[name], default)
        _add_batch_sources(store, [row])
    return row


def page_by_id(
    store: Store, sql: str, params: list[Any], *, after: int = 0, limit: int = PAGE_SIZE
) -> list[dict[str, Any]]:
    """Newest-first keyset page of a table query whose rows have an ``id`` (``after``: older than)."""
    where = " AND id < ?" if after else ""
    args = [*params, after] if after else list(params)
    return store.query(f"{sql}{where} ORDER BY id DESC LIMIT ?", [*args, limit])


def agents(store: Store) -> list[dict[str, Any]]:
    """Every agent with enrollment state, last seen, outbox depth and key state."""
    return store.query(
        "SELECT a.agent_id, a.merchant_id, a.status, a.key_id, a.enrolled_at, a.approved_at,"
        " a.revoked_at, a.last_seen, a.last_seq, a.outbox_depth, COALESCE(k.status, 'unknown')"
        " AS key_status, (SELECT COUNT(*) FROM agent_keys r WHERE r.agent_id = a.agent_id"
        " AND r.status = 'retired') AS retired_keys, (SELECT COUNT(*) FROM agent_keys r"
        " WHERE r.agent_id = a.agent_id AND r.status = 'retired' AND r.revoked_at IS NULL)"
        " AS unrevoked_keys FROM agents a LEFT JOIN agent_keys k"
        " ON k.key_id = a.key_id ORDER BY (a.status = 'pending') DESC, a.agent_id LIMIT 1000"
    )
