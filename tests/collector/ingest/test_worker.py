"""End to end through a real Mosquitto: agent publishes → worker verifies and stores → ack."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.ingest.worker import IngestWorker, WorkerError, _optional_int
from settleguard.collector.store import Store
from settleguard.protocol.acks import decode_acks
from settleguard.protocol.topics import ack_topic

from tests.helpers.mosquitto import Broker, running_broker, wait_until
from tests.helpers.mqtt import MqttProbe
from tests.helpers.records import TestAgent, batch, make_agent

pytestmark = pytest.mark.mosquitto


@pytest.fixture
def broker_with_store(tmp_path: Path, store: Store) -> Iterator[tuple[Broker, Store]]:
    with running_broker(tmp_path / "broker") as running:
        yield running, store


def _sync(running: Broker, store: Store) -> None:
    pid_file = running.files.config.parent / "pid"
    pid_file.write_text(str(running.process.pid))
    enrollment.sync_broker_passwords(
        store, running.files.password_file, collector_user="collector", pid_file=pid_file
    )


def _start_worker(
    running: Broker, store: Store
) -> tuple[IngestWorker, threading.Event, threading.Thread]:
    user, password = running.collector
    worker = IngestWorker(store, {"port": running.port, "username": user, "password": password})
    worker.start()
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    return worker, stop, thread


def _stop(worker: IngestWorker, stop: threading.Event, thread: threading.Thread) -> None:
    stop.set()
    thread.join(timeout=10)
    worker.stop()


def _agent_probe(running: Broker, agent: TestAgent) -> MqttProbe:
    probe = MqttProbe.connect(running.port, agent.agent_id, agent.password)
    assert probe.connected
    assert not probe.subscribe(ack_topic(agent.agent_id))[0].is_failure
    return probe


def _acks(probe: MqttProbe) -> list:  # type: ignore[type-arg]
    return [ack for _, payload in probe.messages for ack in decode_acks(payload)[1]]


def test_publish_store_ack(broker_with_store: tuple[Broker, Store]) -> None:
    running, store = broker_with_store
    agent = make_agent(store, "agent-a")
    _sync(running, store)  # approved agents get their broker login from the store's hashes
    worker, stop, thread = _start_worker(running, store)
    probe = _agent_probe(running, agent)
    try:
        for seq in (1, 2, 1):  # the third is a resend
            probe.publish(agent.topic, agent.seal(batch(batch_no=seq), seq=seq))
        probe.wait_for(lambda _: len(_acks(probe)) == 3)
        assert [(a.seq, a.status) for a in _acks(probe)] == [
            (1, "accepted"), (2, "accepted"), (1, "duplicate")
        ]  # fmt: skip
        assert store.count("batch_summaries") == 2
    finally:
        probe.close()
        _stop(worker, stop, thread)


def test_two_workers_share_the_load_exactly_once(broker_with_store: tuple[Broker, Store]) -> None:
    running, store = broker_with_store
    agent = make_agent(store, "agent-a")
    _sync(running, store)
    workers = [_start_worker(running, store) for _ in range(2)]
    probe = _agent_probe(running, agent)
    try:
        for seq in range(1, 201):
            probe.client.publish(agent.topic, agent.seal(batch(batch_no=seq), seq=seq), qos=1)
        probe.wait_for(lambda _: len(_acks(probe)) >= 200, timeout=30)
        assert sorted(a.seq for a in _acks(probe)) == list(range(1, 201))
        assert {a.status for a in _acks(probe)} == {"accepted"}
        assert store.count("received_records") == 200
        assert all(w.processed > 0 for w, _, _ in workers), "shared subscription split the load"
    finally:
        probe.close()
        for w in workers:
            _stop(*w)


def test_rejected_message_gets_negative_ack(broker_with_store: tuple[Broker, Store]) -> None:
    running, store = broker_with_store
    agent = make_agent(store, "agent-a")
    _sync(running, store)
    worker, stop, thread = _start_worker(running, store)
    probe = _agent_probe(running, agent)
    try:
        forged = agent.seal(batch(amount=500), seq=9).replace(b"500", b"900")
        probe.publish(agent.topic, forged)
        probe.wait_for(lambda _: len(_acks(probe)) == 1)
        [ack] = _acks(probe)
        assert (ack.seq, ack.status, ack.reason) == (9, "rejected", "bad_signature")
        wait_until(lambda: store.count("rejected_messages") == 1)
    finally:
        probe.close()
        _stop(worker, stop, thread)


def test_worker_with_wrong_password_fails_clearly(broker_with_store: tuple[Broker, Store]) -> None:
    running, store = broker_with_store
    worker = IngestWorker(store, {"port": running.port, "username": "collector", "password": "x"})
    with pytest.raises(WorkerError):
        worker.start(timeout=5)


@pytest.mark.parametrize("pipeline", [True, False], ids=["writer-thread", "inline"])
def test_failed_commit_is_retried_and_acked_only_after_it_succeeds(
    broker_with_store: tuple[Broker, Store], monkeypatch: pytest.MonkeyPatch, pipeline: bool
) -> None:
    import settleguard.collector.ingest.worker as worker_module

    running, store = broker_with_store
    agent = make_agent(store, "agent-a")
    _sync(running, store)
    calls = {"n": 0}
    real = worker_module.store_decided

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(worker_module, "store_decided", flaky)
    user, password = running.collector
    worker = IngestWorker(store, {"port": running.port, "username": user, "password": password},
                          pipeline=pipeline)  # fmt: skip
    worker.start()
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    probe = _agent_probe(running, agent)
    try:
        stored_when_acked: list[bool] = []

        def on_ack(_c: object, _u: object, msg: Any) -> None:  # is each acked seq committed?
            for ack in decode_acks(msg.payload)[1]:
                row = store.query_one("SELECT 1 AS x FROM received_records WHERE agent_id = ?"
                                      " AND seq = ?", (agent.agent_id, ack.seq))  # fmt: skip
                stored_when_acked.append(row is not None)

        probe.client.on_message = on_ack
        for seq in (1, 2, 3):
            probe.client.publish(agent.topic, agent.seal(batch(batch_no=seq), seq=seq), qos=1)
        wait_until(lambda: worker.processed == 3, timeout=15)
        assert calls["n"] >= 2, "the first commit failed and was retried"
        assert store.count("received_records") == 3
        wait_until(lambda: len(stored_when_acked) == 3)
        assert all(stored_when_acked), "no ack before its commit"
    finally:
        probe.close()
        _stop(worker, stop, thread)


def _worker_that_dies_after_commit(url: str, settings: dict[str, Any], client_id: str,
                                   pipeline: bool, ready: Any) -> None:  # fmt: skip
    """Child process: a worker whose first post-commit step (acks, PUBACKs) is SIGKILL."""
    import os
    import signal

    from settleguard.collector.store import open_store

    worker = IngestWorker(open_store(url), settings, client_id=client_id, session_expiry_s=600,
                          pipeline=pipeline)  # fmt: skip
    worker._answer = lambda *_: os.kill(os.getpid(), signal.SIGKILL)  # type: ignore[method-assign,assignment,return-value]
    worker.start()
    ready.set()
    while True:
        worker.run_once(0.2)


@pytest.mark.parametrize("pipeline", [True, False], ids=["writer-thread", "inline"])
def test_worker_killed_between_commit_and_ack_only_causes_a_resend(
    broker_with_store: tuple[Broker, Store], pipeline: bool
) -> None:
    """Issue 9: kill -9 after the database commit and before any app ack or PUBACK. The broker
    redelivers the un-PUBACKed messages to the restarted worker (same persistent session), the
    store answers them ``duplicate``, and every record is stored exactly once and acked."""
    import multiprocessing

    running, store = broker_with_store
    agent = make_agent(store, "agent-a")
    _sync(running, store)
    user, password = running.collector
    settings = {"port": running.port, "username": user, "password": password}
    client_id = f"sg-ingest-kill-{'pipe' if pipeline else 'inline'}"
    probe = _agent_probe(running, agent)
    try:
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        child = context.Process(
            target=_worker_that_dies_after_commit,
            args=(store.url, settings, client_id, pipeline, ready),  # type: ignore[attr-defined]
        )
        child.start()
        assert ready.wait(30), "the worker subscribed"
        for seq in (1, 2, 3):
            probe.client.publish(agent.topic, agent.seal(batch(batch_no=seq), seq=seq), qos=1)
        child.join(timeout=30)
        assert child.exitcode == -9, "the worker was killed after its commit"
        committed = store.count("received_records")
        assert committed >= 1, "it died after committing at least one batch"
        assert _acks(probe) == [], "and before publishing any ack"

        worker = IngestWorker(store, settings, client_id=client_id, session_expiry_s=600,
                              pipeline=pipeline)  # fmt: skip
        worker.start()
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_until(lambda: sorted(a.seq for a in _acks(probe)) == [1, 2, 3], timeout=20)
        finally:
            _stop(worker, stop, thread)
        acks = {a.seq: a.status for a in _acks(probe)}
        assert store.count("received_records") == 3
        assert store.count("batch_summaries") == 3
        redelivered = [seq for seq, status in acks.items() if status == "duplicate"]
        assert len(redelivered) == committed, acks  # the committed ones came back as resends
        assert set(acks.values()) <= {"accepted", "duplicate"}
    finally:
        probe.close()


def test_tune_gc_freezes_the_start_up_heap_and_raises_the_young_threshold() -> None:
    """Process-wide, so checked in a fresh interpreter; cycles are still collected."""
    import subprocess
    import sys

    code = (
        "import gc\n"
        "from collector.ingest.worker import GC_GEN0_THRESHOLD, tune_gc\n"
        "default = gc.get_threshold()\n"
        "tune_gc()\n"
        "assert gc.get_freeze_count() > 1000, gc.get_freeze_count()\n"
        "assert gc.get_threshold() == (GC_GEN0_THRESHOLD, *default[1:]), gc.get_threshold()\n"
        "class Node: pass\n"
        "a, b = Node(), Node(); a.other, b.other = b, a\n"
        "del a, b\n"
        "assert gc.collect() >= 2  # the cycle is still found\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=str(Path(__file__).resolve().parents[3]))  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_bad_receive_maximum_is_refused_with_the_setting_named(store: Store) -> None:
    settings = {"port": 1, "username": "collector", "password": "x"}
    for bad in (0, -5, 70000):
        with pytest.raises(WorkerError, match="INGEST_RECEIVE_MAXIMUM"):
            IngestWorker(store, settings, receive_maximum=bad)
    with pytest.raises(WorkerError, match="INGEST_RECEIVE_MAXIMUM must be a whole number"):
        _optional_int({"INGEST_RECEIVE_MAXIMUM": "lots"}, "INGEST_RECEIVE_MAXIMUM")
    assert _optional_int({"INGEST_RECEIVE_MAXIMUM": "512"}, "INGEST_RECEIVE_MAXIMUM") == 512
    assert _optional_int({}, "INGEST_RECEIVE_MAXIMUM") is None
    worker = IngestWorker(store, settings, batch_size=100)
    assert worker.link.receive_maximum == 600  # 6 x batch_size by default
