"""The MQTT ingest worker: :mod:`collector.ingest.mqtt_link` in, :func:`collector.ingest.verify.ingest_batch`,
acks out.

Theory of operation (docs/architecture.md §3.4, §5, §8): the worker's thread takes up to ``batch_size``
messages from the link (waiting at most ``batch_wait_s`` to fill a batch once the first
arrived) and verifies them (:func:`collector.ingest.verify.verify_messages`); a writer thread commits
each verified batch in one transaction (:func:`collector.ingest.verify.store_decided`) and hands the
result back; only then does the worker's thread (a) publish the application acks, one message
per agent on ``sg/v1/a/{agent}/ack`` at QoS 1, and (b) PUBACK the messages — all in one socket
write. The two threads overlap batch N's commit with batch N+1's verification: the batch's
signatures are checked in one call that releases the GIL once (:mod:`protocol.ed25519`), and
batch N goes to the writer right before that call, so the writer's Python runs while this
thread needs no GIL (SQLite and psycopg release it too while the database works and fsyncs).
At most one batch waits for the writer while another is written. The link asks the broker for
up to ``6 × batch_size`` unacknowledged messages (MQTT v5 Receive Maximum): one batch being
written, one held, one being verified and the next ones already in the socket, so the worker
never waits for the broker to refill. ``pipeline=False`` does both steps in one
thread, one batch at a time. A crash anywhere before the commit
leaves the messages un-PUBACKed and un-acked, so the broker or the agent sends them again; a
crash after the commit only causes a resend, which the store answers as ``duplicate``. N
workers (processes) share the load through the MQTT v5 shared subscription
``$share/ingest/sg/v1/a/+/rec``; with MQTT 3.1.1 (e.g. amqtt) run one worker on the plain filter.

The link is our own small MQTT client (:mod:`collector.ingest.mqtt_link` around the sans-I/O
:mod:`collector.ingest.mqtt_codec`) rather than paho-mqtt: ``docs/decisions/0005-ingest-mqtt-client.md``
has the measurements.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import queue
import signal
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from settleguard.collector.enrollment.keys import CollectorKeys
from settleguard.collector.ingest.mqtt_link import IngestLink, LinkError, Received, tls_context
from settleguard.collector.ingest.verify import (
    Keyring,
    Refused,
    Verified,
    group_acks,
    store_decided,
    verify_messages,
)
from settleguard.collector.store import Store, open_store
from settleguard.protocol.acks import Ack, encode_acks
from settleguard.protocol.topics import (
    HEARTBEAT_FILTER,
    PLAIN_INGEST_FILTER,
    SHARED_HEARTBEAT_FILTER,
    SHARED_INGEST_FILTER,
    ack_topic,
)

log = logging.getLogger(__name__)


class WorkerError(Exception):
    """The worker could not connect or subscribe (wrong credentials, broker down)."""


class IngestWorker:
    """One ingest subscriber.

    :param store: where records go
    :param mqtt_settings: ``host``, ``port``, ``username``, ``password``, ``protocol``
        (``"5"`` or ``"3.1.1"``); for TLS ``tls_ca_file`` (and ``tls_cert_file`` +
        ``tls_key_file`` for a client certificate)
    :param keys: collector keys (card-change HMAC), optional
    :param client_id: a fixed MQTT client id (needed to resume a persistent session)
    :param session_expiry_s: with MQTT v5 and a value above 0, resume the session of
        ``client_id`` (clean start off) and ask the broker to keep it this long while
        disconnected, so messages published meanwhile wait for this worker
    :param pipeline: commit in a writer thread while the next batch is verified
    :param receive_maximum: (MQTT v5) at most this many unacknowledged messages in flight from
        the broker to this worker; default ``6 × batch_size`` (see the theory of operation)
    """

    def __init__(
        self,
        store: Store,
        mqtt_settings: Mapping[str, Any],
        *,
        batch_size: int = 256,
        batch_wait_s: float = 0.02,
        keys: CollectorKeys | None = None,
        client_id: str | None = None,
        session_expiry_s: int = 0,
        pipeline: bool = True,
        receive_maximum: int | None = None,
    ) -> None:
        if receive_maximum is not None and not 1 <= receive_maximum <= 65535:
            raise WorkerError(
                f"receive_maximum (INGEST_RECEIVE_MAXIMUM) must be 1 to 65535,"
                f" not {receive_maximum}"
            )
        self.store = store
        self.keyring = Keyring(store)
        self.keys = keys
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.settings = dict(mqtt_settings)
        self.v5 = str(self.settings.get("protocol", "5")) == "5"
        self.processed = 0
        self._retry: list[Received] = []
        # An in-memory SQLite database is per connection, so per thread: no writer thread.
        self.pipeline = pipeline and getattr(store, "path", None) != ":memory:"
        self._jobs: queue.Queue[tuple[list[Received], list[Verified | Refused]] | None] = (
            queue.Queue(maxsize=1)
        )
        self._done: queue.SimpleQueue[tuple[list[Received], list[tuple[str, Ack]] | None]] = (
            queue.SimpleQueue()
        )
        self._in_flight = 0  # batches given to the writer and not answered yet
        self._held: tuple[list[Received], list[Verified | Refused]] | None = None
        self._writer: threading.Thread | None = None
        filters = (
            [SHARED_INGEST_FILTER, SHARED_HEARTBEAT_FILTER]
            if self.v5
            else [PLAIN_INGEST_FILTER, HEARTBEAT_FILTER]
        )
        tls = None
        if self.settings.get("tls_ca_file") or self.settings.get("tls_cert_file"):
            try:
                tls = tls_context(
                    self.settings.get("tls_ca_file"),
                    self.settings.get("tls_cert_file"),
                    self.settings.get("tls_key_file"),
                )
            except LinkError as exc:
                raise WorkerError(str(exc)) from exc
        self.link = IngestLink(
            str(self.settings.get("host", "127.0.0.1")),
            int(self.settings["port"]),
            client_id=client_id or f"sg-ingest-{uuid.uuid4().hex[:10]}",
            filters=filters,
            username=self.settings.get("username") or None,
            password=self.settings.get("password"),
            v5=self.v5,
            session_expiry_s=session_expiry_s,
            tls=tls,
            receive_maximum=receive_maximum or min(6 * batch_size, 65535),
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe (and start the writer thread).

        :raises WorkerError: refused connection or subscription, or no answer in ``timeout``
        """
        try:
            self.link.connect(timeout)
        except LinkError as exc:
            raise WorkerError(str(exc)) from exc
        if self.pipeline and self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, name="sg-ingest-writer", daemon=True
            )
            self._writer.start()

    def stop(self) -> None:
        """Answer what the writer committed, stop it, disconnect. Uncommitted messages stay
        un-acknowledged (the broker or the agent sends them again)."""
        self._hand_over()
        while self._in_flight:
            try:
                self._answer(*self._done.get(timeout=60))
            except queue.Empty:
                log.error("the writer did not finish within 60 s; its batch will be redelivered")
                break
        if self._writer is not None:
            self._jobs.put(None)
            self._writer.join(60)
            self._writer = None
        self.link.close()

    # -- the work -----------------------------------------------------------------------------

    def _write_loop(self) -> None:
        """The writer thread: commit each job, hand back its acks (None if the store failed)."""
        while (job := self._jobs.get()) is not None:
            batch, decided = job
            try:
                acks: list[tuple[str, Ack]] | None = store_decided(
                    self.store, decided, keys=self.keys
                )
            except Exception:
                log.exception("store failed; %d messages will be retried", len(batch))
                acks = None
                time.sleep(0.5)  # back off from a failing database instead of spinning
            self._done.put((batch, acks))

    def _answer(self, batch: list[Received], acks: list[tuple[str, Ack]] | None) -> int:
        """After a commit: app acks, then PUBACKs, in one write. A failed commit: retry."""
        self._in_flight -= 1
        if acks is None:
            self._retry.extend(batch)
            return 0
        link = self.link
        for agent_id, items in group_acks(acks):
            link.publish(ack_topic(agent_id), encode_acks(agent_id, items), qos=1)
        link.ack_all(batch)
        link.flush()
        self.processed += len(batch)
        return len(batch)

    def _verify(self, batch: list[Received]) -> list[Verified | Refused]:
        return verify_messages(batch, self.keyring, before_signatures=self._hand_over)

    def _hand_over(self) -> None:
        """Give the verified batch we hold to the writer (waits while it has one queued)."""
        if self._held is not None:
            self._jobs.put(self._held)
            self._in_flight += 1
            self._held = None

    def _answer_finished(self) -> int:
        answered = 0
        while self._in_flight:  # what the writer finished
            try:
                answered += self._answer(*self._done.get_nowait())
            except queue.Empty:
                break
        return answered

    def run_once(self, timeout: float = 0.5) -> int:
        """Take and verify one batch (waiting up to ``timeout`` for its first message), pass the
        previous one to the writer, and answer every batch the writer has committed meanwhile.

        A verified batch is held until the next batch's signatures are checked
        (:func:`collector.ingest.verify.verify_messages` calls :meth:`_hand_over` right before): the
        writer's Python then runs while this thread needs no GIL, instead of competing with
        it. With nothing more to verify, the held batch goes to the writer at once.

        :returns: how many messages were committed and answered in this call
        """
        if not self.pipeline:
            return self._run_once_inline(timeout)
        answered = self._answer_finished()
        batch, self._retry = self._retry, []
        if not batch and self._held is not None:  # more already here? else commit what we hold
            batch = self.link.receive(self.batch_size, 0.0, self.batch_wait_s)
            if not batch:
                self._hand_over()
        if not batch:  # with a commit running, come back soon to answer it
            wait = min(timeout, self.batch_wait_s) if self._in_flight else timeout
            batch = self.link.receive(self.batch_size, wait, self.batch_wait_s)
        if batch:
            decided = self._verify(batch)
            self._hand_over()  # if no signature was left to check, the hand-over is still due
            self._held = (batch, decided)
            answered += self._answer_finished()  # committed while we verified: the GIL is ours
        elif self._in_flight:  # nothing new: wait for the running commit instead
            try:
                answered += self._answer(*self._done.get(timeout=timeout))
            except queue.Empty:
                pass
        return answered

    def _run_once_inline(self, timeout: float) -> int:
        batch, self._retry = self._retry, []
        if not batch:
            batch = self.link.receive(self.batch_size, timeout, self.batch_wait_s)
        if not batch:
            return 0
        decided = self._verify(batch)
        self._in_flight += 1
        try:
            acks: list[tuple[str, Ack]] | None = store_decided(self.store, decided, keys=self.keys)
        except Exception:
            log.exception("store failed; %d messages will be retried", len(batch))
            acks = None
            time.sleep(0.5)  # back off from a failing database instead of spinning
        return self._answer(batch, acks)

    def run(self, stop: threading.Event) -> None:
        """Process batches until ``stop`` is set."""
        while not stop.is_set():
            self.run_once()


