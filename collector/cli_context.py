"""What every ``settleguard collector`` command module needs: the app, and one way to fail."""

from __future__ import annotations

import sys
from typing import NoReturn

import click
from flask import Flask

from collector.app import create_app


def app_from_context(ctx: click.Context) -> Flask:
    """The app from the context (tests pass one as ``obj``), else a fresh one, kept for reuse."""
    root = ctx.find_root()
    if isinstance(root.obj, Flask):
        return root.obj
    load_app = getattr(root.obj, "load_app", None)  # flask.cli.ScriptInfo from test_cli_runner
    if callable(load_app):
        app: Flask = load_app()
        return app
    app = create_app()
    root.obj = app
    return app


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)
