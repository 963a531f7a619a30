"""SQLite store (the embedded default) via sqlite-utils, in WAL mode.

One connection per thread (sqlite3 connections must not be shared across threads); writes run
in ``BEGIN IMMEDIATE`` so two ingest processes serialise on the write lock instead of failing
half-way through a batch with ``SQLITE_BUSY`` on upgrade.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils
from settleguard.collector.store import schema
from settleguard.collector.store.base import Row, Store, StoreError, Tx

_ROWS_PER_INSERT = 200  # rows per multi-row INSERT in SqliteTx.insert_many


class SqliteTx(Tx):
    """A transaction on one sqlite3 connection."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self._conn.execute(sql, tuple(params))
        if cursor.description is None:
            return []
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def query_rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def executemany_count(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        before = self._conn.total_changes
        self._conn.executemany(sql, rows)
        return self._conn.total_changes - before

    def insert_many(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        ignore_conflict: bool = False,
    ) -> int:
        # Multi-row VALUES: cheaper than executemany() of a one-row INSERT on reconciliation's
        # writes (docs/decisions/0006-hot-path-figures.md). 200 rows per statement stays far below SQLite's limit on
        # bound values (32,766 since 3.32) for any of our tables.
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608 - our names
        one = "(" + ",".join("?" * len(columns)) + ")"
        tail = " ON CONFLICT DO NOTHING" if ignore_conflict else ""
        before = self._conn.total_changes
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            part = rows[start : start + _ROWS_PER_INSERT]
            self._conn.execute(
                head + ",".join([one] * len(part)) + tail, [value for row in part for value in row]
            )
        return self._conn.total_changes - before

    def reserve_ids(self, table: str, count: int) -> list[int]:
        # Safe because every write transaction here is BEGIN IMMEDIATE: no other connection
        # can insert until we commit. AUTOINCREMENT never reuses an id, even of a deleted
        # row, so start after both the highest id and sqlite_sequence's high-water mark.
        top = self._conn.execute(
            f"SELECT MAX(COALESCE((SELECT MAX(id) FROM {table}), 0),"  # noqa: S608 - our names
            " COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0))",
            (table,),
        ).fetchone()[0]
        return list(range(top + 1, top + 1 + count))


def _create_private(path: Path) -> None:
    """Create the database file (and its folder) readable by its owner only, whatever the umask.

    It holds password and token hashes, phone numbers and sealed card numbers. SQLite gives the
    ``-wal`` and ``-shm`` files it creates later the permissions of the database file. An
    existing file keeps its mode: a deployment that shares it with a group chose so.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    os.chmod(path, 0o600)  # O_CREAT's mode is masked by the umask; never wider, but exact


class SqliteStore(Store):
    """A collector database in one SQLite file.

    :param path: database file (created with its directory if missing), or ``:memory:``
    :param busy_timeout_ms: how long a writer waits for another process's write lock
    """

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30_000) -> None:
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if self.path != ":memory:":
            _create_private(Path(self.path))

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db = sqlite_utils.Database(conn)
            if self.path != ":memory:":
                db.enable_wal()
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys = ON")
            # FULL: every commit is fsynced before it returns. The collector acks records to
            # agents (which then delete them) and reports imports right after a commit, so a
            # commit must survive a power loss, not only a crash of the process (NORMAL).
            conn.execute("PRAGMA synchronous = FULL")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection as a :class:`sqlite_utils.Database` (for ad-hoc use)."""
        return sqlite_utils.Database(self._connection())

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        conn = self._connection()
        if conn.in_transaction:  # nested: join the outer transaction
            yield SqliteTx(conn)
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield SqliteTx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def migrate(self) -> list[int]:
        """:meth:`Store.migrate` with foreign key enforcement off while it runs.

        A constraint change rebuilds a table (create the new one, copy, drop the old one,
        rename), and dropping a table that others reference would fail with enforcement on.
        The pragma has no effect inside a transaction, so it is set around the migration; a
        foreign key check then runs before enforcement is back on.

        :raises StoreError: as :meth:`Store.migrate`, or when the migrated data breaks a
            foreign key
        """
        conn = self._connection()
        conn.execute("PRAGMA foreign_keys = OFF")
        try:
            done = super().migrate()
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise StoreError(f"foreign keys broken after migrating: {broken[:5]}")
            return done
        finally:
            conn.execute("PRAGMA foreign_keys = ON")

    def _apply(self, tx: Tx, step: str | schema.Rebuild) -> None:
        if isinstance(step, str):
            tx.execute(step)
        else:
            rebuild_table(tx, step)

    def _table_names(self) -> set[str]:
        rows = self._connection().execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {r[0] for r in rows}

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def rebuild_table(tx: Tx, rebuild: schema.Rebuild) -> None:
    """Rebuild a table with a changed constraint, the way SQLite documents it ("Making Other
    Kinds Of Table Schema Changes"): new table, copy, drop, rename, indexes again. Foreign
    key enforcement must be off (:meth:`SqliteStore.migrate` sees to it).

    :raises StoreError: when the table or a text to replace is not in its definition
    """
    table = rebuild.table
    row = tx.query_one("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    if row is None:
        raise StoreError(f"cannot rebuild {table}: no such table")
    create = str(row["sql"])
    for old, new in rebuild.replace:
        if old not in create:
            raise StoreError(f"cannot rebuild {table}: {old!r} is not in its definition")
        create = create.replace(old, new, 1)
    if rebuild.append:
        create = f"{create[: create.rstrip().rindex(')')]}, {rebuild.append})"
    copy = f"{table}_rebuilt"
    create, found = re.subn(rf'^CREATE TABLE\s+"?{table}"?', f"CREATE TABLE {copy}", create)
    if not found:
        raise StoreError(f"cannot rebuild {table}: unexpected definition")
    indexes = [
        str(r["sql"])
        for r in tx.query(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
            " AND sql IS NOT NULL",
            (table,),
        )
    ]
    tx.execute(create)
    tx.execute(f"INSERT INTO {copy} SELECT * FROM {table}")  # noqa: S608 - our names
    tx.execute(f"DROP TABLE {table}")
    tx.execute(f"ALTER TABLE {copy} RENAME TO {table}")
    for index in indexes:
        tx.execute(index)
