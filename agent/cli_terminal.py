"""Terminal-facing technician commands: ``read``, ``close``, ``probe``, ``replace``, ``card-change``.

Each command parses options, calls one library function and prints. Errors are
:class:`agent.errors.AgentError`: one line on stderr, the documented exit code, and with
``--json`` also ``{"error": …, "exit_code": …}`` on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from settleguard.agent import terminal_link
from settleguard.agent.errors import AgentError, UsageError
from settleguard.agent.home import agent_home
from settleguard.agent.report import totals_table, totals_to_json, utc_now_iso

_port_option = click.option(
    "--port", "port_url", required=True, help="Serial device or pyserial URL, e.g. /dev/ttyUSB0."
)
_protocol_option = click.option(
    "--protocol",
    type=click.Choice(["zvt", "poslink", "mispos"]),
    default="zvt",
    show_default=True,
    help="mispos: 通联-style MIS-POS (收银机联动); zvt, poslink: international terminals.",
)
_save_raw_option = click.option(
    "--save-raw",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="MIS-POS: save every byte the terminal sent to this file (for a slip the agent "
    "cannot read).",
)
_password_option = click.option(
    "--password", default="123456", show_default=True, help="Terminal/merchant password (ZVT)."
)
_baud_option = click.option("--baud", type=int, default=None, help="Override the baud rate.")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
_merchant_option = click.option(
    "--merchant", "merchant_id", default=None, help="Merchant id (default: from enrollment)."
)
_home_option = click.option(
    "--home",
    "home_dir",
    default=None,
    help="Agent home directory (default: $SETTLEGUARD_AGENT_HOME or the user data dir).",
)


def _currency(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``CNY`` or ``156`` → ``"156"`` (ISO 4217 numeric, as the totals carry it)."""
    from settleguard.agent.report import CURRENCIES

    text = value.strip().upper()
    by_alpha = {alpha: numeric for numeric, (alpha, _) in CURRENCIES.items()}
    if text in by_alpha:
        return by_alpha[text]
    if len(text) == 3 and text.isdigit():
        return text
    raise click.BadParameter(f"{value!r} is not an ISO 4217 code such as CNY or 156")


_currency_option = click.option(
    "--currency",
    default="CNY",
    show_default=True,
    callback=_currency,
    help="The terminal's currency (ISO 4217, CNY or 156): ZVT registers with it and the "
    "terminal confirms it; POSLink totals carry none, so it is reported as given.",
)
_tid_option = click.option(
    "--terminal-id", default=None, help="Terminal id, for terminals that do not report one."
)


def _progress(as_json: bool) -> Callable[[str], None]:
    def show(message: str) -> None:
        click.echo(f"... {message}", err=True)

    # Progress goes to stderr, so stdout stays one JSON object with --json.
    return show


@contextmanager
def _failures(as_json: bool) -> Iterator[None]:
    """Turn an AgentError into one line, the exit code and (with --json) an error object."""
    try:
        yield
    except AgentError as exc:
        totals = getattr(exc, "totals", None)
        if totals is not None and not as_json:
            click.echo(totals_table(totals, utc_now_iso()))
        if as_json:
            payload: dict[str, Any] = {"error": exc.message, "exit_code": exc.exit_code}
            if totals is not None:
                payload["totals"] = totals_to_json(totals, utc_now_iso())
            click.echo(json.dumps(payload, ensure_ascii=False))
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)


@click.command("read")
@_port_option
@_protocol_option
@_password_option
@_baud_option
@click.option(
    "--last",
    is_flag=True,
    help="MIS-POS: reprint the last CLOSED batch (type 19); MIS-POS has no totals query.",
)
@_save_raw_option
@_currency_option
@_json_option
def read(
    port_url: str,
    protocol: str,
    password: str,
    baud: int | None,
    last: bool,
    save_raw: Path | None,
    currency: str,
    as_json: bool,
) -> None:
    """Read the terminal's current totals without closing the batch (ZVT 06 10, POSLink R00).

    MIS-POS terminals have no such query: ``--last`` shows the last closed batch instead.
    """
    with _failures(as_json):
        if last:
            totals = terminal_link.read_last(
                port_url, protocol, baud=baud, progress=_progress(as_json), save_raw=save_raw
            )
        else:
            totals = terminal_link.read_totals(
                port_url,
                protocol,
                password=password,
                baud=baud,
                progress=_progress(as_json),
                currency=currency,
            )
    read_at = utc_now_iso()
    if as_json:
        click.echo(json.dumps(totals_to_json(totals, read_at), ensure_ascii=False))
    else:
        click.echo(totals_table(totals, read_at))


