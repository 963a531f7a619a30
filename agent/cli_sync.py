"""``settleguard agent init|enroll|status|run|sync|export|rotate-key``: thin CLI wrappers.

Each command calls one library function (:mod:`agent.config`, :mod:`agent.enroll`,
:mod:`agent.daemon`, :mod:`agent.sync`, :mod:`agent.bundle`, :mod:`agent.keys`), prints a
short human answer or, with ``--json``, one JSON object, and exits with the code of
:mod:`agent.errors` (table in ``docs/agent.md``).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from settleguard.agent.config import AgentConfig, load_config, write_default_config
from settleguard.agent.errors import AgentError, UsageError
from settleguard.agent.home import AgentHome, agent_home

_home_option = click.option(
    "--home",
    "home_dir",
    default=None,
    envvar="SETTLEGUARD_AGENT_HOME",
    help="Agent home directory (default: $SETTLEGUARD_AGENT_HOME or the user data dir).",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


@contextmanager
def _failures(as_json: bool) -> Iterator[None]:
    """Turn an AgentError into one line on stderr (or a JSON error) and its exit code."""
    try:
        yield
    except AgentError as exc:
        if as_json:
            click.echo(json.dumps({"error": exc.message, "exit_code": exc.exit_code}))
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)


def _load(home_dir: str | None) -> tuple[AgentHome, AgentConfig]:
    home = agent_home(home_dir)
    return home, load_config(home.config_path)


def _emit(as_json: bool, obj: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True) if as_json else text)


@click.command()
@_home_option
@click.option("--force", is_flag=True, help="Overwrite an existing config.toml.")
def init(home_dir: str | None, force: bool) -> None:
    """Write a commented config.toml with every setting and its default."""
    with _failures(False):
        home = agent_home(home_dir)
        written = write_default_config(home.config_path, force=force)
        from settleguard.agent.keys import load_or_create_key

        key = load_or_create_key(home)
    state = "wrote" if written else "kept existing"
    click.echo(f"{state} {home.config_path}\nagent id {key.agent_id} (key {key.key_id})")


@click.command()
@_home_option
@click.option("--collector", "collector_url", default=None, help="Collector base URL.")
@click.option("--token", required=True, help="One-time enrollment token from the operator.")
@_json_option
def enroll(home_dir: str | None, collector_url: str | None, token: str, as_json: bool) -> None:
    """Register this agent's key with the collector (queued if it cannot be reached)."""
    from settleguard.agent.enroll import enroll as enroll_agent

    with _failures(as_json):
        home, config = _load(home_dir)
        url = collector_url or config.collector.url
        if not url:
            raise UsageError("no collector URL: pass --collector or set [collector] url")
        state = enroll_agent(home, url, token, timeout=config.collector.timeout_s)
    public = {k: v for k, v in state.items() if k != "broker"}
    _emit(as_json, public, f"enrolled as {state['agent_id']}: {state['status']}")


@click.command()
@_home_option
@_json_option
def status(home_dir: str | None, as_json: bool) -> None:
    """Show outbox, sync, broker, key and terminal state."""
    from settleguard.agent.status import status as agent_status

    with _failures(as_json):
        home, config = _load(home_dir)
        info = agent_status(home, config)
    box, broker = info["outbox"], info["broker"]
    lines = [
        f"agent    {info['agent_id']}  key {info['key']['key_id']}  "
        f"enrollment {info['key']['enrollment']}",
        f"outbox   {box['pending']} pending (oldest {box['oldest_age_s']} s), "
        f"{box['acked']} acked, {box['rejected']} rejected, next seq {box['next_seq']}",
        f"broker   {broker['url'] or '-'}  {broker['link_state']}  "
        f"last sync {info['last_sync_at'] or 'never'}",
        f"terminal {info['terminal']['port'] or '-'} ({info['terminal']['protocol']})  "
        f"last id {info['terminal']['terminal_id'] or '-'}",
    ]
    if box["disk_alarm"]:
        lines.append(f"ALARM    {box['disk_alarm']}")
    if broker["last_error"]:
        lines.append(f"error    {broker['last_error']}")
    lines += [f"rejected seq {r['seq']}: {r['status']} ({r['reason']})" for r in info["rejected"]]
    _emit(as_json, info, "\n".join(lines))


def _end_of_day_hook(home: AgentHome, config: AgentConfig) -> Callable[[], object] | None:
    """The scheduled End-of-Day: close the configured terminal's batch and store it, signed.

    Uses :func:`agent.technician.close_and_store` (the same path as ``agent close``); off
    unless both ``[schedule] end_of_day`` and ``[terminal] port`` are set.
    """
    if not config.schedule.end_of_day or not config.terminal.port:
        return None
    from settleguard.agent.technician import close_and_store, merchant_of

    def close() -> object:
        return close_and_store(
            home,
            config.terminal.port,
            config.terminal.protocol,
            password=config.terminal.password or None,
            baud=config.terminal.baud or None,
            terminal_id=None,
            merchant_id=merchant_of(home, None),
        )

    return close


@click.command()
@_home_option
def run(home_dir: str | None) -> None:
    """Run the daemon: sync, heartbeats, enrollment retries, scheduled End-of-Day."""
    from settleguard.agent.daemon import run as run_daemon

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with _failures(False):
        home, config = _load(home_dir)
        run_daemon(home, config, stop=stop, end_of_day=_end_of_day_hook(home, config))


@click.command()
@_home_option
@click.option("--timeout", type=float, default=60.0, show_default=True)
@_json_option
def sync(home_dir: str | None, timeout: float, as_json: bool) -> None:
    """Connect, send every pending record, wait for the acks, disconnect (exit 11 if short)."""
    from settleguard.agent.enroll import broker_target
    from settleguard.agent.errors import SyncError
    from settleguard.agent.keys import load_or_create_key
    from settleguard.agent.recorder import open_outbox
    from settleguard.agent.sync import SyncLink

    with _failures(as_json):
        home, config = _load(home_dir)
        target = broker_target(home, config)
        if target is None:
            raise UsageError("no broker known yet: enroll first or set [broker] url")
        with open_outbox(home, config) as outbox:
            link = SyncLink(outbox, load_or_create_key(home), target, config.sync)
            result = link.flush(timeout)
        obj = {"acked": result.acked, "rejected": result.rejected, "pending": result.pending}
        _emit(
            as_json,
            obj,
            f"acked {result.acked}, rejected {result.rejected}, pending {result.pending}",
        )
        if not result.complete:
            raise SyncError(f"{result.pending} records still pending after {timeout:g} s")


@click.command()
@_home_option
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False))
@_json_option
def export(home_dir: str | None, out_path: str, as_json: bool) -> None:
    """Write every unacked record to a signed bundle file for offline import."""
    from settleguard.agent.bundle import export_bundle

    with _failures(as_json):
        home, config = _load(home_dir)
        count = export_bundle(home, Path(out_path), config=config)
    _emit(as_json, {"records": count, "out": out_path}, f"wrote {count} records to {out_path}")


@click.command("rotate-key")
@_home_option
def rotate_key(home_dir: str | None) -> None:
    """Make a new signing key, announced under the old one (sent by `run` or `enroll`)."""
    from settleguard.agent.keys import rotate_key as rotate

    with _failures(False):
        announcement = rotate(agent_home(home_dir))
    click.echo(f"new key {announcement['new_key_id']} (was {announcement['old_key_id']})")


def register(group: click.Group) -> None:
    """Add the sync-side commands to the ``agent`` group."""
    for command in (init, enroll, status, run, sync, export, rotate_key):
        group.add_command(command)
