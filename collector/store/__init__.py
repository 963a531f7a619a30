"""The collector's database: one schema on SQLite (default) or PostgreSQL.

>>> store = open_store("sqlite:///:memory:")
>>> store.migrate()
[1]
"""

from __future__ import annotations

from settleguard.collector.store.base import Row, Store, StoreError, Tx


def open_store(url: str) -> Store:
    """Open the store named by a database URL.

    :param url: ``sqlite:///relative/or/absolute/path.db``, ``sqlite:///:memory:`` or
        ``postgresql://user@host:port/db`` (``postgres://`` is accepted too)
    :raises StoreError: for any other scheme
    """
    if url.startswith("sqlite:///"):
        from settleguard.collector.store.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from settleguard.collector.store.postgres import PostgresStore

        return PostgresStore(url)
    raise StoreError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://…")


__all__ = ["Row", "Store", "StoreError", "Tx", "open_store"]
