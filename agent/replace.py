"""``agent replace``: the guided device replacement, resumable after any interruption.

Theory of operation
-------------------
A replacement is a short list of steps; after each one the progress file
(``replace.json`` in the agent home) is rewritten atomically, so running the command again
continues where it stopped — after a power cut, a wrong cable or a technician's Ctrl-C.

============  ===========================================================================
step          what happens before the next step is saved
============  ===========================================================================
``start``     read the old terminal's totals (its TID, the open batch)
``closing``   End-of-Day / BatchClose on the old terminal; the batch is stored in the
              outbox (signed, committed) **before** this step is left
``closed``    ask the technician to swap the terminals
``swapped``   probe the new terminal: it must answer and have another TID
``bound``     store a signed ``terminal_replaced`` record (old TID → new TID)
``done``      nothing left
============  ===========================================================================

The dangerous moment is ``closing``: the terminal may have closed the batch and the power failed
before we stored the totals. On resume we never close blindly: we first look in the outbox for a
batch of the old terminal stored since the replacement began (by seq, not by time), then ask the terminal for its open
batch. If the batch we saw in ``start`` is gone (new batch number, or its transactions gone) the
close already happened; we do not close again (the new batch is empty and closing it would make a
second, confusing batch), and say that the final batch's totals must come from the terminal's
receipt or the acquirer.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from settleguard.agent.batch_records import batch_summary
from settleguard.agent.errors import UsageError
from settleguard.protocol.records import BatchSummary, TerminalReplaced
from settleguard.protocol.totals import TerminalTotals

STEPS = ("start", "closing", "closed", "swapped", "bound", "done")


class Terminals(Protocol):
    """The terminal operations a replacement needs (``agent.terminal_link`` in production)."""

    def read_totals(self, url: str, protocol: str) -> TerminalTotals: ...

    def close_batch(self, url: str, protocol: str) -> TerminalTotals: ...

    def read_last(self, url: str, protocol: str) -> TerminalTotals:
        """The last closed batch again without closing anything (MIS-POS reprint, 19)."""
        ...


class Outbox(Protocol):
    """Where records go, and how to find a batch stored by an interrupted run."""

    def store(self, record: BatchSummary | TerminalReplaced) -> int: ...

    def find_batch(self, terminal_id: str, after_seq: int) -> tuple[int, int, str] | None:
        """``(seq, batch_no, closed_at)`` of a batch of ``terminal_id`` stored after ``after_seq``."""
        ...

    def last_seq(self) -> int:
        """The highest seq committed so far (0 for an empty outbox)."""
        ...

    def find_replacement(self, old_terminal_id: str, new_terminal_id: str) -> int | None:
        """Seq of a stored ``terminal_replaced`` record for this pair, if any."""
        ...

    def reserve_batch_no(self, terminal_id: str) -> int:
        """The agent's next batch number for a terminal that numbers no batches (ZVT)."""
        ...

    def last_closed_batch_no(self, terminal_id: str) -> int | None:
        """The number of the last batch stored for ``terminal_id``, if any."""
        ...


@dataclass
class ReplaceState:
    """Progress of one replacement, as saved in ``replace.json``."""

    merchant_id: str | None
    old_port: str
    old_protocol: str
    new_port: str | None = None
    new_protocol: str | None = None
    step: str = "start"
    started_at: str = ""
    started_after_seq: int = 0  # outbox high-water mark when the replacement began
    old_terminal_id: str | None = None
    open_batch_no: int | None = None
    open_batch_count: int = 0
    final_batch_no: int | None = None
    final_batch_closed_at: str | None = None
    final_batch_seq: int | None = None
    final_batch_lost: bool = False
    close_attempted_at: str | None = None
    new_terminal_id: str | None = None
    replaced_at: str | None = None
    replaced_seq: int | None = None
    notes: list[str] = field(default_factory=list)


def state_path(home: Path) -> Path:
    """Where the progress file lives."""
    return home / "replace.json"


