"""``settleguard collector …``: thin click wrappers over library functions (like sqlite-utils).

Each command builds the app with :func:`collector.web.app.create_app` (so the same configuration
rules apply: defaults → instance file → ``SETTLEGUARD_*``) and calls one library function.
Each says on stderr which instance and database it uses; errors print one ``error: …`` line
(exit codes in :mod:`collector.cli.context`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from flask import Flask
from settleguard.collector.cli.context import announce, open_existing
from settleguard.collector.cli.context import app_from_context as _app
from settleguard.collector.cli.context import as_json as with_place
from settleguard.collector.cli.context import fail as _fail
from settleguard.collector.cli.context import store_from_context as _store
from settleguard.collector.enrollment import broker
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.enrollment.keys import CollectorKeys, KeyFileError, init_keys, load_keys
from settleguard.collector.ingest.bundles import import_bundle_file
from settleguard.collector.ingest.worker import WorkerError, run_workers
from settleguard.collector.store import StoreError
from settleguard.collector.web.db import get_store
from settleguard.protocol.enroll_token import is_loopback
from settleguard.protocol.envelope import BundleError

from settleguard.cli_errors import ErrorStyleGroup


@click.group("collector", cls=ErrorStyleGroup)
def collector() -> None:
    """Run and administer the collector (ingest, store, enrollment, broker)."""


@collector.command("init-db")
@click.pass_context
def init_db(ctx: click.Context) -> None:
    """Create or upgrade the database schema (safe to run twice)."""
    app = _app(ctx)
    announce(app)
    try:
        store = get_store(app)
        applied = store.migrate()
    except StoreError as exc:
        _fail(str(exc))
    done = ", ".join(map(str, applied)) if applied else "nothing to do"
    click.echo(f"database {store.dialect} at schema version {store.schema_version()} ({done})")


@collector.group("agents")
def agents() -> None:
    """Enrollment tokens, approval, revocation and the agent list."""


@agents.command("token")
@click.option("--merchant", "merchant_id", required=True, help="merchant id (MID)")
@click.option("--ttl", "ttl_s", type=int, default=None, help="seconds until it expires")
@click.pass_context
def agents_token(ctx: click.Context, merchant_id: str, ttl_s: int | None) -> None:
    """Print a one-time enrollment token for a merchant's agent."""
    app = _app(ctx)
    store = _store(ctx, create=True)
    ttl = ttl_s if ttl_s is not None else int(app.config["ENROLL_TOKEN_TTL_S"])
    try:
        keys, _ = init_keys(Path(app.config["KEYS_DIR"]))
        token = enrollment.issue_token(
            store, merchant_id, ttl_s=ttl, sealing_public=keys.sealing_public
        )
        click.echo(token)
    except (enrollment.EnrollmentError, KeyFileError) as exc:
        _fail(str(exc))


def _change_status(ctx: click.Context, agent_id: str, actor: str, *, approve: bool) -> None:
    """Approve or revoke, update the broker, and say what was and was not done."""
    app = _app(ctx)
    store = _store(ctx, create=False)
    change = enrollment.approve if approve else enrollment.revoke
    try:
        change(store, agent_id, actor=actor)
    except enrollment.EnrollmentError as exc:
        _fail(str(exc))
    done = "approved" if approve else "revoked"
    update = enrollment.update_broker(store, app.config)
    if update.missing is None:
        click.echo(
            f"{done} {agent_id}; broker password file {update.password_file} updated "
            "and the broker reloaded"
        )
        return
    if update.written:
        click.echo(
            f"{done} {agent_id} in the database; broker password file "
            f"{update.password_file} updated"
        )
    else:
        click.echo(f"{done} {agent_id} in the database only")
    click.echo(f"error: broker not updated: {update.missing}", err=True)
    ctx.exit(2)


@agents.command("approve")
@click.argument("agent_id")
@click.option("--actor", default="cli", help="who approves (audit log)")
@click.pass_context
def agents_approve(ctx: click.Context, agent_id: str, actor: str) -> None:
    """Approve an enrolled agent and add it to the broker password file.

    Exit 2 when the approval is stored but the broker could not be updated or reloaded (the
    message says how to finish).
    """
    _change_status(ctx, agent_id, actor, approve=True)


