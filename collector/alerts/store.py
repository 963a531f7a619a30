"""The alert store: every merchant SMS, its state and its delivery, in the collector's database.

Theory of operation (docs/alerts.md): the planner enqueues, the dispatcher (:mod:`.dispatcher`)
claims, sends and records; the dashboard lists and escalates. All of them use
:class:`AlertStore` over the collector's ``alerts`` table, on SQLite or PostgreSQL through
:meth:`collector.store.Store.transaction`. Every state change is one ``UPDATE … WHERE id = ?
AND state = ?`` inside one transaction, checked against :data:`.policy.TRANSITIONS`; in
particular ``queued -> sending`` is committed *before* a gateway is called, which is what makes
"never two SMS per message" hold across a crash. Receipts are kept in ``alert_receipts`` (they
can beat the submit response and can come from another process: the HTTP callback endpoints)
and applied once the alert is ``sent``; provider ids are matched in every hex/decimal form via
``alert_message_ids``.

One SMS can speak for several gaps (the daily digest): ``alert_gaps`` records which gap reached
which stage through which alert, unique per (gap, stage), so a gap's day-1 notice is never sent
twice whichever message carried it. An alert row also keeps the template name and its
parameters, which template providers (Aliyun, Tencent Cloud) send instead of the text.

Column mapping to :class:`Alert`: ``phone`` is ``to_number``, ``last_error`` is ``error``;
``gap_id`` (the gap the reference names) is an integer in the table and a string here. Rows the
dashboard queues itself (a re-send) carry no stage, zone or ``not_before``: they read as stage
``resend``, the merchant's zone and "due since created".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from settleguard.collector.alerts.gateway import (
    DeliveryReceipt,
    SendResult,
    TemplateCall,
    message_id_aliases,
)
from settleguard.collector.alerts.policy import AlertState, transition
from settleguard.collector.store import Row, Store, Tx

__all__ = [
    "Alert",
    "AlertStore",
    "NewAlert",
    "escalated_alerts",
    "escalation_count",
    "iso",
    "mask_number",
]


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert to enqueue; ``text`` is rendered at enqueue time so what is sent is what was shown.

    :param dedupe_key: unique per message ever (``merchant|day|kind`` for planned messages)
    :param gap_id: the gap whose reference the text quotes
    :param covers: (gap id, stage) pairs this message carries; each pair is recorded once ever
    :param template: template name and parameters, for gateways that send templates
    :param locale: the language of ``text`` (default: the merchant's)
    """

    dedupe_key: str
    merchant_id: str
    gap_id: str
    stage: str
    to_number: str
    text: str
    tz: str = "Asia/Shanghai"
    not_before: datetime | None = None
    covers: tuple[tuple[str, str], ...] = ()
    template: TemplateCall | None = None
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """One row of the ``alerts`` table."""

    id: int
    dedupe_key: str
    merchant_id: str
    gap_id: str
    stage: str
    to_number: str
    text: str
    tz: str
    state: AlertState
    not_before: datetime
    created_at: datetime
    attempted_at: datetime | None
    sent_at: datetime | None
    message_ids: tuple[str, ...]
    parts: int
    error: str | None
    escalated_at: datetime | None
    escalation_reason: str | None
    template: TemplateCall | None = None

    @property
    def client_ref(self) -> str:
        """Our reference for this alert at the gateway (stable across restarts)."""
        return f"sg{self.id}"

    def summary(self) -> dict[str, object]:
        """A JSON-ready view without the message text (for lists and logs)."""
        return {
            "id": self.id,
            "merchant_id": self.merchant_id,
            "gap_id": self.gap_id,
            "stage": self.stage,
            "template": self.template.name if self.template else None,
            "to": mask_number(self.to_number),
            "state": self.state.value,
            "not_before": _iso_or_none(self.not_before),
            "sent_at": _iso_or_none(self.sent_at),
            "message_ids": list(self.message_ids),
            "parts": self.parts,
            "error": self.error,
            "escalated": self.escalated_at is not None,
            "escalation_reason": self.escalation_reason,
        }


def mask_number(number: str) -> str:
    """A phone number with all but the last 4 digits hidden."""
    return "*" * max(0, len(number) - 4) + number[-4:]


