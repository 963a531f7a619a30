"""Alert persistence: the ``AlertStore`` interface and its SQLite implementation.

The dispatcher (:mod:`.outbox`) needs only :class:`AlertStore`; the collector's store will
implement the same interface. :class:`SqliteAlertStore` keeps its own tables (``alerts`` with a
UNIQUE dedupe key, the provider message ids with their hex/decimal aliases, and receipts).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from .gateway import DeliveryReceipt, SendResult, message_id_aliases
from .policy import AlertState, dedupe_key, transition


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert to enqueue; ``text`` is rendered at enqueue time so what is sent is what was shown."""

    merchant_id: str
    gap_id: str
    stage: str
    to_number: str
    text: str
    tz: str = "Asia/Shanghai"
    not_before: datetime | None = None


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
            "to": mask_number(self.to_number),
            "state": self.state.value,
            "not_before": _iso(self.not_before),
            "sent_at": _iso(self.sent_at),
            "message_ids": list(self.message_ids),
            "parts": self.parts,
            "error": self.error,
            "escalated": self.escalated_at is not None,
            "escalation_reason": self.escalation_reason,
        }


def mask_number(number: str) -> str:
    """A phone number with all but the last 4 digits hidden."""
    return "*" * max(0, len(number) - 4) + number[-4:]