@agents.command("revoke")
@click.argument("agent_id")
@click.option("--actor", default="cli", help="who revokes (audit log)")
@click.pass_context
def agents_revoke(ctx: click.Context, agent_id: str, actor: str) -> None:
    """Revoke an agent: remove its broker login, reject its records from now on.

    Exit 2 when the revocation is stored but the broker could not be updated or reloaded.
    """
    _change_status(ctx, agent_id, actor, approve=False)


@agents.command("revoke-key")
@click.argument("agent_id")
@click.option("--actor", default="cli", help="who revokes (audit log)")
@click.pass_context
def agents_revoke_key(ctx: click.Context, agent_id: str, actor: str) -> None:
    """Revoke the keys an agent retired by rotating: they sign no later record.

    For a leaked key: run `settleguard agent rotate-key` on the agent, wait until the
    collector shows the new key, then run this. Records the old key signed beyond the last seq
    the collector had seen at the rotation are refused from now on (reason retired_key).
    """
    try:
        revoked = enrollment.revoke_retired_keys(get_store(_app(ctx)), agent_id, actor=actor)
    except enrollment.EnrollmentError as exc:
        _fail(str(exc))
    if not revoked:
        _fail(f"agent {agent_id} has no retired key left to revoke; rotate its key first")
    click.echo(f"revoked {', '.join(revoked)} of {agent_id}")


@agents.command("list")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
@click.pass_context
def agents_list(ctx: click.Context, as_json: bool) -> None:
    """List agents with status, key id, last seen and last seq."""
    rows = enrollment.list_agents(_store(ctx, create=False))
    if as_json:
        click.echo(json.dumps(with_place({"agents": rows}, ctx), default=str))
        return
    for row in rows:
        click.echo(
            f"{row['agent_id']:<24} {row['merchant_id']:<16} {row['status']:<9} "
            f"{row['key_id']} last_seen={row['last_seen'] or '-'} last_seq={row['last_seq']}"
        )


@collector.group("keys")
def keys() -> None:
    """The collector's sealing key pair and HMAC key."""


@keys.command("init")
@click.pass_context
def keys_init(ctx: click.Context) -> None:
    """Create the key files (mode 0600) unless they exist."""
    app = _app(ctx)
    announce(app)
    directory = Path(app.config["KEYS_DIR"])
    try:
        _, created = init_keys(directory)
    except KeyFileError as exc:
        _fail(str(exc))
    click.echo(f"{'created' if created else 'already present'}: keys in {directory}")