#: Young-generation threshold of the cyclic garbage collector in a worker process (Python's
#: default is 700): see :func:`tune_gc`.
GC_GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Set a worker process's cyclic garbage collector for its steady state.

    A batch allocates tens of thousands of short-lived containers (parsed envelopes, records,
    rows) that reference counting frees as soon as the batch is answered; with the default
    threshold the collector ran every 700 of them and its older generations rescanned the
    whole heap of imported modules. Freezing what exists after start-up takes that heap out
    of every scan, and a higher threshold lets a batch come and go between young collections.
    Cycles are still collected, only less often (figures: docs/decisions/0006-hot-path-figures.md). Call it once, after the imports and set-up (process-wide).
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def worker_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """MQTT settings for :class:`IngestWorker` from an app config mapping."""
    return {
        "host": config["MQTT_HOST"],
        "port": config["MQTT_PORT"],
        "username": config["MQTT_USERNAME"],
        "password": config["MQTT_PASSWORD"],
        "protocol": config["MQTT_PROTOCOL"],
        "tls_ca_file": config.get("MQTT_TLS_CA_FILE"),
        "tls_cert_file": config.get("MQTT_TLS_CERT_FILE"),
        "tls_key_file": config.get("MQTT_TLS_KEY_FILE"),
    }


