"""``agent run`` (the daemon) and ``agent status`` (what it and the outbox look like).

Theory of operation
-------------------
One thread, one loop (:func:`run`), every wait a blocking one: while connected it sits in
:meth:`agent.sync.SyncLink.pump` (a ``select`` on the MQTT socket, at most one second, so
records committed by another process — ``agent close`` — go out within a second), otherwise
in ``stop.wait(...)`` until the next due action. Idle CPU is one wake-up per second.

Each turn does what is due:

* enrollment: finish a queued one, follow a pending one to approval, deliver a key rotation
  (:func:`agent.enroll.retry_pending`), with back-off while the collector is away;
* the broker: connect with jittered exponential back-off (:func:`agent.sync.backoff_delay`),
  or in connect-on-demand mode connect only when records wait or a heartbeat is due, send,
  wait for the acks, disconnect;
* heartbeat on ``sg/v1/a/{id}/hb`` every ``heartbeat_interval_s``;
* the scheduled End-of-Day (``[schedule] end_of_day``), through the ``end_of_day`` hook;
* pruning acked rows past retention, once an hour.

Link state, last error and last sync time are written to the outbox's ``meta`` table so that
``status`` (another process) can show them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from settleguard.agent.config import AgentConfig, end_of_day_time
from settleguard.agent.enroll import broker_target, load_enrollment, retry_pending
from settleguard.agent.errors import AgentError, CollectorUnreachable, SyncError
from settleguard.agent.home import AgentHome
from settleguard.agent.keys import identity_info, load_or_create_key
from settleguard.agent.outbox import Outbox
from settleguard.agent.recorder import heartbeat_record, open_outbox, seal_heartbeat
from settleguard.agent.sync import SyncLink, backoff_delay

log = logging.getLogger("settleguard.agent")
EndOfDayHook = Callable[[], object]
PRUNE_EVERY_S = 3600.0


def next_end_of_day(config: AgentConfig, now: datetime) -> datetime | None:
    """The next local time the scheduled End-of-Day is due after ``now`` (naive local)."""
    hhmm = end_of_day_time(config)
    if hhmm is None:
        return None
    due = now.replace(hour=hhmm[0], minute=hhmm[1], second=0, microsecond=0)
    return due if due > now else due + timedelta(days=1)


class Daemon:
    """The state of one ``run``; :meth:`turn` does one round. See the module docstring."""

    def __init__(
        self,
        home: AgentHome,
        config: AgentConfig,
        *,
        end_of_day: EndOfDayHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.home, self.config, self.clock = home, config, clock
        self.end_of_day = end_of_day
        self.key = load_or_create_key(home)
        self.outbox: Outbox = open_outbox(home, config)
        self.link: SyncLink | None = None
        self.attempt = 0
        now = clock()
        self.next_connect = self.next_enroll = self.next_heartbeat = now
        self.next_prune = now
        self.eod_at = next_end_of_day(config, datetime.now())
        self._meta: dict[str, str | None] = {}

    def _note(self, **values: str | None) -> None:
        changed = {k: v for k, v in values.items() if self._meta.get(k, "") != v}
        if changed:
            self.outbox.set_meta(changed)
            self._meta.update(changed)

    def turn(self, stop: threading.Event) -> None:
        """Do what is due, then block until something may be due again (at most 1 s)."""
        now = self.clock()
        if now >= self.next_enroll:
            self._enrollment(now)
        if self.link is None:
            target = broker_target(self.home, self.config)
            if target is not None:
                self.link = SyncLink(self.outbox, self.key, target, self.config.sync)
        if self.link is not None:
            if self.config.sync.connect_on_demand:
                self._on_demand(now)
            elif not self.link.connected and now >= self.next_connect:
                self._connect(now)
            if self.link.connected and now >= self.next_heartbeat:
                self.link.publish_heartbeat(self._heartbeat("connected"))
                self.next_heartbeat = now + self.config.sync.heartbeat_interval_s
        self._scheduled(now)
        wait = max(0.0, min(1.0, self._next_due() - self.clock()))
        if self.link is not None and self.link.connected:
            self.link.pump(wait)
            if not self.link.connected:
                self._note(link_state="offline", last_error=self.link.last_error)
        else:
            stop.wait(wait)

    def _next_due(self) -> float:
        dues = [self.next_heartbeat, self.next_enroll, self.next_prune]
        if self.link is not None and not self.link.connected:
            dues.append(self.next_connect)
        return min(dues)

    def _enrollment(self, now: float) -> None:
        state = load_enrollment(self.home)
        rotation = (identity_info(self.home) or {}).get("pending_rotation")
        if state is None or (state["status"] in ("approved", "failed") and not rotation):
            self.next_enroll = now + 3600
            return
        try:
            retry_pending(self.home, timeout=self.config.collector.timeout_s)
            self.next_enroll = now + (60 if state["status"] != "approved" else 3600)
        except CollectorUnreachable as exc:
            self._note(last_error=exc.message)
            self.next_enroll = now + backoff_delay(4, 15.0, 600.0)
        except AgentError as exc:
            self._note(last_error=exc.message)
            self.next_enroll = now + 3600

    def _connect(self, now: float) -> None:
        assert self.link is not None
        self._note(link_state="connecting")
        try:
            self.link.connect(timeout=15)
        except SyncError as exc:
            self.attempt += 1
            delay = backoff_delay(
                self.attempt, self.config.sync.backoff_min_s, self.config.sync.backoff_max_s
            )
            self.next_connect = now + delay
            self._note(link_state="offline", last_error=exc.message)
            log.warning("%s; retrying in %.0f s", exc.message, delay)
            return
        self.attempt = 0
        self.next_heartbeat = now
        self._note(link_state="connected", last_error=None)

    def _on_demand(self, now: float) -> None:
        assert self.link is not None
        due = now >= self.next_heartbeat or (now >= self.next_connect and self.outbox.has_pending())
        if not due:
            return
        try:
            self.link.flush(
                timeout=max(30.0, self.config.sync.ack_timeout_s * 2),
                heartbeat=lambda: self._heartbeat("on_demand"),
            )
            self.attempt = 0
            self._note(link_state="idle", last_error=None)
        except SyncError as exc:
            self.attempt += 1
            self._note(link_state="offline", last_error=exc.message)
        self.next_heartbeat = now + self.config.sync.heartbeat_interval_s
        self.next_connect = now + max(
            self.config.sync.on_demand_interval_s,
            backoff_delay(self.attempt, 1.0, self.config.sync.backoff_max_s) if self.attempt else 0,
        )

    def _heartbeat(self, link_state: str) -> bytes:
        beat = heartbeat_record(
            self.outbox,
            link_state=link_state,
            terminal_id=self.outbox.get_meta("terminal_id"),
            last_error=self._meta.get("last_error"),
        )
        # the current key, read again: after `agent rotate-key` the collector accepts the
        # retired key only for a grace period, and a daemon runs for months
        return seal_heartbeat(load_or_create_key(self.home), beat, self.outbox.stats().next_seq - 1)

    def _scheduled(self, now: float) -> None:
        if now >= self.next_prune:
            days = self.config.outbox.retention_days
            self.outbox.prune(days * 86400)
            self.next_prune = now + PRUNE_EVERY_S
        if self.eod_at is not None and datetime.now() >= self.eod_at:
            self.eod_at = next_end_of_day(self.config, datetime.now())
            if self.end_of_day is not None:
                try:
                    self.end_of_day()
                except AgentError as exc:  # the terminal said no: keep running, show why
                    self._note(last_error=f"scheduled End-of-Day: {exc.message}")

    def close(self) -> None:
        """Disconnect and close the outbox."""
        if self.link is not None:
            self.link.disconnect()
        self._note(link_state="stopped")
        self.outbox.close()


def run(
    home: AgentHome,
    config: AgentConfig,
    *,
    stop: threading.Event | None = None,
    end_of_day: EndOfDayHook | None = None,
) -> None:
    """Run the daemon until ``stop`` is set (the CLI sets it on SIGTERM/SIGINT).

    :param end_of_day: called at the scheduled time; it closes the batch and records it
    :raises agent.errors.StorageError: if the outbox becomes unwritable
    """
    stop = stop or threading.Event()
    daemon = Daemon(home, config, end_of_day=end_of_day)
    try:
        while not stop.is_set():
            daemon.turn(stop)
    finally:
        daemon.close()
