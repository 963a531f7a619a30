"""The store interface shared by the SQLite and PostgreSQL implementations.

Theory of operation: a backend only knows how to open a transaction (:meth:`Store.transaction`)
and how to run one statement inside it (:class:`Tx`). Everything else -- migrations, agents,
idempotent record writes -- is written once here and in :mod:`collector.store.records`, in the
portable SQL of :mod:`collector.store.schema` with ``?`` placeholders that the PostgreSQL backend
rewrites. That is what makes "the same tests run against both stores" mean something.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from settleguard.collector.store import schema

Row = dict[str, Any]


class StoreError(Exception):
    """The store cannot do what was asked (bad URL, schema too new, missing row)."""


class Tx(abc.ABC):
    """One open transaction. Commits when its ``with`` block ends without an exception."""

    dialect: str

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query; return its rows as dicts."""

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """Run a query; return its first row or ``None``."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def query_rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query; return its rows as plain tuples in the SELECT's column order.

        The bulk-read path (the reconciliation loader reads every batch and credit): no dict
        per row. Backends override this with their driver's native tuples; the values are the
        same as :meth:`query`'s.
        """
        return [tuple(row.values()) for row in self.query(sql, params)]

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per parameter row (bulk INSERT/UPDATE/DELETE)."""
        for row in rows:
            self.execute(sql, row)

    def executemany_count(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Like :meth:`executemany`, returning how many rows the statements changed in all
        (an ``ON CONFLICT DO NOTHING`` that skipped a row does not count it)."""
        return sum(self.execute(sql, row) for row in rows)

    @abc.abstractmethod
    def insert_many(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        ignore_conflict: bool = False,
    ) -> int:
        """Insert ``rows`` (values in ``columns`` order) into ``table``; return how many were
        inserted (with ``ignore_conflict`` a row that clashes on a unique key is skipped and not
        counted). The bulk-write path (ingest, reconciliation): each backend writes many rows
        per statement — multi-row ``VALUES`` on SQLite, arrays through ``unnest()`` on
        PostgreSQL."""

    @abc.abstractmethod
    def reserve_ids(self, table: str, count: int) -> list[int]:
        """``count`` unused values of ``table``'s auto-numbered ``id`` for explicit inserts in
        this transaction (so a bulk insert knows its rows' ids without ``RETURNING``)."""

    def insert(
        self, table: str, row: Row, *, ignore_conflict: bool = False, returning: str = "id"
    ) -> Any:
        """Insert ``row`` into ``table`` and return its ``returning`` column (the ``id``).

        :param ignore_conflict: with ``True`` a unique-key clash inserts nothing and returns
            ``None`` instead of raising (``INSERT … ON CONFLICT DO NOTHING`` on both stores)
        :param returning: the column to return, for tables keyed by something else
        """
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608 - names are ours
        if ignore_conflict:
            sql += " ON CONFLICT DO NOTHING"
        rows = self.query(f"{sql} RETURNING {returning}", list(row.values()))
        return rows[0][returning] if rows else None


class Store(abc.ABC):
    """A collector database. Use :func:`collector.store.open_store` to get one."""

    dialect: str
    url: str

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Tx]:
        """Open a write transaction (``BEGIN IMMEDIATE`` on SQLite)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    def _table_names(self) -> set[str]:
        """Names of the tables that exist now."""

    # -- convenience --------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one read query in its own transaction."""
        with self.transaction() as tx:
            return tx.query(sql, params)

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """Run one read query; return the first row or ``None``."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def count(self, table: str) -> int:
        """Number of rows in ``table``."""
        row = self.query_one(f"SELECT COUNT(*) AS n FROM {table}")  # noqa: S608
        return int(row["n"]) if row else 0

    def iter_rows(self, table: str) -> Iterator[Row]:
        """Every row of ``table`` ordered by its first column (for tests and exports)."""
        yield from self.query(f"SELECT * FROM {table} ORDER BY 1")  # noqa: S608

    # -- migrations ---------------------------------------------------------------------

    def schema_version(self) -> int:
        """The newest applied migration, 0 for an empty database."""
        if "schema_migrations" not in self._table_names():
            return 0
        row = self.query_one("SELECT MAX(version) AS v FROM schema_migrations")
        return int(row["v"]) if row and row["v"] is not None else 0

    def migrate(self) -> list[int]:
        """Create or upgrade the schema; safe to run any number of times.

        :returns: the versions applied by this call (empty when already current)
        :raises StoreError: when the database is newer than this code
        """
        with self.transaction() as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL"
                f" DEFAULT {schema.DIALECTS[self.dialect]['now']})"
            )
            applied = {int(r["version"]) for r in tx.query("SELECT version FROM schema_migrations")}
            if applied and max(applied) > schema.latest_version():
                raise StoreError(
                    f"database schema version {max(applied)} is newer than this collector "
                    f"({schema.latest_version()}); upgrade settleguard"
                )
            done = []
            for migration in schema.pending(applied):
                for step in migration.rendered(self.dialect):
                    self._apply(tx, step)
                tx.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES (?, ?)",
                    (migration.version, migration.description),
                )
                done.append(migration.version)
            return done

    def _apply(self, tx: Tx, step: str | schema.Rebuild) -> None:
        """Run one migration step (backends that rebuild tables override this)."""
        if not isinstance(step, str):
            raise StoreError(f"{self.dialect} cannot run a table rebuild ({step.table})")
        tx.execute(step)

    def audit(self, actor: str, action: str, target: str | None, detail: str = "{}") -> None:
        """Append one line to the audit log."""
        with self.transaction() as tx:
            tx.insert(
                "audit_log", {"actor": actor, "action": action, "target": target, "detail": detail}
            )