def load_state(home: Path) -> ReplaceState | None:
    """The saved progress, or None when no replacement is under way."""
    path = state_path(home)
    if not path.exists():
        return None
    try:
        return ReplaceState(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise UsageError(
            f"{path}: unreadable progress file ({exc}); move it away to start over"
        ) from exc


def save_state(home: Path, state: ReplaceState) -> None:
    """Write the progress file atomically (temp file, fsync, rename)."""
    home.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=home, prefix=".replace.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(state), handle, ensure_ascii=False, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, state_path(home))


@dataclass
class Replacement:
    """Runs the steps; every side effect goes through the injected collaborators."""

    home: Path
    terminals: Terminals
    outbox: Outbox
    now: Callable[[], str]
    say: Callable[[str], None]
    confirm_swap: Callable[[ReplaceState], str]  # returns the new terminal's port URL

    def run(self, state: ReplaceState) -> ReplaceState:
        """Advance ``state`` to ``done``, saving after each step."""
        if not state.started_at:
            state.started_at = self.now()
            # Records are found again by seq, never by time: clocks jump, seq does not.
            state.started_after_seq = self.outbox.last_seq()
            save_state(self.home, state)
        handlers = {
            "start": self._read_old,
            "closing": self._close_old,
            "closed": self._swap,
            "swapped": self._bind_new,
            "bound": self._record_replacement,
        }
        while state.step != "done":
            handlers[state.step](state)
            save_state(self.home, state)
        return state

    def _read_old(self, state: ReplaceState) -> None:
        self.say(f"step 1/4: reading the old terminal on {state.old_port}")
        totals = self.terminals.read_totals(state.old_port, state.old_protocol)
        if not totals.terminal_id:
            raise UsageError("the old terminal did not report its terminal id; cannot bind it")
        state.old_terminal_id = totals.terminal_id
        state.open_batch_no = totals.batch_no
        state.open_batch_count = totals.total_count
        state.step = "closing"

    def _close_old(self, state: ReplaceState) -> None:
        assert state.old_terminal_id is not None
        stored = self.outbox.find_batch(state.old_terminal_id, state.started_after_seq)
        if stored is not None:
            self.say("step 2/4: the old batch was already closed and stored by the earlier run")
            state.final_batch_seq, state.final_batch_no, state.final_batch_closed_at = stored
            state.step = "closed"
            return
        if state.close_attempted_at is not None and state.old_protocol == "mispos":
            if self._recovered_by_reprint(state):
                return
        elif state.close_attempted_at is not None and self._closed_behind_our_back(state):
            return
        self.say("step 2/4: closing the old terminal's batch (End-of-Day); this can take minutes")
        if state.open_batch_no is None:
            # ZVT reports no batch number: the agent numbers the batch before closing, so an
            # interrupted close still has a number to name in the replacement record.
            state.open_batch_no = self.outbox.reserve_batch_no(state.old_terminal_id)
        state.close_attempted_at = self.now()
        save_state(self.home, state)
        totals = self.terminals.close_batch(state.old_port, state.old_protocol)
        if totals.terminal_id and totals.terminal_id != state.old_terminal_id:
            # Some protocols only name the terminal in the close response (POSLink B01):
            # bind the replacement to the id the batch itself carries.
            self.say(f"  note: the terminal reports id {totals.terminal_id} at close")
            state.notes.append(
                f"terminal id {state.old_terminal_id} given before the close; "
                f"the terminal reported {totals.terminal_id} in its close response"
            )
            state.old_terminal_id = totals.terminal_id
        self._store_final(state, totals)

    def _store_final(self, state: ReplaceState, totals: TerminalTotals) -> None:
        summary = batch_summary(
            totals,
            closed_at=self.now(),
            terminal_id=state.old_terminal_id,
            merchant_id=state.merchant_id,
            batch_no=state.open_batch_no,
        )
        state.final_batch_seq = self.outbox.store(summary)
        state.final_batch_no, state.final_batch_closed_at = summary.batch_no, summary.closed_at
        self.say(f"  stored batch {summary.batch_no}: {summary.total_count} transactions")
        state.step = "closed"

    def _recovered_by_reprint(self, state: ReplaceState) -> bool:
        """On resume, MIS-POS: settling again would close the next batch, so the reprint (19)
        tells what the interrupted close did. The batch stored last means it never closed."""
        assert state.old_terminal_id is not None
        self.say("  the earlier close was interrupted: asking for the reprint (19), not settling")
        totals = self.terminals.read_last(state.old_port, state.old_protocol)
        known = self.outbox.last_closed_batch_no(state.old_terminal_id)
        if totals.batch_no is None or totals.batch_no == known:
            return False  # the terminal's last settlement is one we have: still open
        self._store_final(state, totals)
        return True

    def _closed_behind_our_back(self, state: ReplaceState) -> bool:
        """On resume: did the terminal close the batch although we never stored it?"""
        totals = self.terminals.read_totals(state.old_port, state.old_protocol)
        moved = (
            state.open_batch_no is not None
            and totals.batch_no is not None
            and totals.batch_no != state.open_batch_no
        )
        emptied = state.open_batch_count > 0 and totals.total_count == 0
        if not (moved or emptied):
            return False
        note = (
            "the old terminal closed its batch but the totals never reached the agent (interrupted "
            "during End-of-Day); take the final batch from the terminal's last End-of-Day receipt "
            "or the acquirer's settlement file. Not closing again."
        )
        self.say(f"  warning: {note}")
        state.notes.append(note)
        state.final_batch_lost = True
        # The close happened after our attempt began: the best time we can vouch for.
        state.final_batch_no = state.open_batch_no
        state.final_batch_closed_at = state.close_attempted_at or state.started_at
        state.step = "closed"
        return True

    def _swap(self, state: ReplaceState) -> None:
        self.say("step 3/4: disconnect the old terminal and connect the new one")
        state.new_port = self.confirm_swap(state)
        state.new_protocol = state.new_protocol or state.old_protocol
        state.step = "swapped"

    def _bind_new(self, state: ReplaceState) -> None:
        assert state.new_port is not None and state.new_protocol is not None
        self.say(f"step 4/4: checking the new terminal on {state.new_port}")
        totals = self.terminals.read_totals(state.new_port, state.new_protocol)
        if not totals.terminal_id:
            raise UsageError("the new terminal did not report its terminal id; cannot bind it")
        if totals.terminal_id == state.old_terminal_id:
            state.step = "closed"  # ask for the swap again on the next run
            save_state(self.home, state)
            raise UsageError(
                f"the terminal on {state.new_port} is still the old one ({totals.terminal_id}): "
                "connect the new terminal and run `settleguard agent replace` again"
            )
        state.new_terminal_id = totals.terminal_id
        state.replaced_at = self.now()
        state.step = "bound"

    def _record_replacement(self, state: ReplaceState) -> None:
        assert state.old_terminal_id and state.new_terminal_id and state.replaced_at
        record = TerminalReplaced(
            merchant_id=state.merchant_id,
            old_terminal_id=state.old_terminal_id,
            new_terminal_id=state.new_terminal_id,
            replaced_at=state.replaced_at,
            final_batch_no=state.final_batch_no,
            final_batch_closed_at=state.final_batch_closed_at,
        )
        # A crash between storing and saving the step must not store the record twice.
        existing = self.outbox.find_replacement(state.old_terminal_id, state.new_terminal_id)
        state.replaced_seq = existing if existing is not None else self.outbox.store(record)
        self.say(f"done: {state.old_terminal_id} replaced by {state.new_terminal_id}")
        state.step = "done"


def summary_json(state: ReplaceState) -> dict[str, Any]:
    """The ``--json`` result of a replacement."""
    return asdict(state)
