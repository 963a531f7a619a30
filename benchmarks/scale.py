"""Scale run: PostgreSQL, two ingest workers in one shared-subscription group, then reconcile.

    python benchmarks/scale.py                    # ~10 minutes of ingest (default 600 s)
    python benchmarks/scale.py --duration 60      # a short look

Theory of operation (docs/architecture.md §7-8): a real Mosquitto with our config, a
fresh PostgreSQL database, ``--workers`` ingest processes (``collector.ingest.worker.run_worker``) in
``$share/ingest``, and ``--publishers`` publisher processes that play ``--agents`` enrolled
agents: each seals a fresh ``BatchSummary`` per publish (Ed25519, like a real agent) and keeps
at most ``--window`` records per agent un-acked, waiting for the collector's application acks,
as ``SyncLink`` does. It runs for ``--duration`` seconds, drains, and counts what is stored.
Then it runs one full reconciliation over everything. Every process shares this machine's
cores (publishers, broker, workers and PostgreSQL), so the figures are a floor.

Printed per stage: records/s, CPU seconds per 1,000 batches for each process kind (PostgreSQL's
server processes included), peak RSS (VmHWM) of the workers and the broker, PostgreSQL database
size, and for reconciliation the CPU of its worker processes and their peak memory; the last line
``RESULT ingested=… ingest_per_s=… reconcile_batches_per_s=… cpu_s_per_1000=… lost=…`` where
``cpu_s_per_1000`` is the ingest cost: workers + broker + PostgreSQL CPU seconds per 1,000 batches.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import resource
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (``/proc/<pid>/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def postgres_cpu_seconds() -> float:
    """CPU seconds of every PostgreSQL server process on this machine: the live ones' own, plus
    the postmaster's reaped children's (a backend that ended during a stage still counts)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text[:64]:
            fields = text.rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / TICK  # utime stime cutime cstime
    return total


def descendants(pid: int) -> list[int]:
    """Child processes of ``pid``, recursively (``/proc/<pid>/task/*/children``)."""
    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


class RssSampler(threading.Thread):
    """Samples the resident memory of this process and its descendants every 0.2 s: the peak
    of their sum is what a reconcile run with worker processes needs from the machine."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.2):
            total = sum(status_mb(pid, "VmRSS") for pid in [os.getpid(), *descendants(os.getpid())])
            self.peak_mb = max(self.peak_mb, total)

    def stop(self) -> float:
        self._done.set()
        self.join(5)
        return self.peak_mb


def status_mb(pid: int, field: str) -> float:
    """A memory field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) in MB; 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb(pid: int) -> float:
    return status_mb(pid, "VmHWM")


