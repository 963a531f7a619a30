"""What every ``settleguard collector`` command module needs: the app, its store, one way to fail.

Every command says on stderr which instance folder and database it uses (one line), and a
read-only command opens an existing database only: it never creates a file or a schema.

Exit codes of the collector commands: 0 done; 1 an error (one ``error: …`` line on stderr);
2 a usage error, or (``agents approve``/``revoke``) stored but the broker not updated.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import click
from flask import Flask
from settleguard.collector.settings import unknown_settings
from settleguard.collector.store import Store, StoreError
from settleguard.collector.web.app import create_app
from settleguard.collector.web.db import get_store

_PASSWORD_IN_URL = re.compile(r"(://[^:/@]+):[^@/]*@")
_POINT_AT = (
    "point at one with SETTLEGUARD_INSTANCE_PATH=FOLDER or SETTLEGUARD_DATABASE_URL=URL "
    "(`settleguard collector init-db` creates a new one)"
)


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def shown_url(url: str) -> str:
    """A database URL with its password replaced by ``***`` (safe to print)."""
    return _PASSWORD_IN_URL.sub(r"\1:***@", url)


def where(app: Flask) -> dict[str, str]:
    """``{"instance": folder, "database": URL without password}`` for messages and ``--json``."""
    return {"instance": str(app.instance_path), "database": shown_url(app.config["DATABASE_URL"])}


def app_from_context(ctx: click.Context) -> Flask:
    """The app from the context (tests pass one as ``obj``), else a fresh one, kept for reuse.

    A fresh app warns once about ``SETTLEGUARD_*`` variables no setting has (a misspelt name
    is otherwise ignored silently).
    """
    root = ctx.find_root()
    if isinstance(root.obj, Flask):
        return root.obj
    load_app = getattr(root.obj, "load_app", None)  # flask.cli.ScriptInfo from test_cli_runner
    if callable(load_app):
        app: Flask = load_app()
        return app
    for warning in unknown_settings():
        click.echo(f"warning: {warning}", err=True)
    app = create_app()
    root.obj = app
    return app


def announce(app: Flask) -> None:
    """Say on stderr which instance folder and database this command uses (one line)."""
    place = where(app)
    click.echo(f"collector: instance {place['instance']}, database {place['database']}", err=True)


def open_existing(app: Flask) -> Store:
    """The store of ``app`` for a read-only command: never creates a database or a schema.

    :raises StoreError: no database there, or no settleguard schema in it (says how to point
        at one), or it cannot be reached
    """
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise StoreError(f"no collector database at {path}; {_POINT_AT}")
    store = get_store(app)
    if store.schema_version() == 0:
        raise StoreError(f"no settleguard tables in {shown_url(url)}; {_POINT_AT}")
    store.migrate()  # an older schema is brought up to date; none is never created
    return store


def store_from_context(ctx: click.Context, *, create: bool) -> Store:
    """Say which instance and database the command uses, then open the store.

    :param create: True for commands that write (the database and schema are created or
        upgraded); False for read-only commands (:func:`open_existing`)
    """
    app = app_from_context(ctx)
    announce(app)
    try:
        if not create:
            return open_existing(app)
        store = get_store(app)
        store.migrate()
        return store
    except StoreError as exc:
        fail(str(exc))


def as_json(data: dict[str, Any], ctx: click.Context) -> dict[str, Any]:
    """``data`` with the instance and database the command used (``--json`` objects)."""
    return {**data, **where(app_from_context(ctx))}


LOCAL_TIMEZONE = ZoneInfo("Asia/Shanghai")

as_of_option = click.option(
    "--as-of",
    "as_of",
    metavar="DATE",
    default=None,
    help="act as at the end of DATE (YYYY-MM-DD) or at YYYY-MM-DDTHH:MM, Asia/Shanghai time "
    "unless an offset is given (default: now)",
)


def as_of_time(text: str | None) -> datetime:
    """The moment ``--as-of`` names, in UTC; now when it is not given.

    A date alone is the last second of that day in Asia/Shanghai (the merchants' day), so a
    re-run sees everything that day brought.
    """
    if text is None:
        return datetime.now(UTC)
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            moment = datetime.combine(day, time(23, 59, 59), tzinfo=LOCAL_TIMEZONE)
        else:
            moment = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"--as-of {text!r} is not a date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TIMEZONE)
    return moment.astimezone(UTC)