DEFAULT_TZ = "Asia/Shanghai"

# Every read goes through this projection so rows queued by others read the same way.
_SELECT = (
    "SELECT a.id, a.dedupe_key, a.merchant_id, a.gap_id, a.stage, a.phone, a.locale, a.text,"
    " a.tz, a.state, a.not_before, a.created_at, a.attempted_at, a.sent_at, a.delivered_at,"
    " a.message_ids, a.parts, a.last_error, a.escalated_at, a.escalation_reason, a.attempts,"
    " a.template, a.params, m.timezone AS merchant_tz"
    " FROM alerts a LEFT JOIN merchants m ON m.merchant_id = a.merchant_id"
)


def iso(value: datetime) -> str:
    """The collector's timestamp text: UTC, ISO-8601, microseconds, ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def parse_time(text: str | None) -> datetime | None:
    """Parse a stored timestamp (``Z`` or offset; naive text is taken as UTC)."""
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _alert(row: Row) -> Alert:
    created = parse_time(row["created_at"]) or datetime.fromtimestamp(0, UTC)
    return Alert(
        id=int(row["id"]),
        dedupe_key=row["dedupe_key"],
        merchant_id=row["merchant_id"] or "",
        gap_id="" if row["gap_id"] is None else str(row["gap_id"]),
        stage=row["stage"] or "resend",
        to_number=row["phone"] or "",
        text=row["text"],
        tz=row["tz"] or row["merchant_tz"] or DEFAULT_TZ,
        state=AlertState(row["state"]),
        not_before=parse_time(row["not_before"]) or created,
        created_at=created,
        attempted_at=parse_time(row["attempted_at"]),
        sent_at=parse_time(row["sent_at"]),
        message_ids=tuple(json.loads(row["message_ids"] or "[]")),
        parts=int(row["parts"] or 0),
        error=row["last_error"],
        escalated_at=parse_time(row["escalated_at"]),
        escalation_reason=row["escalation_reason"],
        template=_template(row["template"], row["params"]),
    )


def _template(name: str | None, params: str | None) -> TemplateCall | None:
    if not name:
        return None
    pairs = json.loads(params or "[]")
    return TemplateCall(name, tuple((str(k), str(v)) for k, v in pairs))


class _Covered(Exception):
    """A gap stage was recorded by another message first: roll this one back."""


def _gap_int(gap_id: str) -> int | None:
    """The table's integer gap id; None for ids that are not collector gaps (tests, tools)."""
    return int(gap_id) if gap_id.isdigit() else None