def publisher(
    port: int,
    agents: list[tuple[str, bytes, str]],
    window: int,
    stop_at: float,
    out: multiprocessing.Queue,
    per_agent: int = 0,
    merchants: int = 500,  # type: ignore[type-arg]
    ready: Any = None,
    go: Any = None,
) -> None:
    """Play ``agents`` (id, raw private key, broker password) until ``stop_at``; report counts.

    With ``per_agent`` > 0 each agent seals that many records *before* ``ready`` is set and
    publishes exactly those after ``go`` (``--records`` mode: the agents' signing cost stays
    out of the timed ingest, as on a real site where every agent signs on its own device).
    """
    import paho.mqtt.client as mqtt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from paho.mqtt.enums import CallbackAPIVersion
    from settleguard.protocol.acks import decode_acks
    from settleguard.protocol.envelope import seal_envelope
    from settleguard.protocol.records import BatchSummary, Bucket
    from settleguard.protocol.topics import ack_topic, rec_topic

    class One:
        def __init__(self, agent_id: str, raw: bytes, password: str) -> None:
            self.agent_id, self.key = agent_id, Ed25519PrivateKey.from_private_bytes(raw)
            self.seq = self.acked = 0
            self.cond = threading.Condition()
            self.ready = threading.Event()
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=agent_id, protocol=mqtt.MQTTv5
            )
            self.client.username_pw_set(agent_id, password)
            self.client.max_inflight_messages_set(window)
            self.client.on_connect = lambda c, *_: c.subscribe(ack_topic(agent_id), 1)
            self.client.on_subscribe = lambda *_: self.ready.set()
            self.client.on_message = self.on_ack
            self.client.connect("127.0.0.1", port)
            self.client.loop_start()

        def on_ack(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
            _, acks = decode_acks(msg.payload)
            with self.cond:
                self.acked += sum(a.status in ("accepted", "duplicate") for a in acks)
                self.cond.notify()

        def payload(self) -> bytes:
            self.seq += 1
            number = int(self.agent_id[-4:])
            record = BatchSummary(
                terminal_id=f"T{self.agent_id[-6:]}",
                merchant_id=f"M{number % merchants:05d}",  # the agent's own (see make_agent)
                batch_no=self.seq,
                closed_at=f"2026-03-{1 + self.seq % 28:02d}T22:00:00Z",
                terminal_local_time=None,
                currency="156",
                buckets=(Bucket("other", sale_count=3, sale_amount=1000 + self.seq),),
                receipt_start=1,
                receipt_end=3,
                host_reconciled=True,
                protocol="zvt",
            )
            return seal_envelope(
                self.key,
                record_type=record.RECORD_TYPE,
                agent_id=self.agent_id,
                seq=self.seq,
                created_at="2026-03-02T22:00:01.000Z",
                body=record.to_body(),
            )

    ones = [One(*a) for a in agents]
    for one in ones:
        one.ready.wait(30)
    sealed: dict[str, list[bytes]] = {}
    if per_agent:
        for one in ones:
            sealed[one.agent_id] = [one.payload() for _ in range(per_agent)][::-1]
            one.seq = 0
    if ready is not None:
        ready.set()
    cpu_before = 0.0
    if go is not None:
        go.wait()
        cpu_before = cpu_seconds(os.getpid())  # what was spent signing in advance is not counted
        stop_at = time.time() + (stop_at - time.time() if not per_agent else 1e9)

    def next_payload(one: One) -> bytes | None:
        if not per_agent:
            return one.payload()
        queue = sealed[one.agent_id]
        if not queue:
            return None
        one.seq += 1
        return queue.pop()

    while time.time() < stop_at:
        sent = 0
        for one in ones:  # round-robin; an agent whose window is full waits for its acks
            room = window - (one.seq - one.acked)
            for _ in range(min(room, window // 4 or 1)):
                payload = next_payload(one)
                if payload is None:
                    break
                one.client.publish(rec_topic(one.agent_id), payload, qos=1)
                sent += 1
        if per_agent and all(not q for q in sealed.values()):
            break
        if not sent:
            with ones[0].cond:
                ones[0].cond.wait(0.01)
    deadline = time.time() + 600
    for one in ones:
        with one.cond:
            while one.acked < one.seq and time.time() < deadline:
                one.cond.wait(0.5)
        one.client.disconnect()
        one.client.loop_stop()
    out.put(
        (
            sum(o.seq for o in ones),
            sum(o.acked for o in ones),
            cpu_seconds(os.getpid()) - cpu_before,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument(
        "--records",
        type=int,
        default=0,
        help="pre-sign this many records, publish exactly those (no --duration)",
    )
    parser.add_argument("--merchants", type=int, default=500)
    args = parser.parse_args()

    import ingest as bench  # benchmarks/ingest.py: broker and database helpers
    from cryptography.hazmat.primitives import serialization
    from settleguard.collector.enrollment import service as enrollment
    from settleguard.collector.ingest.worker import run_worker
    from settleguard.collector.reconcile.store import reconcile
    from settleguard.collector.store import open_store

    from tests.helpers.records import make_agent

    tmp = Path(tempfile.mkdtemp(prefix="sg-scale-"))
    broker, port, files = bench.start_broker(tmp / "broker")
    url, pg_name = bench.fresh_url("postgresql", tmp)
    try:
        store = open_store(url)
        store.migrate()
        with store.transaction() as tx:
            tx.executemany(
                "INSERT INTO merchants (merchant_id, name) VALUES (?, ?)",
                [(f"M{m:05d}", f"Shop {m}") for m in range(args.merchants)],
            )
        agents = [
            make_agent(store, f"scale-{i:04d}", merchant=f"M{i % args.merchants:05d}")
            for i in range(args.agents)
        ]
        (tmp / "pid").write_text(str(broker.pid))
        enrollment.sync_broker_passwords(
            store, files.password_file, collector_user="collector", pid_file=tmp / "pid"
        )
        time.sleep(0.5)  # benchmark only: let the SIGHUP reload finish before agents log in
        raw = [
            (
                a.agent_id,
                a.key.private_bytes(
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                ),
                a.password,
            )
            for a in agents
        ]
        ctx = multiprocessing.get_context("spawn")
        stop = ctx.Event()
        config = {
            "DATABASE_URL": url,
            "MQTT_HOST": "127.0.0.1",
            "MQTT_PORT": port,
            "MQTT_USERNAME": "collector",
            "MQTT_PASSWORD": bench.COLLECTOR_PASSWORD,
            "MQTT_PROTOCOL": "5",
            "INGEST_BATCH_SIZE": 512,
            "INGEST_BATCH_WAIT_S": 0.02,
        }
        readies = [ctx.Event() for _ in range(args.workers)]
        workers = [ctx.Process(target=run_worker, args=(config, stop, None, r)) for r in readies]
        for w in workers:
            w.start()
        for r in readies:
            r.wait(60)
        out = ctx.Queue()
        per_agent = -(-args.records // args.agents) if args.records else 0
        pub_ready = [ctx.Event() for _ in range(args.publishers)]
        go = ctx.Event()
        stop_at = time.time() + args.duration
        pubs = [
            ctx.Process(
                target=publisher,
                args=(
                    port,
                    raw[i :: args.publishers],
                    args.window,
                    stop_at,
                    out,
                    per_agent,
                    args.merchants,
                    pub_ready[i],
                    go,
                ),
            )
            for i in range(args.publishers)
        ]
        for p in pubs:
            p.start()
        if per_agent:
            print(
                f"pre-signing {per_agent * args.agents} records in {args.publishers} processes",
                flush=True,
            )
        for r in pub_ready:
            r.wait(3600)
        worker_cpu0 = sum(cpu_seconds(w.pid) for w in workers if w.pid)
        broker_cpu0 = cpu_seconds(broker.pid)
        pg_cpu0 = postgres_cpu_seconds()
        start = time.time()
        stop_at = start + args.duration
        go.set()
        last, last_t = 0, start
        report_every = 15.0 if per_agent else min(30.0, max(1.0, args.duration / 20))
        results = []
        while len(results) < len(pubs):
            try:  # a publisher reports when all its records are acked (or its time is up)
                results.append(out.get(timeout=report_every))
                if len(results) < len(pubs):
                    continue
            except queue.Empty:
                pass
            now, count = time.time(), store.count("received_records")
            print(
                f"{now - start:6.0f}s stored={count:9d}  last interval {(count - last) / (now - last_t):7.0f}/s",
                flush=True,
            )
            last, last_t = count, now
            if not per_agent and now > stop_at + 180:
                results += [out.get(timeout=60) for _ in range(len(pubs) - len(results))]
        ingest_end = time.time()
        published = sum(r[0] for r in results)
        acked = sum(r[1] for r in results)
        pub_cpu = sum(r[2] for r in results)
        worker_cpu = sum(cpu_seconds(w.pid) for w in workers if w.pid) - worker_cpu0
        broker_cpu = cpu_seconds(broker.pid) - broker_cpu0
        pg_cpu = postgres_cpu_seconds() - pg_cpu0
        worker_rss = max(peak_rss_mb(w.pid) for w in workers if w.pid)
        broker_rss = peak_rss_mb(broker.pid)
        stop.set()
        for w in workers:
            w.join(60)
        for p in pubs:
            p.join(10)
        stored = store.count("received_records")
        ingest_s = ingest_end - start
        size = store.query_one("SELECT pg_database_size(current_database()) AS n")
        db_mb = int(size["n"]) / 2**20 if size else 0.0
        print(
            f"ingest: published={published} acked={acked} stored={stored} in {ingest_s:.0f}s"
            f" = {stored / ingest_s:.0f} records/s with {args.workers} workers"
        )
        per_k = 1000 / max(stored, 1)
        print(
            f"cpu s per 1000 batches: workers={worker_cpu * per_k:.3f} broker={broker_cpu * per_k:.3f}"
            f" postgresql={pg_cpu * per_k:.3f} publishers(agents)={pub_cpu * per_k:.3f}"
        )
        print(
            f"peak RSS: worker={worker_rss:.0f} MB broker={broker_rss:.0f} MB; database {db_mb:.0f} MB"
            f" ({db_mb * 2**20 / max(stored, 1):.0f} bytes/batch)"
        )
        sampler = RssSampler()
        sampler.start()
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        pg0 = postgres_cpu_seconds()
        t0, c0 = time.perf_counter(), time.process_time()
        report = reconcile(store, full=True, now=datetime(2026, 3, 20, tzinfo=UTC))
        rec_s = time.perf_counter() - t0
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        rec_cpu = (
            time.process_time()
            - c0
            + children1.ru_utime
            - children0.ru_utime
            + children1.ru_stime
            - children0.ru_stime
        )
        rec_pg = postgres_cpu_seconds() - pg0
        rec_rss = sampler.stop()
        batches = store.count("batch_summaries")
        rec_k = 1000 / max(batches, 1)
        print(
            f"reconcile: {batches} batches, {report.merchants} merchants in {rec_s:.1f}s ="
            f" {batches / rec_s:.0f} batches/s; cpu s per 1000 batches: reconcile processes"
            f" {rec_cpu * rec_k:.3f}, postgresql {rec_pg * rec_k:.3f}; peak RSS of this process"
            f" and its reconcile workers together {rec_rss:.0f} MB"
        )
        store.close()
        lost = published - stored
        print(
            f"RESULT ingested={stored} ingest_per_s={stored / ingest_s:.0f} "
            f"reconcile_batches_per_s={batches / rec_s:.0f} "
            f"cpu_s_per_1000={(worker_cpu + broker_cpu + pg_cpu) * per_k:.3f} lost={lost}",
            flush=True,
        )
    finally:
        broker.terminate()
        broker.wait()
        bench.drop_pg(pg_name)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