def _optional_int(config: Mapping[str, Any], key: str) -> int | None:
    value = config.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise WorkerError(f"{key} must be a whole number, not {value!r}") from None


def run_worker(
    config: Mapping[str, Any],
    stop: Any = None,
    keys: CollectorKeys | None = None,
    ready: Any = None,
) -> int:
    """Run one worker process until ``stop`` (an Event) is set or SIGTERM/SIGINT arrives.

    :param config: plain settings (``DATABASE_URL``, ``MQTT_*``, ``INGEST_*``)
    :param ready: an Event set once the worker is subscribed (benchmarks, supervisors)
    :returns: messages processed
    """
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    store = open_store(config["DATABASE_URL"])
    worker = IngestWorker(
        store,
        worker_settings(config),
        batch_size=int(config.get("INGEST_BATCH_SIZE", 256)),
        batch_wait_s=float(config.get("INGEST_BATCH_WAIT_S", 0.02)),
        keys=keys,
        receive_maximum=_optional_int(config, "INGEST_RECEIVE_MAXIMUM"),
    )
    tune_gc()
    worker.start()
    if ready is not None:
        ready.set()
    try:
        while not stop.is_set():
            worker.run_once()
    finally:
        worker.stop()
        store.close()
    return worker.processed


def run_workers(config: Mapping[str, Any], count: int, keys: CollectorKeys | None = None) -> None:
    """Run ``count`` worker processes in one shared-subscription group until interrupted."""
    if count <= 1:
        run_worker(config, keys=keys)
        return
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    plain = {k: v for k, v in config.items() if isinstance(v, str | int | float | bool | None)}
    processes = [context.Process(target=run_worker, args=(plain, stop, keys)) for _ in range(count)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        stop.set()
        for process in processes:
            process.join()