class AlertStore:
    """Alerts on a collector :class:`Store`.

    :param store: an opened, migrated collector store (schema version 3 or later)
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def close(self) -> None:
        """Nothing of its own to release; the collector store belongs to the caller."""

    # -- reads ------------------------------------------------------------------------------

    def _select(self, where: str, params: Sequence[Any] = (), tail: str = "") -> list[Alert]:
        rows = self.store.query(f"{_SELECT} WHERE {where} {tail}", params)
        return [_alert(row) for row in rows]

    def get(self, alert_id: int) -> Alert:
        """One alert by id.

        :raises KeyError: no such alert
        """
        found = self._select("a.id = ?", (alert_id,))
        if not found:
            raise KeyError(f"no alert with id {alert_id}")
        return found[0]

    def stages_for(self, merchant_id: str, gap_id: str) -> set[str]:
        """Stages a gap has reached, by any message (re-sends queued by operators are not)."""
        return self.stages_by_gap(merchant_id).get(gap_id, set())

    def stages_by_gap(self, merchant_id: str) -> dict[str, set[str]]:
        """Every stage each of a merchant's gaps has reached: gap id -> stages."""
        rows = self.store.query(
            "SELECT c.gap_id, c.stage FROM alert_gaps c JOIN alerts a ON a.id = c.alert_id"
            " WHERE a.merchant_id = ?",
            (merchant_id,),
        )
        found: dict[str, set[str]] = {}
        for row in rows:
            found.setdefault(str(row["gap_id"]), set()).add(row["stage"])
        return found

    def due(self, now: datetime, limit: int = 100) -> list[Alert]:
        """Queued alerts whose ``not_before`` has passed, oldest first."""
        return self._select(
            "a.state = 'queued' AND COALESCE(a.not_before, a.created_at) <= ?",
            (iso(now), limit),
            "ORDER BY COALESCE(a.not_before, a.created_at), a.id LIMIT ?",
        )

    def in_state(self, state: AlertState) -> list[Alert]:
        """All alerts in *state*."""
        return self._select("a.state = ?", (state.value,), "ORDER BY a.id")

    def list_alerts(self, limit: int = 100) -> list[Alert]:
        """The newest alerts first."""
        return self._select("1 = 1", (limit,), "ORDER BY a.id DESC LIMIT ?")

    def escalated(self) -> list[Alert]:
        """Alerts waiting for an operator (not yet decided), oldest escalation first."""
        return self._select("a.escalated_at IS NOT NULL", (), "ORDER BY a.escalated_at, a.id")

    def sent_count(
        self, since: datetime, *, to_number: str | None = None, merchant_id: str | None = None
    ) -> int:
        """Alerts handed to a gateway since *since*, for one number or one merchant."""
        column, value = (
            ("phone", to_number) if to_number is not None else ("merchant_id", merchant_id)
        )
        row = self.store.query_one(
            f"SELECT COUNT(*) AS n FROM alerts WHERE {column} = ? AND attempted_at >= ?",  # noqa: S608
            (value, iso(since)),
        )
        return int(row["n"]) if row else 0

    # -- writes -----------------------------------------------------------------------------

    def enqueue(self, alert: NewAlert, now: datetime) -> int | None:
        """Insert *alert* as ``queued`` with the gap stages it covers, all or nothing.

        :returns: the new id; None if its dedupe key exists or any (gap, stage) it covers was
            already recorded by another message (two planners racing: one wins)

        The text's locale (else the merchant's) is kept on the row for the dashboard: what
        language it went out in. The text itself was rendered by the caller.
        """
        try:
            with self.store.transaction() as tx:
                new_id = self._insert(tx, alert, now)
                if new_id is None:
                    return None
                for gap_id, stage in alert.covers:
                    kept = tx.insert(
                        "alert_gaps",
                        {"gap_id": int(gap_id), "stage": stage, "alert_id": new_id},
                        ignore_conflict=True,
                        returning="gap_id",
                    )
                    if kept is None:
                        raise _Covered
        except _Covered:
            return None
        return new_id

    def _insert(self, tx: Tx, alert: NewAlert, now: datetime) -> int | None:
        merchant = tx.query_one(
            "SELECT locale FROM merchants WHERE merchant_id = ?", (alert.merchant_id,)
        )
        call = alert.template
        new_id = tx.insert(
            "alerts",
            {
                "dedupe_key": alert.dedupe_key,
                "gap_id": _gap_int(alert.gap_id),
                "merchant_id": alert.merchant_id,
                "phone": alert.to_number,
                "locale": alert.locale or (merchant["locale"] if merchant else None),
                "text": alert.text,
                "state": AlertState.QUEUED.value,
                "stage": alert.stage,
                "tz": alert.tz,
                "not_before": iso(alert.not_before or now),
                "created_at": iso(now),
                "template": call.name if call else None,
                "params": json.dumps(
                    [list(p) for p in call.params] if call else [], ensure_ascii=False
                ),
            },
            ignore_conflict=True,
        )
        return None if new_id is None else int(new_id)

    def _move(
        self,
        tx: Tx,
        alert_id: int,
        new: AlertState,
        sets: str,
        args: Sequence[Any],
        *,
        expect: AlertState | None = None,
    ) -> None:
        row = tx.query_one("SELECT state FROM alerts WHERE id = ?", (alert_id,))
        if row is None:
            raise KeyError(f"no alert with id {alert_id}")
        current = AlertState(row["state"])
        if expect is not None and current is not expect:
            raise ValueError(f"alert {alert_id} is {current.value}, not {expect.value}")
        transition(current, new)
        # *sets* is always a literal from this module, never user input.
        tx.execute(
            f"UPDATE alerts SET state = ?, {sets} WHERE id = ? AND state = ?",  # noqa: S608
            (new.value, *args, alert_id, current.value),
        )

    def defer(self, alert_id: int, until: datetime) -> None:
        """Keep a queued alert for later (quiet hours, limits)."""
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE alerts SET not_before = ? WHERE id = ? AND state = 'queued'",
                (iso(until), alert_id),
            )

    def claim(self, alert_id: int, now: datetime) -> bool:
        """``queued -> sending``, committed before anything is handed to a gateway."""
        with self.store.transaction() as tx:
            changed = tx.execute(
                "UPDATE alerts SET state = 'sending', attempted_at = ?, attempts = attempts + 1"
                " WHERE id = ? AND state = 'queued'",
                (iso(now), alert_id),
            )
        return changed == 1

    def release(self, alert_id: int, not_before: datetime, error: str) -> None:
        """``sending -> queued``: the gateway proved nothing left."""
        with self.store.transaction() as tx:
            self._move(
                tx,
                alert_id,
                AlertState.QUEUED,
                "not_before = ?, last_error = ?",
                (iso(not_before), error),
            )

    def _add_aliases(self, tx: Tx, alert_id: int, message_ids: Sequence[str]) -> None:
        for message_id in message_ids:
            for alias in sorted(message_id_aliases(message_id)):
                tx.insert(
                    "alert_message_ids",
                    {"alias": alias, "message_id": message_id, "alert_id": alert_id},
                    ignore_conflict=True,
                    returning="alias",
                )

    def mark_sent(self, alert_id: int, result: SendResult, now: datetime) -> None:
        """``sending -> sent`` with the provider ids (and their receipt aliases)."""
        ids = list(result.message_ids)
        with self.store.transaction() as tx:
            self._move(
                tx,
                alert_id,
                AlertState.SENT,
                "sent_at = ?, message_ids = ?, provider_message_id = ?, parts = ?,"
                " last_error = NULL",
                (iso(now), json.dumps(ids), ",".join(ids) or None, result.parts),
                expect=AlertState.SENDING,
            )
            self._add_aliases(tx, alert_id, ids)

    def fail(self, alert_id: int, error: str, now: datetime) -> None:
        """``sending -> failed`` (the provider refused it for good)."""
        with self.store.transaction() as tx:
            self._move(
                tx,
                alert_id,
                AlertState.FAILED,
                "last_error = ?, finished_at = ?",
                (error, iso(now)),
            )

    def escalate(
        self, alert_id: int, reason: str, now: datetime, message_ids: tuple[str, ...] = ()
    ) -> None:
        """Flag an alert for an operator (once); record any ids we know were accepted."""
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE alerts SET escalated_at = ?, escalation_reason = ?"
                " WHERE id = ? AND escalated_at IS NULL",
                (iso(now), reason, alert_id),
            )
            if message_ids:
                tx.execute(
                    "UPDATE alerts SET message_ids = ?, provider_message_id = ? WHERE id = ?",
                    (json.dumps(list(message_ids)), ",".join(message_ids), alert_id),
                )
                self._add_aliases(tx, alert_id, message_ids)

    def resolve_uncertain(self, alert_id: int, went_out: bool, now: datetime) -> None:
        """An operator's decision on an alert stuck in ``sending``.

        The escalation is closed (``escalated_at`` cleared); the decision is appended to
        ``escalation_reason`` so the history stays readable.

        :param went_out: True marks it ``sent``; False queues it again (it will be sent)
        """
        decision = "operator: it went out" if went_out else "operator: send again"
        with self.store.transaction() as tx:
            reason_sql = "escalation_reason = COALESCE(escalation_reason, '') || ?"
            if went_out:
                self._move(
                    tx,
                    alert_id,
                    AlertState.SENT,
                    f"sent_at = ?, escalated_at = NULL, {reason_sql}",
                    (iso(now), f" [{decision}]"),
                    expect=AlertState.SENDING,
                )
            else:
                self._move(
                    tx,
                    alert_id,
                    AlertState.QUEUED,
                    f"not_before = ?, escalated_at = NULL, {reason_sql}",
                    (iso(now), f" [{decision}]"),
                    expect=AlertState.SENDING,
                )

    # -- receipts ---------------------------------------------------------------------------

    def record_receipt(self, receipt: DeliveryReceipt, now: datetime) -> bool:
        """Keep a final receipt (duplicates ignored); it may arrive before the submit response."""
        if receipt.state == "pending":
            return False
        with self.store.transaction() as tx:
            kept = tx.insert(
                "alert_receipts",
                {
                    # leading zeros dropped: every sent id has that form among its aliases
                    "message_id": receipt.message_id.strip().lower().lstrip("0") or "0",
                    "state": receipt.state,
                    "error": receipt.error,
                    "received_at": iso(now),
                },
                ignore_conflict=True,
                returning="message_id",
            )
        return kept is not None

    def apply_receipts(self, now: datetime) -> list[int]:
        """Move ``sent`` alerts whose parts all have final receipts; returns their ids."""
        rows = self.store.query(
            "SELECT a.id, a.message_ids, m.message_id, r.state, r.error FROM alerts a"
            " JOIN alert_message_ids m ON m.alert_id = a.id"
            " JOIN alert_receipts r ON r.message_id = m.alias WHERE a.state = 'sent'"
        )
        per_alert: dict[int, tuple[set[str], dict[str, tuple[str, str | None]]]] = {}
        for row in rows:
            ids, states = per_alert.setdefault(
                int(row["id"]), (set(json.loads(row["message_ids"] or "[]")), {})
            )
            states[row["message_id"]] = (row["state"], row["error"])
        moved = []
        for alert_id, (ids, states) in sorted(per_alert.items()):
            final = _final_state(ids, states)
            if final is None:
                continue
            errors = [e for s, e in states.values() if e and s != "delivered"]
            delivered_at = iso(now) if final is AlertState.DELIVERED else None
            with self.store.transaction() as tx:
                # another dispatcher may have applied the same receipts a moment ago
                changed = tx.execute(
                    "UPDATE alerts SET state = ?, finished_at = ?, delivered_at = ?,"
                    " last_error = ? WHERE id = ? AND state = 'sent'",
                    (final.value, iso(now), delivered_at, errors[0] if errors else None, alert_id),
                )
            if changed == 1:
                moved.append(alert_id)
        return moved


