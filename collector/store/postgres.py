"""PostgreSQL store (production and scale) via psycopg 3 with a connection pool.

The portable SQL uses ``?`` placeholders; they are rewritten to psycopg's ``%s`` here. Our SQL
never contains a literal ``?`` or ``%``, which keeps that rewrite a plain replace.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from settleguard.collector.store.base import Row, Store, StoreError, Tx

_BYTEA = 17  # pg_type OID: psycopg returns these columns as memoryview


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


_COLUMN_TYPES: dict[tuple[str, int, str, str], dict[str, str]] = {}


def _column_types(
    conn: psycopg.Connection[Any], table: str, columns: Sequence[str] = ()
) -> dict[str, str]:
    """``table``'s column types as SQL type names (``bigint``, ``text``, …), read once per
    server, database and table; the array casts in :meth:`PostgresTx.insert_many` use them.

    Read again when one of ``columns`` is not known yet (a migration added it since). A column
    whose type another process's migration changed keeps its cached cast until this process
    restarts (a value that fits the old type still converts implicitly).
    """
    key = (conn.info.host, conn.info.port, conn.info.dbname, table)
    types = _COLUMN_TYPES.get(key)
    if types is None or any(c not in types for c in columns):
        with conn.cursor() as cur:
            cur.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
                " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
                (table,),
            )
            types = {name: type_name for name, type_name in cur.fetchall()}
        if not types:
            raise ValueError(f"no table {table!r}")
        _COLUMN_TYPES[key] = types
    return types


class PostgresTx(Tx):
    """A transaction on one pooled psycopg connection."""

    dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._conn.cursor() as cur:
            cur.execute(_pg(sql), tuple(params) or None)  # type: ignore[arg-type]
            return cur.rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_pg(sql), tuple(params) or None)  # type: ignore[arg-type]
            if cur.description is None:
                return []
            return [
                {k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items()}
                for row in cur.fetchall()
            ]

    def query_rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._conn.cursor() as cur:
            cur.execute(_pg(sql), tuple(params) or None)  # type: ignore[arg-type]
            if cur.description is None:
                return []
            rows: list[tuple[Any, ...]] = cur.fetchall()
            if any(column.type_code == _BYTEA for column in cur.description):
                rows = [
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows
                ]
            return rows

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(_pg(sql), [tuple(row) for row in rows])  # type: ignore[arg-type]

    def executemany_count(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        with self._conn.cursor() as cur:  # psycopg 3 pipelines the rows: one round trip
            cur.executemany(_pg(sql), [tuple(row) for row in rows])  # type: ignore[arg-type]
            return max(cur.rowcount, 0)

    def insert_many(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        ignore_conflict: bool = False,
    ) -> int:
        # One INSERT … SELECT FROM unnest(array per column): one statement for the whole batch.
        # psycopg's pipelined executemany spends its client CPU per row in Python pipeline
        # machinery; the arrays are dumped by its C adapters.
        if not rows:
            return 0
        types = _column_types(self._conn, table, columns)
        arrays = ", ".join(f"%b::{types[c]}[]" for c in columns)  # binary: no text escaping
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)})"  # noqa: S608 - names are ours
            f" SELECT * FROM unnest({arrays})"
        )
        if ignore_conflict:
            sql += " ON CONFLICT DO NOTHING"
        with self._conn.cursor() as cur:
            per_column = [list(values) for values in zip(*rows, strict=True)]
            cur.execute(sql, per_column)  # type: ignore[arg-type]
            return max(cur.rowcount, 0)

    def reserve_ids(self, table: str, count: int) -> list[int]:
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                (table, count),
            )
            return [row[0] for row in cur.fetchall()]


CONNECT_TIMEOUT_S = 5


def _check_reachable(url: str) -> None:
    """Connect once, so a wrong URL fails at once with the server's reason.

    The pool would retry in the background and report only a timeout after 30 seconds.

    :raises StoreError: refused port, unknown host, missing database, rejected login, …
    """
    try:
        psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg.Error as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = "; ".join(lines) or type(exc).__name__
        reason = reason.split(" failed: ")[-1].replace("FATAL:", "").strip()
        try:
            info = psycopg.conninfo.conninfo_to_dict(url)
            place = (
                f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
            )
        except psycopg.Error:
            place = "the server in DATABASE_URL"
        raise StoreError(f"cannot connect to PostgreSQL at {place}: {reason}") from None


class PostgresStore(Store):
    """A collector database on a PostgreSQL server.

    :param url: ``postgresql://user@host:port/dbname``
    :param min_size: connections kept open
    :param max_size: connections at most
    """

    dialect = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8) -> None:
        self.url = url
        _check_reachable(url)
        self._pool = ConnectionPool(url, min_size=min_size, max_size=max_size, open=True)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._pool.connection() as conn, conn.transaction():
            yield PostgresTx(conn)

    def migrate(self) -> list[int]:
        """As :meth:`Store.migrate`; a migration applied here also drops the cached column types
        of :meth:`PostgresTx.insert_many`, so a changed column type is read again."""
        done = super().migrate()
        if done:
            _COLUMN_TYPES.clear()
        return done

    def _table_names(self) -> set[str]:
        rows = self.query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {r["tablename"] for r in rows}

    def close(self) -> None:
        self._pool.close()
