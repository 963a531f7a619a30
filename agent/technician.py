"""Library side of the terminal-facing technician commands (close, replace, card-change).

Each function here does the work and returns data; :mod:`agent.cli_terminal` only parses
options and prints. Everything that is recorded goes through :func:`agent.recorder.record`,
so it is signed and committed to the outbox before the command reports success.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from settleguard.agent import probe, terminal_link
from settleguard.agent.batch_records import batch_summary
from settleguard.agent.config import AgentConfig, load_config
from settleguard.agent.errors import StorageError, TerminalProtocolError, UsageError
from settleguard.agent.home import AgentHome
from settleguard.agent.recorder import open_outbox, record, utc_ms
from settleguard.protocol.envelope import read_header
from settleguard.protocol.records import BatchSummary, Record, TerminalReplaced
from settleguard.protocol.totals import TerminalTotals

Progress = Callable[[str], None]


def enrollment_info(home: AgentHome) -> dict[str, Any]:
    """What the collector told us at enrollment (empty before enrollment)."""
    try:
        data = json.loads(home.enrollment_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise UsageError(f"{home.enrollment_path}: unreadable ({exc})") from exc
    return data if isinstance(data, dict) else {}


def agent_config(home: AgentHome) -> AgentConfig:
    """The home's configuration, defaults when there is no config file."""
    return load_config(home.config_path) if home.config_path.exists() else AgentConfig()


def merchant_of(home: AgentHome, explicit: str | None) -> str | None:
    """The merchant id: given on the command line, else the one bound at enrollment."""
    return explicit or enrollment_info(home).get("merchant_id")


def collector_public_key(home: AgentHome, key_file: Path | None) -> bytes:
    """The collector's raw X25519 key for sealing card numbers.

    :raises UsageError: neither enrolled nor a key file given
    """
    text = key_file.read_text(encoding="ascii").strip() if key_file else None
    text = text or enrollment_info(home).get("collector_public_key")
    if not text:
        raise UsageError(
            "the collector's public key is not known yet: run `settleguard agent enroll` "
            "first, or pass --collector-key FILE (base64, from the operator)"
        )
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise UsageError("the collector key is not valid base64") from exc
    if len(raw) != 32:
        raise UsageError("the collector key must be 32 bytes (raw X25519, base64)")
    return raw


@dataclass(frozen=True, slots=True)
class ClosedBatch:
    """Result of ``agent close``."""

    totals: TerminalTotals
    summary: BatchSummary
    seq: int


def close_and_store(
    home: AgentHome,
    url: str,
    protocol: str,
    *,
    password: str | None,
    baud: int | None,
    terminal_id: str | None,
    merchant_id: str | None,
    progress: Progress | None = None,
    closed_at: str | None = None,
    save_raw: Path | None = None,
    recover: bool = False,
    currency: str = terminal_link.DEFAULT_CURRENCY,
) -> ClosedBatch:
    """Close the terminal's batch and commit the signed batch record before returning.

    :param closed_at: the close time to record (default: now; the demo passes its own clock)
    :param save_raw: write the terminal's raw reply bytes here (MIS-POS)
    :param recover: MIS-POS: store the batch of an earlier close whose reply was lost, from
        the reprint (19), without settling
    :param currency: ISO 4217 numeric code of the terminal's currency
    :raises agent.errors.AgentError: terminal or storage failure
    :raises BatchNotStored: the terminal closed the batch but the outbox refused it; the
        exception carries the totals so they can still be shown and written down
    """
    totals = terminal_link.close_batch(
        url,
        protocol,
        password=password,
        baud=baud,
        progress=progress,
        save_raw=save_raw,
        recover=recover,
        currency=currency,
    )
    tid = totals.terminal_id or terminal_id
    if totals.recovered and tid and totals.batch_no is not None:
        _refuse_known_batch(home, tid, totals)
    batch_no = None
    if totals.batch_no is None and tid:
        batch_no = reserve_batch_no(home, tid)
    summary = batch_summary(
        totals,
        closed_at=closed_at or utc_ms(),
        terminal_id=terminal_id,
        merchant_id=merchant_id,
        batch_no=batch_no,
    )
    try:
        seq = record(home, summary, config=agent_config(home))
    except StorageError as exc:
        raise BatchNotStored(exc.message, totals) from exc
    _remember_batch(home, summary)
    return ClosedBatch(totals, summary, seq)


def _last_batch_key(terminal_id: str) -> str:
    return f"last_closed_batch:{terminal_id}"


def _remember_batch(home: AgentHome, summary: BatchSummary) -> None:
    with open_outbox(home) as outbox:
        outbox.set_meta({_last_batch_key(summary.terminal_id): str(summary.batch_no)})


def _refuse_known_batch(home: AgentHome, terminal_id: str, totals: TerminalTotals) -> None:
    """After a lost settlement reply the reprint shows the terminal's last settlement; if that
    is a batch this agent already stored, the close never happened and nothing is stored."""
    with open_outbox(home) as outbox:
        known = outbox.get_meta(_last_batch_key(terminal_id))
    if known is not None and int(known) == totals.batch_no:
        raise TerminalProtocolError(
            f"the terminal's last settlement (reprint, 19) is batch {totals.batch_no}, which is "
            "already stored: the batch was NOT closed and nothing more is stored. Check the "
            "terminal's screen; close again only if its batch is still open"
        )


