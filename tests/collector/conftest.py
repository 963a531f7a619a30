"""Collector fixtures: the store on both backends and flaskr-style app/client/runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from settleguard.collector.store import Store, open_store
from settleguard.collector.web.app import create_app
from settleguard.collector.web.db import close_store, get_store

from tests.helpers.postgres import clean_migrated_database, fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL on each backend, schema in place (PostgreSQL skips if no server).

    PostgreSQL: this process's migrated database with every table emptied (creating a database
    per test costs seconds); SQLite files start empty and ``store``/``app`` migrate them.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'collector.db'}"
    else:
        with clean_migrated_database() as url:
            yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, EMPTY database URL on each backend, for migration tests."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        with fresh_database() as url:
            yield url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated store, once per backend."""
    opened = open_store(database_url)
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    """The collector app with a migrated database and its instance folder in ``tmp_path``."""
    application = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": database_url}
    )
    get_store(application).migrate()
    yield application
    close_store(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()
