"""The store for a request or a command (flaskr's ``db.py``).

Opened once per process on first use and shared by threads; views get it with
:func:`get_db`, commands and workers with :func:`get_store`.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from settleguard.collector.store import Store, open_store

_STORE_KEY = "settleguard.store"


def get_store(app: Flask) -> Store:
    """The process-wide store of ``app`` (opened on first use, shared by threads)."""
    store: Store | None = app.extensions.get(_STORE_KEY)
    if store is None:
        store = open_store(app.config["DATABASE_URL"])
        app.extensions[_STORE_KEY] = store
    return store


def get_db() -> Store:
    """The store for the current request (flaskr's ``get_db``)."""
    if "db" not in g:
        g.db = get_store(current_app)
    store: Store = g.db
    return store


def close_store(app: Flask) -> None:
    """Close the store of ``app`` if it was opened (tests, CLI shutdown)."""
    store: Store | None = app.extensions.pop(_STORE_KEY, None)
    if store is not None:
        store.close()