class AlertStore(Protocol):
    """Persistence the dispatcher needs; the collector's store will implement it later."""

    def enqueue(self, alert: NewAlert, now: datetime) -> int | None:
        """Insert; None if the dedupe key already exists."""
        ...

    def stages_for(self, merchant_id: str, gap_id: str) -> set[str]: ...
    def get(self, alert_id: int) -> Alert: ...
    def due(self, now: datetime, limit: int = 100) -> list[Alert]: ...
    def in_state(self, state: AlertState) -> list[Alert]: ...
    def defer(self, alert_id: int, until: datetime) -> None: ...
    def claim(self, alert_id: int, now: datetime) -> bool:
        """``queued -> sending``, committed; False if someone else had it."""
        ...

    def release(self, alert_id: int, not_before: datetime, error: str) -> None: ...
    def mark_sent(self, alert_id: int, result: SendResult, now: datetime) -> None: ...
    def fail(self, alert_id: int, error: str, now: datetime) -> None: ...
    def escalate(
        self, alert_id: int, reason: str, now: datetime, message_ids: tuple[str, ...] = ()
    ) -> None: ...
    def resolve_uncertain(self, alert_id: int, went_out: bool, now: datetime) -> None: ...
    def sent_count(
        self, since: datetime, *, to_number: str | None = None, merchant_id: str | None = None
    ) -> int: ...
    def record_receipt(self, receipt: DeliveryReceipt, now: datetime) -> bool: ...
    def apply_receipts(self, now: datetime) -> list[int]: ...
    def list_alerts(self, limit: int = 100) -> list[Alert]: ...


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    merchant_id TEXT NOT NULL, gap_id TEXT NOT NULL, stage TEXT NOT NULL,
    to_number TEXT NOT NULL, text TEXT NOT NULL, tz TEXT NOT NULL,
    state TEXT NOT NULL, not_before TEXT NOT NULL, created_at TEXT NOT NULL,
    attempted_at TEXT, sent_at TEXT, finished_at TEXT,
    message_ids TEXT NOT NULL DEFAULT '[]', parts INTEGER NOT NULL DEFAULT 0,
    error TEXT, escalated_at TEXT, escalation_reason TEXT
);
CREATE INDEX IF NOT EXISTS alerts_due ON alerts (state, not_before);
CREATE TABLE IF NOT EXISTS alert_message_ids (
    alias TEXT NOT NULL, message_id TEXT NOT NULL, alert_id INTEGER NOT NULL,
    PRIMARY KEY (alias, message_id)
);
CREATE TABLE IF NOT EXISTS alert_receipts (
    message_id TEXT NOT NULL, state TEXT NOT NULL, error TEXT, received_at TEXT NOT NULL,
    PRIMARY KEY (message_id, state)
);
"""


class SqliteAlertStore:
    """:class:`AlertStore` on SQLite (WAL, every write in ``BEGIN IMMEDIATE``)."""

    def __init__(self, path: str | Path) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def _write(self, sql: str, args: tuple[object, ...]) -> sqlite3.Cursor:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            cursor = self.db.execute(sql, args)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return cursor

    def _row(self, row: sqlite3.Row) -> Alert:
        return Alert(
            row["id"],
            row["dedupe_key"],
            row["merchant_id"],
            row["gap_id"],
            row["stage"],
            row["to_number"],
            row["text"],
            row["tz"],
            AlertState(row["state"]),
            datetime.fromisoformat(row["not_before"]),
            datetime.fromisoformat(row["created_at"]),
            _dt(row["attempted_at"]),
            _dt(row["sent_at"]),
            tuple(json.loads(row["message_ids"])),
            row["parts"],
            row["error"],
            _dt(row["escalated_at"]),
            row["escalation_reason"],
        )

    def _move(self, alert_id: int, new: AlertState, sets: str, args: tuple[object, ...]) -> None:
        current = self.get(alert_id).state
        transition(current, new)
        # *sets* is always a literal from this module, never user input.
        self._write(
            f"UPDATE alerts SET state=?, {sets} WHERE id=? AND state=?",  # noqa: S608
            (new.value, *args, alert_id, current.value),
        )

    def enqueue(self, alert: NewAlert, now: datetime) -> int | None:
        """Insert *alert* as ``queued``; None if its dedupe key already exists."""
        key = dedupe_key(alert.merchant_id, alert.gap_id, alert.stage)
        cursor = self._write(
            "INSERT OR IGNORE INTO alerts (dedupe_key, merchant_id, gap_id, stage, to_number, "
            "text, tz, state, not_before, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                key,
                alert.merchant_id,
                alert.gap_id,
                alert.stage,
                alert.to_number,
                alert.text,
                alert.tz,
                AlertState.QUEUED.value,
                _iso(alert.not_before or now),
                _iso(now),
            ),
        )
        return cursor.lastrowid if cursor.rowcount == 1 else None

    def stages_for(self, merchant_id: str, gap_id: str) -> set[str]:
        """Stages already enqueued for a gap."""
        rows = self.db.execute(
            "SELECT stage FROM alerts WHERE merchant_id=? AND gap_id=?", (merchant_id, gap_id)
        )
        return {row["stage"] for row in rows}

    def get(self, alert_id: int) -> Alert:
        """One alert by id.

        :raises KeyError: no such alert
        """
        row = self.db.execute("SELECT * FROM alerts WHERE id=?", (alert_id,)).fetchone()
        if row is None:
            raise KeyError(f"no alert with id {alert_id}")
        return self._row(row)

    def due(self, now: datetime, limit: int = 100) -> list[Alert]:
        """Queued alerts whose ``not_before`` has passed, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM alerts WHERE state='queued' AND not_before<=? ORDER BY not_before, id "
            "LIMIT ?",
            (_iso(now), limit),
        )
        return [self._row(row) for row in rows]

    def in_state(self, state: AlertState) -> list[Alert]:
        """All alerts in *state*."""
        rows = self.db.execute("SELECT * FROM alerts WHERE state=? ORDER BY id", (state.value,))
        return [self._row(row) for row in rows]

    def defer(self, alert_id: int, until: datetime) -> None:
        """Keep a queued alert for later (quiet hours, limits)."""
        self._write(
            "UPDATE alerts SET not_before=? WHERE id=? AND state='queued'", (_iso(until), alert_id)
        )

    def claim(self, alert_id: int, now: datetime) -> bool:
        """``queued -> sending`` and commit, before anything is handed to a gateway."""
        cursor = self._write(
            "UPDATE alerts SET state='sending', attempted_at=? WHERE id=? AND state='queued'",
            (_iso(now), alert_id),
        )
        return cursor.rowcount == 1

    def release(self, alert_id: int, not_before: datetime, error: str) -> None:
        """``sending -> queued``: the gateway proved nothing left."""
        self._move(alert_id, AlertState.QUEUED, "not_before=?, error=?", (_iso(not_before), error))

    def mark_sent(self, alert_id: int, result: SendResult, now: datetime) -> None:
        """``sending -> sent`` with the provider ids (and their receipt aliases)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            cursor = self.db.execute(
                "UPDATE alerts SET state='sent', sent_at=?, message_ids=?, parts=?, error=NULL "
                "WHERE id=? AND state='sending'",
                (_iso(now), json.dumps(list(result.message_ids)), result.parts, alert_id),
            )
            if cursor.rowcount != 1:
                raise ValueError(f"alert {alert_id} is not in 'sending'")
            self._add_aliases(alert_id, result.message_ids)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _add_aliases(self, alert_id: int, message_ids: tuple[str, ...]) -> None:
        for message_id in message_ids:
            for alias in message_id_aliases(message_id):
                self.db.execute(
                    "INSERT OR IGNORE INTO alert_message_ids VALUES (?,?,?)",
                    (alias, message_id, alert_id),
                )

    def fail(self, alert_id: int, error: str, now: datetime) -> None:
        """``sending -> failed`` (the provider refused it for good)."""
        self._move(alert_id, AlertState.FAILED, "error=?, finished_at=?", (error, _iso(now)))

    def escalate(
        self, alert_id: int, reason: str, now: datetime, message_ids: tuple[str, ...] = ()
    ) -> None:
        """Flag an alert for an operator (once); record any ids we know were accepted."""
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(
            "UPDATE alerts SET escalated_at=?, escalation_reason=? WHERE id=? AND "
            "escalated_at IS NULL",
            (_iso(now), reason, alert_id),
        )
        if message_ids:
            self.db.execute(
                "UPDATE alerts SET message_ids=? WHERE id=?",
                (json.dumps(list(message_ids)), alert_id),
            )
            self._add_aliases(alert_id, message_ids)
        self.db.execute("COMMIT")

    def escalated(self) -> list[Alert]:
        """Alerts waiting for an operator (the dashboard's queue)."""
        rows = self.db.execute("SELECT * FROM alerts WHERE escalated_at IS NOT NULL ORDER BY id")
        return [self._row(row) for row in rows]

    def resolve_uncertain(self, alert_id: int, went_out: bool, now: datetime) -> None:
        """An operator's decision on an alert stuck in ``sending``.

        :param went_out: True marks it ``sent``; False puts it back in the queue (resend)
        """
        if went_out:
            self._move(alert_id, AlertState.SENT, "sent_at=?", (_iso(now),))
        else:
            self._move(alert_id, AlertState.QUEUED, "not_before=?", (_iso(now),))

    def sent_count(
        self, since: datetime, *, to_number: str | None = None, merchant_id: str | None = None
    ) -> int:
        """Alerts handed to a gateway since *since*, for one number or one merchant."""
        column, value = (
            ("to_number", to_number) if to_number is not None else ("merchant_id", merchant_id)
        )
        row = self.db.execute(
            f"SELECT count(*) FROM alerts WHERE {column}=? AND attempted_at>=?",  # noqa: S608
            (value, _iso(since)),
        ).fetchone()
        return int(row[0])

    def record_receipt(self, receipt: DeliveryReceipt, now: datetime) -> bool:
        """Keep a receipt (duplicates ignored); it may arrive before the submit response."""
        if receipt.state == "pending":
            return False
        alias = receipt.message_id.strip().lower()
        cursor = self._write(
            "INSERT OR IGNORE INTO alert_receipts VALUES (?,?,?,?)",
            (alias, receipt.state, receipt.error, _iso(now)),
        )
        return cursor.rowcount == 1

    def apply_receipts(self, now: datetime) -> list[int]:
        """Move ``sent`` alerts whose parts all have final receipts; returns their ids."""
        rows = self.db.execute(
            "SELECT a.id, a.message_ids, m.message_id, r.state, r.error FROM alerts a "
            "JOIN alert_message_ids m ON m.alert_id=a.id "
            "JOIN alert_receipts r ON r.message_id=m.alias WHERE a.state='sent'"
        ).fetchall()
        per_alert: dict[int, tuple[set[str], dict[str, tuple[str, str | None]]]] = {}
        for row in rows:
            ids, states = per_alert.setdefault(row["id"], (set(json.loads(row["message_ids"])), {}))
            states[row["message_id"]] = (row["state"], row["error"])
        moved = []
        for alert_id, (ids, states) in per_alert.items():
            final = _final_state(ids, states)
            if final is not None:
                errors = [e for s, e in states.values() if e and s != "delivered"]
                self._move(
                    alert_id,
                    final,
                    "finished_at=?, error=?",
                    (_iso(now), errors[0] if errors else None),
                )
                moved.append(alert_id)
        return moved

    def list_alerts(self, limit: int = 100) -> list[Alert]:
        """The newest alerts first."""
        rows = self.db.execute("SELECT * FROM alerts ORDER BY id DESC LIMIT ?", (limit,))
        return [self._row(row) for row in rows]


def _final_state(ids: set[str], states: dict[str, tuple[str, str | None]]) -> AlertState | None:
    seen = {state for state, _ in states.values()}
    if "failed" in seen:
        return AlertState.FAILED
    if "expired" in seen:
        return AlertState.EXPIRED
    if ids and ids <= {mid for mid, (s, _) in states.items() if s == "delivered"}:
        return AlertState.DELIVERED
    return None
