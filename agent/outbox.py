"""The agent's SQLite outbox: every signed record waits here until the collector acks it.

Theory of operation
-------------------
docs/architecture.md §4 ("Outbox"): a record, its canonical bytes (the sealed MQTT payload), its
signature and its outbox row are committed in **one** ``BEGIN IMMEDIATE`` transaction before
:meth:`Outbox.append` returns. The database runs in WAL mode with ``synchronous=FULL``, so a
returned ``seq`` survives power loss and ``kill -9``.

``seq`` comes from a counter row in ``meta`` that is read and advanced inside the same
transaction: it is per agent, strictly increasing, never reused (even after acked rows are
pruned) and never derived from a clock, so clock jumps cannot reorder or collide records.

A row is ``pending`` until the collector's *application* ack arrives (:meth:`apply_acks`);
a PUBACK only means the broker has it. ``accepted`` and ``duplicate`` acks make it ``acked``;
``rejected`` and ``conflict`` make it ``rejected`` with the reason kept for ``status``, and it
is not sent again. Acked rows are pruned after the retention period (:meth:`prune`).

Disk budget: when the live pages of the database exceed the budget, non-batch records are
refused with :class:`~agent.errors.StorageError` and an alarm is stored in ``meta`` (shown
by ``status`` and sent in the heartbeat). Batch summaries are always accepted: dropping a
closed batch is the one failure this product exists to prevent. A real "disk full" from
SQLite rolls the transaction back and becomes a :class:`~agent.errors.StorageError`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils
from settleguard.agent.config import AgentConfig
from settleguard.agent.errors import StorageError
from settleguard.agent.home import AgentHome

PENDING, ACKED, REJECTED = "pending", "acked", "rejected"
BATCH_RECORD_TYPES = frozenset({"batch_summary", "terminal_replaced"})

# Each entry upgrades the schema by one ``user_version``; never edit a shipped entry.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY,
            record_type TEXT NOT NULL,
            is_batch INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            created_epoch REAL NOT NULL,
            terminal_time TEXT,
            payload BLOB NOT NULL,
            signature BLOB NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'acked', 'rejected')),
            send_count INTEGER NOT NULL DEFAULT 0,
            ack_status TEXT,
            ack_reason TEXT,
            acked_at TEXT
        )""",
        "CREATE INDEX outbox_state_seq ON outbox (state, seq)",
        "INSERT INTO meta (key, value) VALUES ('next_seq', '1')",
    ),
    (
        # v2: retention pruning by ack time needs an epoch column and an index on it.
        "ALTER TABLE outbox ADD COLUMN acked_epoch REAL",
        "CREATE INDEX outbox_acked_epoch ON outbox (acked_epoch) WHERE state = 'acked'",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

# Applies one verdict to many rows; the seqs are bound as one JSON array (json_each), so the
# statement text is fixed and stays in sqlite3's statement cache.
_APPLY_ACKS_SQL = (
    "UPDATE outbox SET state = ?, ack_status = ?, ack_reason = ?, acked_at = ?, acked_epoch = ? "
    "WHERE state = 'pending' AND seq IN (SELECT value FROM json_each(?))"
)


class AckLike(Protocol):
    """What :meth:`Outbox.apply_acks` needs from :class:`protocol.acks.Ack`."""

    @property
    def seq(self) -> int: ...

    @property
    def status(self) -> str: ...

    @property
    def reason(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Sealed:
    """What the sealing callback returns for a ``seq``: the MQTT payload and its signature."""

    payload: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Numbers for ``status`` and the heartbeat."""

    pending: int
    oldest_pending_age_s: int | None
    acked: int
    rejected: int
    next_seq: int
    used_bytes: int
    disk_alarm: str | None


def _storage_error(exc: sqlite3.Error, path: Path) -> StorageError:
    text = str(exc)
    if "full" in text:
        return StorageError(f"outbox {path}: disk full ({text}); nothing was written")
    if "readonly" in text or "read-only" in text:
        return StorageError(f"outbox {path}: read-only ({text}); nothing was written")
    return StorageError(f"outbox {path}: {text}; nothing was written")


class Outbox:
    """One agent's outbox database.

    :param path: the SQLite file (created with the schema if missing)
    :param disk_budget_bytes: live-data budget; ``None`` for no budget
    :raises agent.errors.StorageError: if the file cannot be opened or migrated
    """

    def __init__(self, path: str | Path, *, disk_budget_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.disk_budget_bytes = disk_budget_bytes
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE/COMMIT ourselves.
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.db = sqlite_utils.Database(conn)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._migrate()
        except sqlite3.Error as exc:
            raise _storage_error(exc, self.path) from exc

    @property
    def conn(self) -> sqlite3.Connection:
        """The underlying connection (one per thread; the sync loop owns its own)."""
        return self.db.conn

    def close(self) -> None:
        """Close the database connection."""
        self.conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rollback on any error, SQLite errors → StorageError.

        :raises agent.errors.StorageError: on any SQLite error (disk full, read-only, locked)
        """
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _storage_error(exc, self.path) from exc
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _storage_error(exc, self.path) from exc
            raise

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"outbox {self.path} has schema v{version}, newer than this agent "
                f"(v{SCHEMA_VERSION}); upgrade the agent"
            )
        if version == SCHEMA_VERSION:
            return
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- meta ---------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """Return one ``meta`` value, or ``None``."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: dict[str, str | None]) -> None:
        """Set (or, with ``None``, delete) ``meta`` values in one transaction."""
        with self.transaction() as conn:
            self._set_meta(conn, values)

    @staticmethod
    def _set_meta(conn: sqlite3.Connection, values: dict[str, str | None]) -> None:
        for key, value in values.items():
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    # -- writing ------------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes of live pages in the main database file (free pages not counted)."""
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def append(
        self,
        seal: Callable[[int], Sealed],
        *,
        record_type: str,
        created_at: str,
        terminal_time: str | None = None,
        is_batch: bool | None = None,
        meta: dict[str, str | None] | None = None,
    ) -> int:
        """Allocate the next ``seq``, seal the record with it and commit the row.

        :param seal: called inside the transaction with the new ``seq``; returns the payload
        :param record_type: the envelope record type
        :param created_at: the agent's UTC time the record was made (also in the envelope)
        :param terminal_time: the terminal's own time for the record, if it has one
        :param is_batch: exempt from the disk budget; default: batch-like record types
        :param meta: ``meta`` values to set in the same transaction (e.g. ``terminal_id``)
        :return: the committed ``seq``
        :raises agent.errors.StorageError: disk full, budget reached (non-batch), read-only
        """
        batch = record_type in BATCH_RECORD_TYPES if is_batch is None else is_batch
        with self.transaction() as conn:
            over = self._over_budget()
            if over is not None:
                self._set_meta(conn, {"disk_alarm": over})
                if not batch:
                    conn.execute("COMMIT")  # keep the alarm, refuse the record
                    raise StorageError(f"{over}; refusing new {record_type} records")
            seq = int(conn.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0])
            sealed = seal(seq)
            conn.execute(
                "INSERT INTO outbox (seq, record_type, is_batch, created_at, created_epoch, "
                "terminal_time, payload, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    seq,
                    record_type,
                    int(batch),
                    created_at,
                    time.time(),
                    terminal_time,
                    sealed.payload,
                    sealed.signature,
                ),
            )
            self._set_meta(conn, {**(meta or {}), "next_seq": str(seq + 1)})
        return seq

    def _over_budget(self) -> str | None:
        if self.disk_budget_bytes is None:
            return None
        used = self.used_bytes()
        if used < self.disk_budget_bytes:
            return None
        return f"outbox disk budget reached ({used} of {self.disk_budget_bytes} bytes used)"

    def apply_acks(
        self, acks: Sequence[AckLike], *, meta: dict[str, str | None] | None = None
    ) -> int:
        """Apply application acks from the collector in one transaction.

        ``accepted``/``duplicate`` → acked; ``rejected``/``conflict`` → rejected (kept, shown in
        ``status``, never resent). Acks for rows that are no longer pending change nothing.

        :param meta: ``meta`` values to set in the same transaction (e.g. ``last_sync_at``)
        :return: how many pending rows changed state
        """
        now = time.time()
        now_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        # One UPDATE per distinct verdict (almost always just "accepted"), not one per ack:
        # the seqs go in as one JSON array. The first ack for a seq wins, as the collector's
        # first answer is the one that committed (a later "duplicate" changes nothing).
        groups: dict[tuple[str, str | None], list[int]] = {}
        seen: set[int] = set()
        for ack in acks:
            if ack.seq not in seen:
                seen.add(ack.seq)
                groups.setdefault((ack.status, ack.reason), []).append(ack.seq)
        changed = 0
        with self.transaction() as conn:
            for (status, reason), seqs in groups.items():
                state = ACKED if status in ("accepted", "duplicate") else REJECTED
                changed += conn.execute(
                    _APPLY_ACKS_SQL, (state, status, reason, now_iso, now, json.dumps(seqs))
                ).rowcount
            if meta:
                self._set_meta(conn, meta)
        return changed

    def mark_sent(self, seqs: Sequence[int]) -> None:
        """Count a (re)send of these rows; purely informational (``send_count``)."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE outbox SET send_count = send_count + 1 WHERE seq = ?",
                [(seq,) for seq in seqs],
            )

    def prune(self, retention_s: float, *, now: float | None = None) -> int:
        """Delete acked rows whose ack is older than ``retention_s``; clear a stale alarm.

        :return: the number of rows deleted
        """
        cutoff = (time.time() if now is None else now) - retention_s
        with self.transaction() as conn:
            deleted = conn.execute(
                "DELETE FROM outbox WHERE state = 'acked' AND acked_epoch < ?", (cutoff,)
            ).rowcount
        if self.get_meta("disk_alarm") is not None and self._over_budget() is None:
            self.set_meta({"disk_alarm": None})
        return int(deleted)

    # -- reading ------------------------------------------------------------------------

    def pending(self, *, after_seq: int = 0, limit: int = 500) -> list[tuple[int, bytes]]:
        """Pending rows with ``seq > after_seq`` in ``seq`` order, as ``(seq, payload)``."""
        rows = self.conn.execute(
            "SELECT seq, payload FROM outbox WHERE state = 'pending' AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [(int(seq), bytes(payload)) for seq, payload in rows]

    def has_pending(self) -> bool:
        """Whether any row waits for an ack (cheap: one index probe)."""
        row = self.conn.execute("SELECT 1 FROM outbox WHERE state = 'pending' LIMIT 1")
        return row.fetchone() is not None

    def rejected(self, limit: int = 20) -> list[dict[str, Any]]:
        """The most recent negatively acked records, newest first."""
        return list(
            self.db.query(
                "SELECT seq, record_type, ack_status AS status, ack_reason AS reason, acked_at "
                "FROM outbox WHERE state = 'rejected' ORDER BY seq DESC LIMIT ?",
                [limit],
            )
        )

    def stats(self, *, now: float | None = None) -> OutboxStats:
        """Counts, the age of the oldest pending row and the disk alarm."""
        counts = dict(self.conn.execute("SELECT state, count(*) FROM outbox GROUP BY state"))
        oldest = self.conn.execute(
            "SELECT min(created_epoch) FROM outbox WHERE state = 'pending'"
        ).fetchone()[0]
        current = time.time() if now is None else now
        return OutboxStats(
            pending=int(counts.get(PENDING, 0)),
            # wall-clock age; a clock jump backwards must not show a negative age
            oldest_pending_age_s=None if oldest is None else max(0, int(current - oldest)),
            acked=int(counts.get(ACKED, 0)),
            rejected=int(counts.get(REJECTED, 0)),
            next_seq=int(self.get_meta("next_seq") or 1),
            used_bytes=self.used_bytes(),
            disk_alarm=self.get_meta("disk_alarm"),
        )


def open_outbox(home: AgentHome, config: AgentConfig | None = None) -> Outbox:
    """Open the home's outbox with the configured disk budget.

    :raises agent.errors.StorageError: if it cannot be opened or migrated
    """
    budget_mb = (config or AgentConfig()).outbox.disk_budget_mb
    return Outbox(home.outbox_path, disk_budget_bytes=int(budget_mb * 1024 * 1024))