def _final_state(ids: set[str], states: dict[str, tuple[str, str | None]]) -> AlertState | None:
    seen = {state for state, _ in states.values()}
    if "failed" in seen:
        return AlertState.FAILED
    if "expired" in seen:
        return AlertState.EXPIRED
    if ids and ids <= {mid for mid, (s, _) in states.items() if s == "delivered"}:
        return AlertState.DELIVERED
    return None


# -- for the dashboard ------------------------------------------------------------


def escalated_alerts(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """The operators' escalation queue: alerts that need a person, oldest escalation first.

    An alert is here while ``escalated_at`` is set: delivery failed or expired, no receipt in
    time, the send outcome is unknown, or it was interrupted while sending (it is then *not*
    resent until an operator decides, see :meth:`AlertStore.resolve_uncertain`).
    Rows are JSON-ready; the phone is masked and the text left out.
    """
    alerts = AlertStore(store)._select(
        "a.escalated_at IS NOT NULL", (limit,), "ORDER BY a.escalated_at, a.id LIMIT ?"
    )
    return [
        {
            "id": a.id,
            "gap_id": int(a.gap_id) if a.gap_id.isdigit() else None,
            "merchant_id": a.merchant_id,
            "stage": a.stage,
            "phone": mask_number(a.to_number),
            "state": a.state.value,
            "escalated_at": iso(a.escalated_at) if a.escalated_at else None,
            "reason": a.escalation_reason,
            "error": a.error,
            "sent_at": _iso_or_none(a.sent_at),
            "message_ids": list(a.message_ids),
        }
        for a in alerts
    ]


def escalation_count(store: Store) -> int:
    """How many alerts wait for an operator (for a badge on the dashboard)."""
    row = store.query_one("SELECT COUNT(*) AS n FROM alerts WHERE escalated_at IS NOT NULL")
    return int(row["n"]) if row else 0