@collector.command("broker-config")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True)
@click.option("--port", type=int, default=1883)
@click.option("--bind", default="127.0.0.1")
@click.option("--collector-password", envvar="SETTLEGUARD_MQTT_PASSWORD", default=None)
@click.option(
    "--tls-cafile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="make the listener TLS (mqtts): CA that signs clients' certificates",
)
@click.option(
    "--tls-certfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the broker's certificate (PEM)",
)
@click.option(
    "--tls-keyfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the broker's private key (PEM)",
)
@click.option(
    "--require-certificate",
    is_flag=True,
    help="TLS: clients also need a certificate from --tls-cafile (and still log in "
    "with user name and password)",
)
@click.option(
    "--run-as",
    default=None,
    metavar="USER",
    help="the user Mosquitto drops to when started as root (Debian: mosquitto); "
    "passwd and acl are given to it",
)
@click.option(
    "--pid-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="where the broker writes its pid (default: run/mosquitto.pid in --out; a "
    "new folder is given to --run-as); approve and revoke signal that pid",
)
@click.pass_context
def broker_config(
    ctx: click.Context,
    out_dir: Path,
    port: int,
    bind: str,
    collector_password: str | None,
    tls_cafile: Path | None,
    tls_certfile: Path | None,
    tls_keyfile: Path | None,
    require_certificate: bool,
    run_as: str | None,
    pid_file: Path | None,
) -> None:
    """Write mosquitto.conf, acl and passwd (approved agents + the collector's user).

    With --tls-cafile/--tls-certfile/--tls-keyfile the listener speaks TLS; the collector then
    needs SETTLEGUARD_MQTT_TLS_CA_FILE (and, with --require-certificate, its own certificate in
    SETTLEGUARD_MQTT_TLS_CERT_FILE / _KEY_FILE). A plain-TCP listener on an address other than
    loopback is written with a warning: passwords and records would cross the network in clear.
    """
    tls_files = (tls_cafile, tls_certfile, tls_keyfile)
    if any(tls_files) and not all(tls_files):
        _fail("TLS needs all three of --tls-cafile, --tls-certfile and --tls-keyfile")
    if require_certificate and not all(tls_files):
        _fail(
            "--require-certificate needs the TLS files (--tls-cafile, --tls-certfile, --tls-keyfile)"
        )
    tls = None
    if tls_cafile and tls_certfile and tls_keyfile:
        tls = broker.TlsListener(
            cafile=tls_cafile.resolve(),
            certfile=tls_certfile.resolve(),
            keyfile=tls_keyfile.resolve(),
            require_certificate=require_certificate,
        )
    app = _app(ctx)
    announce(app)
    collector_user = app.config["MQTT_USERNAME"]
    password = collector_password or app.config.get("MQTT_PASSWORD")
    generated = password is None
    password = password or broker.new_password()
    rows: list[dict[str, Any]] = []
    try:  # no database yet: no approved agents, and none is created here
        rows = open_existing(app).query(
            "SELECT agent_id, broker_password FROM agents WHERE status = 'approved'"
        )
    except StoreError as exc:
        click.echo(f"warning: {exc}; passwd gets the collector's user only", err=True)
    agents = {r["agent_id"]: r["broker_password"] for r in rows if r["broker_password"]}
    if agents.pop(collector_user, None) is not None:
        click.echo(
            f"warning: agent {collector_user!r} has the collector's broker user name; "
            "it is left out of passwd (revoke it)",
            err=True,
        )
    try:
        files = broker.write_broker_config(
            out_dir,
            port=port,
            bind=bind,
            collector_user=collector_user,
            collector_password_hash=broker.hash_password(password),
            agents=agents,
            pid_file=(pid_file or out_dir / "run" / "mosquitto.pid").resolve(),
            run_as=run_as,
            tls=tls,
        )
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    click.echo(f"wrote {files.config}, {files.acl_file}, {files.password_file}")
    if run_as and os.geteuid() != 0 and broker.owner_of(run_as)[0] != os.geteuid():
        click.echo(
            f"warning: not root, so passwd and acl stay yours; the broker's user {run_as} "
            f"must be able to read them (as root: chown {run_as} {files.password_file} "
            f"{files.acl_file})",
            err=True,
        )
    if tls is None and not is_loopback(bind):
        click.echo(
            f"warning: plain-TCP listener on {bind}:{port}: broker passwords and records "
            "cross the network unencrypted; use --tls-cafile/--tls-certfile/--tls-keyfile "
            "or bind to 127.0.0.1",
            err=True,
        )
    if generated:
        click.echo(f"collector broker password (set SETTLEGUARD_MQTT_PASSWORD): {password}")


def _keys_or_none(app: Flask) -> CollectorKeys | None:
    try:
        return load_keys(Path(app.config["KEYS_DIR"]))
    except KeyFileError as exc:
        click.echo(f"warning: {exc}; card changes are stored without account HMAC", err=True)
        return None


@collector.command("ingest")
@click.option("--workers", type=int, default=1, show_default=True, help="worker processes")
@click.pass_context
def ingest(ctx: click.Context, workers: int) -> None:
    """Run MQTT ingest workers (one shared-subscription group) until interrupted."""
    app = _app(ctx)
    if workers > 1 and app.config["MQTT_PROTOCOL"] != "5":
        _fail("several workers need MQTT 5 shared subscriptions; use --workers 1 on 3.1.1")
    _store(ctx, create=True)
    config = dict(app.config)
    try:
        run_workers(config, workers, keys=_keys_or_none(app))
    except (WorkerError, OSError) as exc:
        _fail(f"cannot ingest from {config['MQTT_HOST']}:{config['MQTT_PORT']}: {exc}")


@collector.command("import-bundle")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def import_bundle_cmd(ctx: click.Context, bundle: Path) -> None:
    """Import an agent's offline bundle through the same verification path."""
    app = _app(ctx)
    store = _store(ctx, create=True)
    try:
        result = import_bundle_file(store, bundle, keys=_keys_or_none(app))
    except BundleError as exc:
        _fail(f"{bundle}: {exc}")
    counts = ", ".join(f"{k}={v}" for k, v in sorted(result.by_status.items())) or "empty"
    click.echo(f"{bundle.name}: {result.total} records: {counts}")


from settleguard.collector.cli import accounts, alerts, match, statements, web  # noqa: E402

for _module in (statements, match, accounts, web, alerts):
    _module.register(collector)
