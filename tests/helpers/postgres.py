"""A fresh PostgreSQL database per test, on the local server.

Reuse: ``from tests.helpers.postgres import fresh_database`` (context manager yielding a URL) or
the ``postgres_url`` fixture from :mod:`tests.helpers.fixtures`. The admin URL defaults to
``postgresql://postgres@127.0.0.1:5432/postgres`` (trust auth, as on the project machine) and can
be changed with ``SETTLEGUARD_TEST_PG_ADMIN_URL``.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

ADMIN_URL = os.environ.get(
    "SETTLEGUARD_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
HOW_TO = (
    f"PostgreSQL not reachable at {ADMIN_URL}: start a local server with trust auth for user "
    "postgres (Debian: apt-get install postgresql) or point SETTLEGUARD_TEST_PG_ADMIN_URL at a "
    "server where that user may CREATE DATABASE"
)


def _admin_connect():  # type: ignore[no-untyped-def]
    import psycopg

    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        pytest.skip(HOW_TO)


def _schema_fingerprint() -> str:
    from settleguard.collector.store import schema

    text = "\n".join(f"{m.version}:{s}" for m in schema.MIGRATIONS for s in m.statements)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def migrated_template() -> str:
    """Name of a database holding the current schema, made once and cloned for each test.

    Migrating a new PostgreSQL database costs about a second under load; cloning a template is
    a file copy. The name carries a hash of every migration, so a schema change makes a new
    template; concurrent test runs race safely (build under a private name, then rename).
    """
    name = f"sg_tpl_{_schema_fingerprint()}"
    with _admin_connect() as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return name
        building = f"{name}_b{uuid.uuid4().hex[:8]}"
        admin.execute(f'CREATE DATABASE "{building}"')
    from settleguard.collector.store import open_store

    store = open_store(f"{ADMIN_URL.rsplit('/', 1)[0]}/{building}")
    try:
        store.migrate()
    finally:
        store.close()
    with _admin_connect() as admin:
        try:
            admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        except psycopg_errors().DuplicateDatabase:  # another run finished first
            admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
    return name


def psycopg_errors():  # type: ignore[no-untyped-def]
    import psycopg.errors

    return psycopg.errors


@contextmanager
def fresh_database(prefix: str = "sg_test", *, migrated: bool = False) -> Iterator[str]:
    """Create a database, yield its URL, drop it afterwards (skips if no server).

    :param migrated: clone it from :func:`migrated_template` (schema in place) instead of empty
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    template = f' TEMPLATE "{migrated_template()}"' if migrated else ""
    with _admin_connect() as admin:
        admin.execute(f'CREATE DATABASE "{name}"{template}')
    base = ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _admin_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_SESSION: dict[str, str] = {}


def _session_database() -> str:
    """This test process's migrated database (made on first use, dropped at exit)."""
    if "url" not in _SESSION:
        import atexit

        name = f"sg_run_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        with _admin_connect() as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template()}"')
        _SESSION["url"] = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"

        def drop() -> None:
            import psycopg

            try:
                with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except psycopg.Error:
                pass

        atexit.register(drop)
    return _SESSION["url"]


@contextmanager
def clean_migrated_database() -> Iterator[str]:
    """A migrated database with every table emptied (ids restart), for one test.

    Creating a PostgreSQL database costs 1-2 s here (it is fsync-bound); emptying the tables of
    one per-process database costs a few milliseconds, and isolates tests just as well because
    a process runs its tests one at a time.
    """
    import psycopg

    url = _session_database()
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        if "reset" not in _SESSION:
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                    " AND tablename <> 'schema_migrations'"
                )
            ]
            sequences = [
                row[0]
                for row in conn.execute(
                    "SELECT pg_get_serial_sequence(quote_ident(table_name), column_name)"
                    " FROM information_schema.columns WHERE table_schema = current_schema()"
                    " AND (is_identity = 'YES' OR column_default LIKE 'nextval%')"
                )
                if row[0]
            ]
            # DELETE, not TRUNCATE: TRUNCATE makes new files for every table and index, which
            # is fsync-bound; a few empty-ish tables delete in milliseconds. FK triggers are off
            # for the reset (session_replication_role), identities start at 1 again.
            _SESSION["reset"] = "; ".join(
                [f'DELETE FROM "{t}"' for t in tables]
                + [f"SELECT setval('{q}', 1, false)" for q in sequences]
            )
        # A connection a previous test leaked must not hang the suite: fail loudly instead.
        conn.execute("SET lock_timeout = '10s'")
        conn.execute("SET synchronous_commit = off")  # a throwaway test database
        conn.execute("SET session_replication_role = replica")
        with conn.transaction():
            conn.execute(_SESSION["reset"])
    yield url
