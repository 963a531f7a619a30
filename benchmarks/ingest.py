"""Ingest benchmark: signed records from simulated agents through local Mosquitto into the store.

    python benchmarks/ingest.py --quick            # < 1 minute, SQLite
    python benchmarks/ingest.py --store postgresql # full size, fresh PostgreSQL database

Last line: ``RESULT ingest_per_s=… verify_ceiling_per_s=… ratio=… scale2=… lost=… duplicated=…
store=…`` where ``verify_ceiling_per_s`` is bare Ed25519 verification of payloads shaped like the
rounds' on one core in this run, ``ratio`` = one worker's ingest rate over that ceiling and
``scale2`` = two worker processes' rate over one's. The publishing agents, the broker and the
workers all share this machine's cores, so the figures are a floor for a collector host of its
own.

``--repeat`` pairs (default 3) of a one-worker and a two-worker round are run. The ceiling is
sampled right before and right after the one-worker round (twice each, both ways each time, the
faster way counts) and a pair's ceiling is the median of those four samples: this shared
machine's single-core speed moves by up to a third within seconds, so samples next to the
round compare like with like, where the best of them would compare the worker's average moment
with the machine's best one (and fall with every extra sample taken). The best is printed too.
Lost and duplicated are sums over all rounds, the rest medians over the pairs.

Each round also prints the workers' CPU per record split into their main threads (MQTT,
checks, signatures) and their writer threads (the store): the writer is what a one-worker
round gets from the otherwise idle second core and a two-worker round has to share.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from settleguard.collector.enrollment import broker
from settleguard.collector.enrollment import service as enrollment
from settleguard.collector.ingest.worker import IngestWorker, tune_gc, worker_settings
from settleguard.collector.store import open_store
from settleguard.protocol.acks import decode_acks
from settleguard.protocol.envelope import DOMAIN, read_header

from tests.helpers.records import TestAgent, batch, make_agent

COLLECTOR_PASSWORD = "bench-collector"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_broker(directory: Path) -> tuple[subprocess.Popen[bytes], int, broker.BrokerFiles]:
    port = free_port()
    files = broker.write_broker_config(
        directory,
        port=port,
        collector_password_hash=broker.hash_password(COLLECTOR_PASSWORD),
        run_as=pwd.getpwuid(os.geteuid()).pw_name,
    )
    binary = broker.mosquitto_binary()
    if binary is None:
        sys.exit("mosquitto binary not found (apt-get install mosquitto)")
    # Benchmark only: the queued mode parks the whole load (up to 40,000 messages) in the
    # workers' sessions before timing; the shipped limit of 10,000 per session would drop some.
    with files.config.open("a") as config:
        config.write("max_queued_messages 0\n")
    process = subprocess.Popen([binary, "-c", str(files.config)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port, files
        except OSError:
            time.sleep(0.02)
    sys.exit("mosquitto did not start")


def fresh_url(kind: str, directory: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{directory / f'bench-{uuid.uuid4().hex[:6]}.db'}", None
    import psycopg

    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    name = f"sg_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:5432/{name}", name


def drop_pg(name: str | None) -> None:
    if name:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Publisher:
    """One simulated agent: publishes its payloads at QoS 1 and counts its acks."""

    def __init__(self, agent: TestAgent, port: int, payloads: list[bytes]) -> None:
        self.agent, self.payloads = agent, payloads
        self.acks: dict[int, int] = {}
        self.last_ack = 0.0
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=agent.agent_id, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(agent.agent_id, agent.password)
        self.client.max_inflight_messages_set(200)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(f"sg/v1/a/{agent.agent_id}/ack", 1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        for ack in decode_acks(msg.payload)[1]:
            self.acks[ack.seq] = self.acks.get(ack.seq, 0) + 1
        self.last_ack = time.perf_counter()

    def publish_all(self, wait: bool = False) -> None:
        infos = [self.client.publish(self.agent.topic, p, qos=1) for p in self.payloads]
        if wait:  # until the broker has PUBACKed every message (it holds them now)
            for info in infos:
                info.wait_for_publish(60)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _cpu_ticks(stat: Path) -> int:
    """User + system clock ticks from a ``/proc/…/stat`` file (a process's or a thread's)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) from /proc."""
    return _cpu_ticks(Path(f"/proc/{pid}/stat")) / os.sysconf("SC_CLK_TCK")


def thread_split_seconds(pid: int) -> tuple[float, float]:
    """CPU time of a process's main thread and of all its other threads, from /proc.

    A worker's main thread reads MQTT and verifies; its other threads (the writer) store. In
    the one-worker round the writer runs on the otherwise idle second core; in the two-worker
    round it competes with the other worker, so this split explains much of ``scale2``. A
    thread that has ended is no longer listed; the writer lives as long as its worker.
    """
    main = others = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            ticks = _cpu_ticks(task / "stat")
        except FileNotFoundError:  # the thread ended while we listed them
            continue
        if int(task.name) == pid:
            main += ticks
        else:
            others += ticks
    tick = os.sysconf("SC_CLK_TCK")
    return main / tick, others / tick


def machine_busy_seconds() -> float:
    """CPU time all cores spent busy since boot (every process on the machine)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def bench_worker(
    config: dict[str, object],
    client_id: str,
    session_s: int,
    ready: Any,
    go: Any,
    stop: Any,
    batches: Any,
    answered: Any,
    last: Any,
) -> None:
    """One worker process: set up everything, then connect when ``go`` is set.

    Reports its number of batches, of records answered, and the ``time.perf_counter()`` of its
    last answer (the system-wide monotonic clock on Linux, so comparable between processes).
    """
    store = open_store(str(config["DATABASE_URL"]))
    worker = IngestWorker(
        store,
        worker_settings(config),
        batch_size=256,
        batch_wait_s=0.01,
        client_id=client_id,
        session_expiry_s=session_s,
    )
    tune_gc()  # as run_worker does
    ready.set()
    go.wait()
    worker.start()
    count = records = 0
    try:
        while not stop.is_set():
            done = worker.run_once(0.1)
            if done:
                count += 1
                records += done
                last.value = time.perf_counter()
    finally:
        worker.stop()
        store.close()
        batches.value = count
        answered.value = records