@click.command("close")
@_port_option
@_protocol_option
@_password_option
@_baud_option
@_currency_option
@_tid_option
@_merchant_option
@_save_raw_option
@click.option(
    "--recover",
    is_flag=True,
    help="MIS-POS: do not settle; store the batch of a close whose reply was lost, from the "
    "reprint (19).",
)
@_home_option
@_json_option
def close(
    port_url: str,
    protocol: str,
    password: str,
    baud: int | None,
    currency: str,
    terminal_id: str | None,
    merchant_id: str | None,
    save_raw: Path | None,
    recover: bool,
    home_dir: str | None,
    as_json: bool,
) -> None:
    """Close the batch (MIS-POS 14, ZVT End-of-Day 06 50, POSLink B00) and store it, signed.

    MIS-POS: a lost or damaged settlement reply is recovered with the reprint (19), never by
    settling again.
    """
    from settleguard.agent.technician import close_and_store, merchant_of

    home = agent_home(home_dir)
    with _failures(as_json):
        closed = close_and_store(
            home,
            port_url,
            protocol,
            password=password,
            baud=baud,
            terminal_id=terminal_id,
            merchant_id=merchant_of(home, merchant_id),
            progress=_progress(as_json),
            save_raw=save_raw,
            recover=recover,
            currency=currency,
        )
    if as_json:
        payload = totals_to_json(closed.totals, closed.summary.closed_at)
        payload.update(
            stored_seq=closed.seq,
            batch_no=closed.summary.batch_no,
            terminal_id=closed.summary.terminal_id,
            merchant_no=closed.summary.merchant_id,
            closed_at=closed.summary.closed_at,
            recovered_with_reprint=closed.totals.recovered,
        )
        click.echo(json.dumps(payload, ensure_ascii=False))
    else:
        if closed.totals.recovered:
            click.echo("the settlement reply was lost; these figures come from the reprint (19)")
        click.echo(totals_table(closed.totals, closed.summary.closed_at))
        click.echo(f"\nstored as record {closed.seq}; it is sent when the collector is reachable")


@click.command("probe")
@click.option("--port", "ports", multiple=True, help="Port(s) to try; default: all serial ports.")
@_json_option
def probe(ports: tuple[str, ...], as_json: bool) -> None:
    """Find the terminal: try protocols and baud rates on all ports at once, one verdict each.

    Progress (each try) goes to stderr; each try waits briefly for an acknowledgement, so a
    machine of dead ports answers within seconds. Exit 6 when no port answered.
    """
    from settleguard.agent.probe import probe as run_probe

    with _failures(as_json):
        results = run_probe(list(ports) or None, progress=_progress(as_json))
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], ensure_ascii=False))
    else:
        for result in results:
            usb = f" [{result.port.usb_id}]" if result.port.usb_id else ""
            click.echo(f"{result.port.device}{usb}: {result.verdict()}")
    if not any(r.found for r in results):
        sys.exit(6)


@click.command("replace")
@click.option("--old-port", required=False, help="Port of the old terminal.")
@click.option("--new-port", default=None, help="Port of the new terminal (default: ask).")
@_protocol_option
@click.option("--new-protocol", type=click.Choice(["zvt", "poslink", "mispos"]), default=None)
@_password_option
@_baud_option
@click.option("--old-terminal-id", default=None, help="For terminals that do not report a TID.")
@click.option("--new-terminal-id", default=None, help="For terminals that do not report a TID.")
@_merchant_option
@click.option("--yes", is_flag=True, help="Do not wait for Enter at the swap (scripts).")
@click.option("--restart", is_flag=True, help="Forget an unfinished replacement and start over.")
@_home_option
@_json_option
def replace(
    old_port: str | None,
    new_port: str | None,
    protocol: str,
    new_protocol: str | None,
    password: str,
    baud: int | None,
    old_terminal_id: str | None,
    new_terminal_id: str | None,
    merchant_id: str | None,
    yes: bool,
    restart: bool,
    home_dir: str | None,
    as_json: bool,
) -> None:
    """Guided device replacement: close the old batch, bind the new terminal, record it.

    Run it again after any interruption: it continues where it stopped and never closes a
    batch twice.
    """
    from settleguard.agent.replace import (
        Replacement,
        ReplaceState,
        load_state,
        state_path,
        summary_json,
    )
    from settleguard.agent.technician import LinkTerminals, OutboxAdapter, merchant_of

    home = agent_home(home_dir)
    say = _progress(as_json) if as_json else click.echo
    with _failures(as_json):
        state = None if restart else load_state(home.root)
        if state is not None and state.step != "done":
            say(f"continuing the unfinished replacement (step: {state.step})")
            if new_port and state.step in ("closed", "swapped"):
                state.new_port = new_port  # the technician found the right port this time
        else:
            if not old_port:
                raise UsageError("--old-port is required to start a replacement")
            state = ReplaceState(
                merchant_id=merchant_of(home, merchant_id),
                old_port=old_port,
                old_protocol=protocol,
                new_port=new_port,
                new_protocol=new_protocol,
            )
        fallback = {}
        if old_terminal_id:
            fallback[state.old_port] = old_terminal_id
        if new_terminal_id and (new_port or state.new_port):
            fallback[new_port or state.new_port or ""] = new_terminal_id

        def confirm_swap(current: ReplaceState) -> str:
            port = new_port or current.new_port
            if not yes:
                click.prompt(
                    "Disconnect the OLD terminal, connect the NEW one, then press Enter",
                    default="",
                    show_default=False,
                    err=True,
                )
            if not port:
                port = click.prompt("Port of the new terminal", err=True)
            return str(port)

        replacement = Replacement(
            home=home.root,
            terminals=LinkTerminals(password, baud, fallback, _progress(as_json)),
            outbox=OutboxAdapter(home),
            now=utc_now_iso,
            say=say,
            confirm_swap=confirm_swap,
        )
        final = replacement.run(state)
        state_path(home.root).rename(home.root / f"replace-{final.replaced_seq}.json")
    if as_json:
        click.echo(json.dumps(summary_json(final), ensure_ascii=False))


