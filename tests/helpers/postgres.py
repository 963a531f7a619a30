"""A fresh PostgreSQL database per test, on the local server.

Reuse: ``from tests.helpers.postgres import fresh_database`` (context manager yielding a URL) or
the ``postgres_url`` fixture from :mod:`tests.helpers.fixtures`. The admin URL defaults to
``postgresql://postgres@127.0.0.1:5432/postgres`` (trust auth, as on the project machine) and can
be changed with ``SETTLEGUARD_TEST_PG_ADMIN_URL``.
"""

from __future__ import annotations

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


@contextmanager
def fresh_database(prefix: str = "sg_test") -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards (skips if no server)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _admin_connect() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _admin_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