def run_round(
    args: argparse.Namespace,
    workers: int,
    port: int,
    files: broker.BrokerFiles,
    proc: subprocess.Popen[bytes],
    tmp: Path,
    mode: str,
) -> dict[str, Any]:
    """One measured run (``mode`` queued or live); returns rate, loss and CPU accounting."""
    url, pg_name = fresh_url(args.store, tmp)
    store = open_store(url)
    store.migrate()
    tag = f"{mode[0]}{workers}"
    agents = [make_agent(store, f"bench-{tag}-{i:03d}") for i in range(args.agents)]
    pid_file = tmp / "pid"
    pid_file.write_text(str(proc.pid))
    enrollment.sync_broker_passwords(
        store, files.password_file, collector_user="collector", pid_file=pid_file
    )
    per_agent = args.records // args.agents
    payloads = {
        a.agent_id: [
            a.seal(batch(terminal_id=f"T{a.agent_id[-3:]}", batch_no=s), s)
            for s in range(1, per_agent + 1)
        ]
        for a in agents
    }
    config = {
        "DATABASE_URL": url,
        "MQTT_HOST": "127.0.0.1",
        "MQTT_PORT": port,
        "MQTT_USERNAME": "collector",
        "MQTT_PASSWORD": COLLECTOR_PASSWORD,
        "MQTT_PROTOCOL": "5",
    }
    client_ids = [f"bench-ingest-{tag}-{i}-{uuid.uuid4().hex[:6]}" for i in range(workers)]
    session_s = 600 if mode == "queued" else 0
    if mode == "queued":  # create the workers' sessions and shared subscriptions, then leave
        for client_id in client_ids:
            primer = IngestWorker(
                store, worker_settings(config), client_id=client_id, session_expiry_s=session_s
            )
            primer.start()
            primer.stop()
    pubs = [Publisher(a, port, payloads[a.agent_id]) for a in agents]
    for p in pubs:
        p.subscribed.wait(10)
    if mode == "queued":  # the whole load waits in the broker before the clock starts
        threads = [threading.Thread(target=p.publish_all, args=(True,)) for p in pubs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    ctx = multiprocessing.get_context("spawn")
    stop, go = ctx.Event(), ctx.Event()
    readies = [ctx.Event() for _ in range(workers)]
    counters = [ctx.Value("i", 0) for _ in range(workers)]
    answered = [ctx.Value("i", 0) for _ in range(workers)]
    lasts = [ctx.Value("d", 0.0) for _ in range(workers)]
    procs = [
        ctx.Process(target=bench_worker, args=(config, c, session_s, r, go, stop, n, a, t))
        for c, r, n, a, t in zip(client_ids, readies, counters, answered, lasts, strict=True)
    ]
    for p in procs:
        p.start()
    for r in readies:
        r.wait(60)
    total = per_agent * len(agents)
    pids = {"broker": [proc.pid], "workers": [p.pid for p in procs], "agents": [os.getpid()]}
    cpu0 = {k: sum(cpu_seconds(pid) for pid in v) for k, v in pids.items()}
    split0 = [thread_split_seconds(pid) for pid in pids["workers"]]
    busy0 = machine_busy_seconds()
    spy = None
    if args.profile and workers == 1:  # sample the worker for the whole timed phase
        out = Path(args.profile) / f"worker-{mode}-{args.store}.txt"
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "-p",
                str(procs[0].pid),
                "--threads",
                "-r",
                "250",
                "-f",
                "raw",
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(1)
    start = time.perf_counter()
    go.set()
    if mode == "live":
        time.sleep(0.3)  # let the workers connect and join the shared group before publishing
        start = time.perf_counter()
        threads = [threading.Thread(target=p.publish_all) for p in pubs]
        for t in threads:
            t.start()
    deadline = time.monotonic() + args.timeout
    while sum(len(p.acks) for p in pubs) < total and time.monotonic() < deadline:
        time.sleep(0.005)
    end = max(p.last_ack for p in pubs)
    acked = sum(len(p.acks) for p in pubs)
    if acked < total:
        print(f"TIMEOUT: {total - acked} of {total} records not acked within {args.timeout} s")
    cpu1 = {k: sum(cpu_seconds(pid) for pid in v) for k, v in pids.items()}
    split1 = [thread_split_seconds(pid) for pid in pids["workers"]]
    busy = machine_busy_seconds() - busy0
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    stop.set()
    for p in procs:
        p.join(30)
    for p in pubs:
        p.close()
    if mode == "queued":  # end the parked sessions, or the next round's group would include them
        for client_id in client_ids:
            cleaner = IngestWorker(store, worker_settings(config), client_id=client_id)
            cleaner.start()  # clean start, session expiry 0: the session ends at disconnect
            cleaner.stop()
    stored = store.count("received_records")
    duplicated = sum(n - 1 for p in pubs for n in p.acks.values()) + max(stored - total, 0)
    store.close()
    drop_pg(pg_name)
    wall = end - start
    cpu = {k: cpu1[k] - cpu0[k] for k in cpu0}
    cpu["other"] = max(busy - sum(cpu.values()), 0.0)  # everything else on this shared machine
    batches = sum(c.value for c in counters)
    per_us = max(acked, 1) / 1e6  # seconds / per_us = µs per record
    return {
        "rate": acked / wall,
        "lost": total - stored,
        "duplicated": duplicated,
        "wall": wall,
        "cores": {k: v / wall for k, v in cpu.items()},
        "worker_cpu_per_record_us": cpu["workers"] / per_us,
        "worker_main_us": (sum(b[0] for b in split1) - sum(a[0] for a in split0)) / per_us,
        "worker_others_us": (sum(b[1] for b in split1) - sum(a[1] for a in split0)) / per_us,
        "mean_batch": stored / batches if batches else 0.0,
        "finished": [(a.value, t.value - start) for a, t in zip(answered, lasts, strict=True)],
    }


def describe(label: str, r: dict[str, Any]) -> str:
    cores = " ".join(f"{k}={v:.2f}" for k, v in r["cores"].items())
    return (
        f"{label}: {r['rate']:7.0f} records/s  lost={r['lost']} duplicated={r['duplicated']}"
        f"  cores used: {cores}  worker CPU/record={r['worker_cpu_per_record_us']:.0f} us"
        f" (main threads {r['worker_main_us']:.0f}, writers {r['worker_others_us']:.0f})"
        f"  mean batch={r['mean_batch']:.0f}{finishing(r['finished'])}"
    )


def finishing(finished: list[tuple[int, float]]) -> str:
    """With several workers: how many records each answered and when it answered its last.

    Mosquitto gives each message of a shared subscription to one session as it arrives, so
    each worker's share is fixed before the round starts; the one that finishes first then
    idles while the other still works (the tail), which ``scale2`` pays for.
    """
    if len(finished) < 2:
        return ""
    ends = [t for _, t in finished]
    parts = ", ".join(f"{n} records by {t:.2f} s" for n, t in finished)
    tail = (max(ends) - min(ends)) / max(ends) if max(ends) > 0 else 0.0
    return f"  workers: {parts} (tail {tail:.0%} of the round)"


CEILING_SAMPLE = 2000  # signatures per ceiling sample (about a quarter of a second each way)


def verify_ceiling(payloads: list[bytes]) -> tuple[float, float, str]:
    """One sample of bare Ed25519 verification of (up to :data:`CEILING_SAMPLE` of) ``payloads``
    on one core: (per wall s, per CPU s, which way), a Python loop over ``cryptography``'s
    verify, the same calls :func:`protocol.ed25519.verify_many` makes for the workers."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    messages = [DOMAIN + read_header(p).signed_bytes for p in payloads[:CEILING_SAMPLE]]
    signatures = [key.sign(m) for m in messages]
    public = key.public_key()
    start, cpu = time.perf_counter(), time.thread_time()
    for signature, message in zip(signatures, messages, strict=True):
        public.verify(signature, message)
    wall, used = time.perf_counter() - start, time.thread_time() - cpu
    return len(messages) / wall, len(messages) / used, "cryptography loop"


def ceiling_payloads(count: int) -> list[bytes]:
    """``count`` envelopes shaped like a round's (batch summaries sealed by a bench agent)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from settleguard.protocol.envelope import seal_envelope

    key = Ed25519PrivateKey.generate()
    return [
        seal_envelope(
            key,
            record_type="batch_summary",
            agent_id="bench-q1-000",
            seq=s,
            created_at="2026-03-01T10:00:00.000Z",
            body=batch(terminal_id="T000", batch_no=s).to_body(),
        )
        for s in range(1, count + 1)
    ]


def ceiling_samples(payloads: list[bytes], count: int = 2) -> list[tuple[float, float, str]]:
    """``count`` back-to-back :func:`verify_ceiling` samples."""
    return [verify_ceiling(payloads) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run, under a minute")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="pairs of one- and two-worker rounds; RESULT gives medians",
    )
    parser.add_argument("--timeout", type=float, default=600, help="per round, seconds")
    parser.add_argument(
        "--live", action="store_true", help="also time agents publishing while the workers run"
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="py-spy the one-worker rounds into DIR (flame-graph raw format)",
    )
    args = parser.parse_args()
    args.records = args.records or (6000 if args.quick else 40000)
    tmp = Path(tempfile.mkdtemp(prefix="sg-bench-"))
    proc, port, files = start_broker(tmp / "broker")
    pairs: list[dict[str, float]] = []
    lost = duplicated = 0
    sample = ceiling_payloads(CEILING_SAMPLE)
    try:
        for rep in range(args.repeat):
            modes = ["queued", "live"] if args.live and rep == 0 else ["queued"]
            results: dict[tuple[str, int], dict[str, Any]] = {}
            ceilings = ceiling_samples(sample)  # right before the one-worker round
            for mode in modes:
                for workers in (1, 2):
                    r = results[mode, workers] = run_round(
                        args, workers, port, files, proc, tmp, mode
                    )
                    print(describe(f"{mode:6} {workers} worker(s)", r), flush=True)
                    lost, duplicated = lost + r["lost"], duplicated + r["duplicated"]
                    if (mode, workers) == ("queued", 1):  # and right after it
                        ceilings += ceiling_samples(sample)
            ceiling = statistics.median(c[0] for c in ceilings)
            ceiling_cpu = statistics.median(c[1] for c in ceilings)
            ways = sorted({c[2] for c in ceilings})
            print(
                f"bare Ed25519 verify, one core: median {ceiling:.0f}/s wall, {ceiling_cpu:.0f}/s"
                f" CPU of {len(ceilings)} samples right before and right after the one-worker"
                f" round ({min(c[0] for c in ceilings):.0f}-{max(c[0] for c in ceilings):.0f}/s;"
                f" each a {', '.join(ways)} over {len(sample)} signatures)"
            )
            one, two = results["queued", 1], results["queued", 2]
            pair = {
                "rate": one["rate"],
                "ceiling": ceiling,
                "ratio": one["rate"] / ceiling,
                "scale2": two["rate"] / one["rate"],
                "cpu_ratio": 1e6 / one["worker_cpu_per_record_us"] / ceiling_cpu,
            }
            pairs.append(pair)
            best = max(c[0] for c in ceilings)
            print(
                f"pair {rep + 1}/{args.repeat}: ratio {pair['ratio']:.2f} scale2"
                f" {pair['scale2']:.2f} (against the best sample instead of the median:"
                f" ratio {one['rate'] / best:.2f}; one worker's CPU per record vs bare verify:"
                f" {pair['cpu_ratio']:.2f})",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(p[k] for p in pairs) for k in pairs[0]}
    print(
        f"RESULT ingest_per_s={med['rate']:.0f} verify_ceiling_per_s={med['ceiling']:.0f} "
        f"ratio={med['ratio']:.2f} scale2={med['scale2']:.2f} lost={lost} "
        f"duplicated={duplicated} store={args.store} cpu_ratio={med['cpu_ratio']:.2f} "
        f"pairs={len(pairs)}"
    )


if __name__ == "__main__":
    main()