def reserve_batch_no(home: AgentHome, terminal_id: str) -> int:
    """Take the agent's next batch number for ``terminal_id``.

    ZVT totals carry no batch number (PA00P015 §2.16, §3.1.3), so the agent numbers the
    batches it closes per terminal, starting at 1. The number is taken (committed) before the
    record is stored: a crash in between leaves a hole in the numbering, which reconciliation
    reports as a batch not uploaded -- true, since a close was under way and nothing arrived.
    """
    key = f"batch_no:{terminal_id}"
    with open_outbox(home) as outbox, outbox.transaction() as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        number = int(row[0]) + 1 if row else 1
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, str(number)),
        )
    return number


class BatchNotStored(StorageError):
    """The batch is closed on the terminal but could not be stored: show it anyway."""

    def __init__(self, message: str, totals: TerminalTotals) -> None:
        super().__init__(
            f"the batch was CLOSED on the terminal but could not be stored ({message}); "
            "photograph the totals below and free disk space"
        )
        self.totals = totals


class OutboxAdapter:
    """The outbox as :class:`agent.replace.Replacement` sees it."""

    def __init__(self, home: AgentHome) -> None:
        self.home = home

    def store(self, item: BatchSummary | TerminalReplaced) -> int:
        """Sign and commit; return the seq."""
        seq = record(self.home, item, config=agent_config(self.home))
        if isinstance(item, BatchSummary):
            _remember_batch(self.home, item)
        return seq

    def last_closed_batch_no(self, terminal_id: str) -> int | None:
        """The batch number of the last batch this agent stored for ``terminal_id``."""
        with open_outbox(self.home) as outbox:
            known = outbox.get_meta(_last_batch_key(terminal_id))
        return None if known is None else int(known)

    def _bodies(self, record_type: str, after_seq: int) -> list[tuple[int, dict[str, Any]]]:
        with open_outbox(self.home) as outbox:
            rows = outbox.conn.execute(
                "SELECT seq, payload FROM outbox WHERE record_type = ? AND seq > ? ORDER BY seq",
                (record_type, after_seq),
            ).fetchall()
        found = []
        for seq, payload in rows:
            envelope = json.loads(read_header(bytes(payload)).signed_bytes)
            found.append((int(seq), envelope["body"]))
        return found

    def last_seq(self) -> int:
        """The highest seq committed so far (rows may be pruned; the counter is not)."""
        with open_outbox(self.home) as outbox:
            return int(outbox.get_meta("next_seq") or 1) - 1

    def find_batch(self, terminal_id: str, after_seq: int) -> tuple[int, int, str] | None:
        """A batch of ``terminal_id`` stored after ``after_seq``."""
        for seq, body in self._bodies(BatchSummary.RECORD_TYPE, after_seq):
            if body.get("terminal_id") == terminal_id:
                return seq, int(body["batch_no"]), str(body["closed_at"])
        return None

    def reserve_batch_no(self, terminal_id: str) -> int:
        """The agent's next batch number for ``terminal_id``."""
        return reserve_batch_no(self.home, terminal_id)

    def find_replacement(self, old_terminal_id: str, new_terminal_id: str) -> int | None:
        """A stored replacement record for this pair."""
        for seq, body in self._bodies(TerminalReplaced.RECORD_TYPE, 0):
            if (body.get("old_terminal_id"), body.get("new_terminal_id")) == (
                old_terminal_id,
                new_terminal_id,
            ):
                return seq
        return None


@dataclass
class LinkTerminals:
    """Real terminals through :mod:`agent.terminal_link`, for :class:`agent.replace.Replacement`."""

    password: str | None
    baud: int | None
    terminal_id_fallback: dict[str, str]
    progress: Progress | None = None

    def _with_tid(self, url: str, totals: TerminalTotals) -> TerminalTotals:
        from dataclasses import replace

        if totals.terminal_id or url not in self.terminal_id_fallback:
            return totals
        return replace(totals, terminal_id=self.terminal_id_fallback[url])

    def read_totals(self, url: str, protocol: str) -> TerminalTotals:
        """Read totals, filling in a technician-given TID where the protocol has none.

        MIS-POS has no totals query: the port probe names the terminal, and the open batch
        is reported empty (its figures come with the close).
        """
        if protocol == "mispos":
            terminal_id = probe.identify(url, protocol, baud=self.baud)
            totals = TerminalTotals("mispos", "turnover_totals", terminal_id, "156", ())
        else:
            totals = terminal_link.read_totals(
                url, protocol, password=self.password, baud=self.baud, progress=self.progress
            )
        return self._with_tid(url, totals)

    def read_last(self, url: str, protocol: str) -> TerminalTotals:
        """The last closed batch again (MIS-POS reprint, 19); closes nothing."""
        totals = terminal_link.read_last(url, protocol, baud=self.baud, progress=self.progress)
        return self._with_tid(url, totals)

    def close_batch(self, url: str, protocol: str) -> TerminalTotals:
        """Close the batch (End-of-Day / BatchClose)."""
        totals = terminal_link.close_batch(
            url, protocol, password=self.password, baud=self.baud, progress=self.progress
        )
        return self._with_tid(url, totals)


def store_record(home: AgentHome, item: Record) -> int:
    """Sign and commit any record; return its seq."""
    return record(home, item, config=agent_config(home))
