"""MQTT sync: publish outbox records in ``seq`` order and apply the collector's acks.

Theory of operation
-------------------
docs/architecture.md §3.4 and §4 ("Sync"). One :class:`SyncLink` owns one paho-mqtt 2.x client
(``CallbackAPIVersion.VERSION2``) and one outbox connection. paho's network thread
(``loop_start``) does the socket I/O, so sending and receiving overlap; its callbacks only set
flags, append received acks to a locked list and set an :class:`threading.Event`. Everything
else — the outbox, publishing, resending — happens in the caller's thread, which drives the
link with :meth:`SyncLink.pump`: a blocking wait on that event for at most ``timeout``
seconds. No busy polling.

Per pump:

1. wait for the network thread to report acks on ``sg/v1/a/{id}/ack`` or a link change;
2. acks received take their records out of flight; they are committed to the outbox in
   groups (:meth:`SyncLink.write_acks`: one fsync per group, not per record). An ack is the
   only thing that takes a row out of ``pending``; a PUBACK only means the broker has it;
3. records in flight longer than ``ack_timeout_s`` without an app ack are published again
   (same bytes: the collector answers ``duplicate``);
4. the window is refilled from the outbox in ``seq`` order, at most ``window`` records
   published and not yet acked. paho's own queue is capped at the same size
   (``max_queued_messages``): the outbox is the queue.

Sessions are persistent (MQTT v5 ``clean_start=False`` with an explicit session expiry, or
3.1.1 ``clean_session=False``), so acks published while the agent was offline arrive when it
reconnects. A reconnect forgets the in-flight set and starts again from the oldest pending
record. Reconnects back off exponentially with full jitter (:func:`backoff_delay`).

Negative acks (``rejected``, ``conflict``) mark the row rejected with its reason: shown by
``status``, never resent.
"""

from __future__ import annotations

import contextlib
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from settleguard.agent.broker_target import BrokerTarget
from settleguard.agent.config import SyncSettings
from settleguard.agent.errors import SyncError, UsageError
from settleguard.agent.keys import AgentKey
from settleguard.agent.outbox import Outbox
from settleguard.agent.tls import client_context, explain_dropped, explain_handshake_error
from settleguard.protocol.acks import Ack, AckError, decode_acks
from settleguard.protocol.topics import ack_topic, hb_topic, rec_topic

#: Write app acks to the outbox once this many are waiting …
ACK_WRITE_BATCH = 500
#: … or once the oldest has waited this long (each write is one fsync'd transaction).
ACK_WRITE_DELAY_S = 0.05
#: How long a heartbeat may take to reach the socket before a flush disconnects anyway.
HEARTBEAT_WRITE_WAIT_S = 2.0


@dataclass(frozen=True, slots=True)
class FlushResult:
    """What one :meth:`SyncLink.flush` achieved."""

    acked: int
    rejected: int
    pending: int
    complete: bool


def backoff_delay(attempt: int, minimum: float, maximum: float) -> float:
    """Full-jitter exponential back-off: uniform in ``[minimum/2, min(max, minimum·2^n)]``."""
    ceiling = min(maximum, minimum * (2 ** min(attempt, 30)))
    return random.uniform(minimum / 2, max(minimum / 2, ceiling))


