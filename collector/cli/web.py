"""``settleguard collector users | tokens | serve``: thin click wrappers over the library."""

from __future__ import annotations

import sys

import click
from settleguard.collector.cli.context import app_from_context as _app
from settleguard.collector.cli.context import fail as _fail
from settleguard.collector.cli.context import store_from_context
from settleguard.collector.settings import (
    MIN_SECRET_KEY_LENGTH,
    ensure_secret_key,
    secret_key_problem,
)
from settleguard.collector.store import Store
from settleguard.collector.web import tokens, users


def _store(ctx: click.Context, *, create: bool = True) -> Store:
    return store_from_context(ctx, create=create)


@click.group("users")
def users_group() -> None:
    """Dashboard users: add, list, disable."""


@users_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(users.ROLES), required=True)
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.option("--actor", default="cli", help="who adds the user (audit log)")
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str, password_stdin: bool, actor: str) -> None:
    """Add a user; the password comes from stdin (--password-stdin) or a hidden prompt."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        users.add_user(_store(ctx), name, role, password, actor=actor)
    except users.UserError as exc:
        _fail(str(exc))
    click.echo(f"added {name} ({role})")


@users_group.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """List users and API tokens with role and state."""
    for row in users.list_users(_store(ctx, create=False)):
        state = "disabled" if row["disabled"] else "active"
        click.echo(f"{row['username']}\t{row['role']}\t{state}\t{row['created_at']}")


@users_group.command("disable")
@click.argument("name")
@click.option("--actor", default="cli", help="who disables the user (audit log)")
@click.pass_context
def users_disable(ctx: click.Context, name: str, actor: str) -> None:
    """Disable a user or token (token:ID): no more sign-in or API calls."""
    try:
        users.disable_user(_store(ctx), name, actor=actor)
    except users.UserError as exc:
        _fail(str(exc))
    click.echo(f"disabled {name}")


@click.group("tokens")
def tokens_group() -> None:
    """API tokens for /api/v1 (stored hashed; shown once)."""


@tokens_group.command("create")
@click.option("--role", type=click.Choice(users.ROLES), required=True)
@click.option("--label", default="", help="what the token is for (audit log)")
@click.option("--actor", default="cli", help="who creates it (audit log)")
@click.pass_context
def tokens_create(ctx: click.Context, role: str, label: str, actor: str) -> None:
    """Create an API token and print it (use it as 'Authorization: Bearer TOKEN')."""
    click.echo(tokens.create_token(_store(ctx), role, actor=actor, label=label))


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option(
    "--trusted-proxy", default=None, help="reverse proxy address to trust X-Forwarded-* from"
)
@click.pass_context
def serve_cmd(
    ctx: click.Context, host: str, port: int, threads: int, trusted_proxy: str | None
) -> None:
    """Serve the dashboard and API with waitress (production WSGI server)."""
    from settleguard.collector.web.serve import serve

    app = _app(ctx)
    ensure_secret_key(app)
    problem = secret_key_problem(app.config["SECRET_KEY"])
    if problem is not None:
        _fail(
            f"{problem}: unset SETTLEGUARD_SECRET_KEY (and SECRET_KEY in collector.toml) to use"
            f" the instance's own random key, or set one of {MIN_SECRET_KEY_LENGTH}+ characters"
        )
    _store(ctx)  # says which instance and database, creates or upgrades the schema
    click.echo(f"serving on http://{host}:{port}")
    serve(app, host=host, port=port, threads=threads, trusted_proxy=trusted_proxy)


def register(group: click.Group) -> None:
    """Add ``users``, ``tokens`` and ``serve`` to the ``collector`` group."""
    for command in (users_group, tokens_group, serve_cmd):
        group.add_command(command)