@click.command("card-change")
@_merchant_option
@click.option("--holder", required=True, help="Account holder's name, exactly as the bank has it.")
@click.option("--bank", required=True, help="Bank of the new settlement card.")
@click.option("--requested-date", default=None, help="YYYY-MM-DD (default: today).")
@click.option("--reference", default=None, help="The acquirer's change reference, if any.")
@click.option("--old-tail", default=None, help="Last 4 digits of the old settlement card.")
@click.option(
    "--kind",
    "account_kind",
    type=click.Choice(["card", "corporate"]),
    default="card",
    show_default=True,
    help="A personal bank card (Luhn-checked) or a corporate account (对公账户).",
)
@click.option(
    "--type",
    "account_class",
    type=click.Choice(["I", "II"]),
    default=None,
    help="Personal account type (一类户 / 二类户), if known.",
)
@click.option(
    "--registered-name",
    default=None,
    help="The merchant's registered name, to warn when the holder differs.",
)
@click.option("--card-stdin", is_flag=True, help="Read the card number from stdin (scripts).")
@click.option(
    "--collector-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Collector public key file, if the agent is not enrolled yet.",
)
@_home_option
@_json_option
def card_change(
    merchant_id: str | None,
    holder: str,
    bank: str,
    requested_date: str | None,
    reference: str | None,
    old_tail: str | None,
    account_kind: str,
    account_class: str | None,
    registered_name: str | None,
    card_stdin: bool,
    collector_key: Path | None,
    home_dir: str | None,
    as_json: bool,
) -> None:
    """Record a settlement-account change (card or corporate); the number is typed without echo
    and sealed."""
    from settleguard.agent.card_change import CardChangeRequest, build_card_change, intake_warnings
    from settleguard.agent.technician import collector_public_key, merchant_of, store_record

    home = agent_home(home_dir)
    with _failures(as_json):
        merchant = merchant_of(home, merchant_id)
        if not merchant:
            raise UsageError("--merchant is required before the agent is enrolled")
        if old_tail is not None and not (len(old_tail) == 4 and old_tail.isdigit()):
            raise UsageError("--old-tail takes the last 4 digits only")
        key = collector_public_key(home, collector_key)
        if card_stdin:
            number = sys.stdin.readline().strip()
        else:
            number = click.prompt("New card number", hide_input=True, err=True)
            again = click.prompt("Type it again", hide_input=True, err=True)
            if again.replace(" ", "") != number.replace(" ", ""):
                raise UsageError("the two entries differ; nothing was recorded")
        request = CardChangeRequest(
            merchant_id=merchant,
            holder_name=holder,
            bank=bank,
            requested_at=_requested_at(requested_date),
            old_account_masked=f"****{old_tail}" if old_tail else None,
            acquirer_ref=reference,
            account_kind=account_kind,
            account_class=account_class,
            registered_name=registered_name,
        )
        change = build_card_change(request, number, key)
        warnings = intake_warnings(request)
        del number
        seq = store_record(home, change)
    result = {
        "change_id": change.change_id,
        "merchant_id": change.merchant_id,
        "new_account_masked": change.new_account_masked,
        "account_kind": change.account_kind,
        "stored_seq": seq,
        "warnings": warnings,
    }
    for warning in warnings if not as_json else ():
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
    else:
        click.echo(
            f"card change {change.change_id} recorded for {merchant}: new card "
            f"{change.new_account_masked}; stored as record {seq}"
        )


def _requested_at(text: str | None) -> str:
    if not text:
        return utc_now_iso()
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise UsageError(f"--requested-date {text!r}: expected YYYY-MM-DD") from exc
    return day.isoformat().replace("+00:00", "Z")


def register(group: click.Group) -> None:
    """Attach this module's commands to the ``agent`` group."""
    for command in (read, close, probe, replace, card_change):
        group.add_command(command)