class _PahoLog:
    """paho's log (``Client.enable_logger``), passed on to a logger, keeping the first error.

    paho says *why* a socket failed (e.g. the TLS error behind a dropped connection) only in
    its log. :meth:`SyncLink.connect` and the disconnect callback put that line in the error
    they report (``status``, the daemon's log, the CLI's one line), so paho's own socket
    lines go to DEBUG; an exception in one of our callbacks (a bug) stays an ERROR. paho
    calls this for every packet: disabled levels cost one ``isEnabledFor``, no formatting.
    """

    __slots__ = ("first_error", "logger")

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.first_error: str | None = None

    def log(self, level: int, msg: str, *args: object) -> None:
        if level >= logging.ERROR:
            text = msg % args if args else msg
            if not text.startswith("Caught exception"):
                self.first_error = self.first_error or text
                level = logging.DEBUG
        if self.logger.isEnabledFor(level):
            self.logger.log(level, msg, *args)


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class SyncLink:
    """One agent's MQTT link. Call its methods from one thread (paho adds its own I/O thread).

    :param outbox: the agent's outbox (this link's own connection to it)
    :param key: the agent key (for the agent id, client id and topics)
    :param target: broker address and credentials
    :param settings: ``[sync]`` settings
    :param clock: monotonic clock, injectable for tests
    """

    def __init__(
        self,
        outbox: Outbox,
        key: AgentKey,
        target: BrokerTarget,
        settings: SyncSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not target.username and not target.cert_file:
            raise UsageError("no broker credentials: enroll first or set [broker] username")
        if not target.tls and (target.cert_file or target.ca_file):
            raise UsageError(
                f"[broker] ca_file/cert_file are set but the broker URL is plain mqtt:// "
                f"({target.host}:{target.port}): use mqtts://"
            )
        self.outbox = outbox
        self.agent_id = key.agent_id
        self.target = target
        self.settings = settings
        self.clock = clock
        self.connected = False
        self.last_error: str | None = None
        self.acked_total = 0
        self.rejected_total = 0
        self.published_total = 0
        self._subscribed = False
        self._refused: str | None = None
        self._acks: list[Ack] = []  # received by the network thread, not yet taken
        self._lock = threading.Lock()  # guards _acks
        self._wake = threading.Event()  # set by the network thread: acks, (dis)connect
        self._unwritten: list[Ack] = []  # taken out of flight, not yet in the outbox
        self._unwritten_since = 0.0
        # seq -> (sent at, payload), in send order: the first entry is the oldest
        self._inflight: dict[int, tuple[float, bytes]] = {}
        self._rec_topic = rec_topic(key.agent_id)
        self._cursor = 0
        self._sub_mid: int | None = None
        self._paho_log = _PahoLog(logging.getLogger("settleguard.agent.mqtt"))
        self._tls = client_context(target) if target.tls else None
        self._client = self._make_client()

    # -- client setup -------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        v5 = self.target.protocol == 5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.agent_id,
            clean_session=None if v5 else False,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,  # we back off ourselves, with jitter
        )
        if self.target.username:
            client.username_pw_set(self.target.username, self.target.password or None)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        client.enable_logger(self._paho_log)  # type: ignore[arg-type]
        # No paho in-flight limit: with one, paho rescans every stored message on each PUBACK
        # (O(window) per record; docs/decisions/0006-hot-path-figures.md). Our window bounds
        # what is in flight, and the queue cap (same size) bounds what paho holds.
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(self.settings.window)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self._wake.set()
        if rc.is_failure:
            self._refused = f"broker refused the connection: {rc}"
            return
        self.connected = True
        result, self._sub_mid = client.subscribe(ack_topic(self.agent_id), qos=1)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._refused = f"cannot subscribe to acks: {mqtt.error_string(result)}"

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, codes: Any, _p: Any) -> None:
        if mid != self._sub_mid:
            return
        self._wake.set()
        if any(code.is_failure for code in codes):
            self._refused = f"broker refused the ack subscription: {codes[0]}"
        else:
            self._subscribed = True

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            agent_id, acks = decode_acks(bytes(message.payload))
        except AckError as exc:
            self.last_error = f"malformed ack ignored: {exc}"
            return
        if agent_id == self.agent_id:
            with self._lock:
                self._acks.extend(acks)
            self._wake.set()

    def _on_publish(self, _c: mqtt.Client, _u: Any, _mid: int, rc: Any, _p: Any) -> None:
        if rc.is_failure:  # e.g. v5 PUBACK "Not authorized": the ACL refused our topic
            self.last_error = f"broker refused a record: {rc}"

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connected = False
        self._subscribed = False
        if rc.is_failure:
            why = self._paho_log.first_error
            self.last_error = f"disconnected: {rc}" + (f" ({why})" if why else "")
        self._wake.set()

    # -- connecting ---------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Connected and subscribed to our ack topic."""
        return self.connected and self._subscribed

    def connect(self, timeout: float = 15.0) -> None:
        """Connect, subscribe to acks, and return when ready.

        :raises agent.errors.SyncError: refused (credentials, ACL), unreachable, or timed out
        """
        self._refused = None
        self._paho_log.first_error = None
        self.write_acks()  # before the cursor rewinds: acked rows must not look pending
        self._inflight.clear()
        self._cursor = 0
        properties = None
        if self.target.protocol == 5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self.settings.session_expiry_s
        where = f"{self.target.host}:{self.target.port}"
        try:
            if self.target.protocol == 5:
                self._client.connect(
                    self.target.host,
                    self.target.port,
                    self.settings.keepalive_s,
                    clean_start=False,
                    properties=properties,
                )
            else:
                self._client.connect(self.target.host, self.target.port, self.settings.keepalive_s)
        except ssl.SSLError as exc:  # before OSError: it is one
            if self._tls is not None:
                self._tls.close_unfinished()
            raise self._fail(explain_handshake_error(exc, where, self.target)) from exc
        except OSError as exc:
            hint = ""
            if self.target.tls and isinstance(exc, ConnectionResetError):
                hint = " (reset during the TLS handshake: is this port a TLS listener?)"
            raise self._fail(f"cannot reach broker {where}: {exc}{hint}") from exc
        self._client.loop_start()
        deadline = self.clock() + timeout
        while not self.ready:
            if self._refused:
                self._client.disconnect()
                raise self._fail(self._refused)
            remaining = deadline - self.clock()
            if remaining <= 0:
                self._client.disconnect()
                raise self._fail(f"broker {where} did not answer within {timeout:g} s")
            self._wake.wait(min(remaining, 1.0))
            self._wake.clear()
            if not self._client.is_connected() and not self.ready and not self._refused:
                if self._client._thread is None or not self._client._thread.is_alive():
                    raise self._fail(self._lost_message(where))
        self.last_error = None

    def _lost_message(self, where: str) -> str:
        why = self._paho_log.first_error
        if self.target.tls and not self.connected:  # dropped before CONNACK: see agent/tls.py
            return explain_dropped(where, self.target, why)
        return f"connection to broker {where} lost" + (f": {why}" if why else "")

    def _release_sockets(self) -> None:
        # Stop the network thread; paho keeps its wake-up socket pair until __del__ or the
        # next connect, so close it now: a stopped link holds no file descriptors.
        self._client.loop_stop()
        self._client._reset_sockets()

    def _fail(self, message: str) -> SyncError:
        self._release_sockets()
        self.connected = False
        self.last_error = message
        return SyncError(message)

    def disconnect(self) -> None:
        """Disconnect cleanly (the broker keeps our session for ``session_expiry_s``)."""
        self.write_acks()
        if self.connected:
            self._client.disconnect()
        self._release_sockets()
        self.connected = False
        self._subscribed = False

    # -- the loop -----------------------------------------------------------------------

    def pump(self, timeout: float) -> None:
        """Wait at most ``timeout`` s for acks or a link change, then apply acks, resend, refill.

        :raises agent.errors.StorageError: if the outbox cannot be written
        """
        if self._unwritten:
            timeout = min(timeout, self._unwritten_since + ACK_WRITE_DELAY_S - self.clock())
        if self.connected and timeout > 0:
            self._wake.wait(timeout)
        self._wake.clear()
        if not self.connected:
            self.last_error = self.last_error or "connection lost"
        self._take_acks()
        if self._unwritten and (
            len(self._unwritten) >= ACK_WRITE_BATCH
            or not self._inflight
            or not self.ready
            or self.clock() - self._unwritten_since >= ACK_WRITE_DELAY_S
        ):
            self.write_acks()
        if self.ready:
            self._resend_overdue()
            self._fill_window()

    def _take_acks(self) -> None:
        with self._lock:
            acks, self._acks = self._acks, []
        if not acks:
            return
        if not self._unwritten:
            self._unwritten_since = self.clock()
        for ack in acks:
            self._inflight.pop(ack.seq, None)
        self._unwritten.extend(acks)

    def write_acks(self) -> None:
        """Commit the acks taken so far to the outbox, in one transaction.

        Acks are written in groups (:data:`ACK_WRITE_BATCH`, at most
        :data:`ACK_WRITE_DELAY_S` late) because each commit is an fsync. Losing a group to a
        crash only means those records are sent again and acked ``duplicate``.
        """
        if not self._unwritten:
            return
        acks, self._unwritten = self._unwritten, []
        now = _utc_now()
        meta: dict[str, str | None] = {"last_sync_at": now}
        if any(ack.status in ("accepted", "duplicate") for ack in acks):
            meta["last_accepted_at"] = now  # the collector accepts only an approved agent's
        changed = self.outbox.apply_acks(acks, meta=meta)
        self.acked_total += changed
        self.rejected_total += sum(ack.status in ("rejected", "conflict") for ack in acks)

    def _publish(self, seq: int, payload: bytes) -> bool:
        info = self._client.publish(self._rec_topic, payload, qos=1)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            return False
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            self.last_error = f"publish failed: {mqtt.error_string(info.rc)}"
            return False
        self._inflight.pop(seq, None)  # a resend moves to the end: keep send order
        self._inflight[seq] = (self.clock(), payload)
        self.published_total += 1
        return True

    def _resend_overdue(self) -> None:
        cutoff = self.clock() - self.settings.ack_timeout_s
        overdue = []
        for seq, (sent, _) in self._inflight.items():  # oldest first: stop at the first young one
            if sent > cutoff:
                break
            overdue.append(seq)
        for seq in sorted(overdue):
            if not self._publish(seq, self._inflight[seq][1]):
                break

    def _fill_window(self) -> None:
        room = self.settings.window - len(self._inflight)
        # refill in chunks (a quarter window at least): one outbox query per chunk, not per ack
        if room <= 0 or (self._inflight and room < max(1, self.settings.window // 4)):
            return
        for seq, payload in self.outbox.pending(after_seq=self._cursor, limit=room):
            if not self._publish(seq, payload):
                return
            self._cursor = seq

    @property
    def inflight(self) -> int:
        """Records published and not yet acked by the collector."""
        return len(self._inflight)

    def next_deadline(self) -> float | None:
        """Monotonic time at which the oldest in-flight record becomes overdue."""
        if not self._inflight:
            return None
        oldest_sent, _ = next(iter(self._inflight.values()))
        return oldest_sent + self.settings.ack_timeout_s

    def publish_heartbeat(self, payload: bytes) -> None:
        """Publish a signed heartbeat on the ``hb`` topic (QoS 0: the next one supersedes it).

        Waits briefly until it is written to the socket: a flush with nothing else to send
        disconnects at once, and a QoS 0 message still queued then is dropped.
        """
        if self.connected:
            info = self._client.publish(hb_topic(self.agent_id), payload, qos=0)
            with contextlib.suppress(RuntimeError, ValueError):  # the link went down meanwhile
                info.wait_for_publish(HEARTBEAT_WRITE_WAIT_S)

    def flush(self, timeout: float, *, heartbeat: Callable[[], bytes] | None = None) -> FlushResult:
        """Connect-on-demand: connect, send everything pending, wait for acks, disconnect.

        :param timeout: give up after this many seconds (what is left stays pending)
        :param heartbeat: makes a signed heartbeat to publish once connected
        :raises agent.errors.SyncError: if the broker cannot be reached or refuses us
        """
        deadline = self.clock() + timeout
        acked0, rejected0 = self.acked_total, self.rejected_total
        self.connect(timeout=max(0.1, deadline - self.clock()))
        try:
            if heartbeat is not None:
                self.publish_heartbeat(heartbeat())
            self.pump(0)
            while self.outbox.has_pending() and self.clock() < deadline:
                if not self.connected:
                    raise self._fail(self.last_error or "connection lost during flush")
                self.pump(min(1.0, max(0.0, deadline - self.clock())))
        finally:
            self.disconnect()
        pending = self.outbox.stats().pending
        return FlushResult(
            acked=self.acked_total - acked0,
            rejected=self.rejected_total - rejected0,
            pending=pending,
            complete=pending == 0,
        )
