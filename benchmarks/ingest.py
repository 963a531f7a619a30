"""Ingest benchmark: signed records from simulated agents through local Mosquitto into the store.

    python benchmarks/ingest.py --quick            # < 1 minute, SQLite
    python benchmarks/ingest.py --store postgresql # full size, fresh PostgreSQL database

Last line: ``RESULT ingest_per_s=… verify_ceiling_per_s=… ratio=… scale2=… lost=… duplicated=…
store=…`` where ``verify_ceiling_per_s`` is bare Ed25519 verification of the same payloads on one
core in this run, ``ratio`` = one worker's ingest rate over that ceiling and ``scale2`` = two
worker processes' rate over one's. The publishing agents, the broker and the workers all share
this machine's cores, so the figures are a floor for a collector host of its own.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector import broker, enrollment
from collector.store import open_store
from collector.worker import run_worker
from protocol.acks import decode_acks
from protocol.envelope import DOMAIN, read_header
from tests.helpers.records import TestAgent, batch, make_agent

COLLECTOR_PASSWORD = "bench-collector"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_broker(directory: Path) -> tuple[subprocess.Popen[bytes], int, broker.BrokerFiles]:
    port = free_port()
    files = broker.write_broker_config(
        directory, port=port, collector_password_hash=broker.hash_password(COLLECTOR_PASSWORD),
        run_as=pwd.getpwuid(os.geteuid()).pw_name,
    )  # fmt: skip
    binary = broker.mosquitto_binary()
    if binary is None:
        sys.exit("mosquitto binary not found (apt-get install mosquitto)")
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
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=agent.agent_id,
                                  protocol=mqtt.MQTTv5)  # fmt: skip
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

    def publish_all(self) -> None:
        for payload in self.payloads:
            self.client.publish(self.agent.topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run_round(args: argparse.Namespace, workers: int, port: int, files: broker.BrokerFiles,
              proc: subprocess.Popen[bytes], tmp: Path) -> tuple[float, int, int, list[bytes]]:  # fmt: skip
    """One measured run; returns (rate, lost, duplicated, payloads)."""
    url, pg_name = fresh_url(args.store, tmp)
    store = open_store(url)
    store.migrate()
    agents = [make_agent(store, f"bench-{workers}-{i:03d}") for i in range(args.agents)]
    pid_file = tmp / "pid"
    pid_file.write_text(str(proc.pid))
    enrollment.sync_broker_passwords(store, files.password_file, collector_user="collector",
                                     pid_file=pid_file)  # fmt: skip
    per_agent = args.records // args.agents
    payloads = {a.agent_id: [a.seal(batch(terminal_id=f"T{a.agent_id[-3:]}", batch_no=s), s)
                             for s in range(1, per_agent + 1)] for a in agents}  # fmt: skip
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    config = {"DATABASE_URL": url, "MQTT_HOST": "127.0.0.1", "MQTT_PORT": port,
              "MQTT_USERNAME": "collector", "MQTT_PASSWORD": COLLECTOR_PASSWORD,
              "MQTT_PROTOCOL": "5", "INGEST_BATCH_SIZE": 256, "INGEST_BATCH_WAIT_S": 0.01}  # fmt: skip
    readies = [ctx.Event() for _ in range(workers)]
    procs = [ctx.Process(target=run_worker, args=(config, stop, None, r)) for r in readies]
    for p in procs:
        p.start()
    for r in readies:
        r.wait(30)
    time.sleep(0.3)  # benchmark only: let the broker settle the shared group before timing
    pubs = [Publisher(a, port, payloads[a.agent_id]) for a in agents]
    for p in pubs:
        p.subscribed.wait(10)
    total = per_agent * len(agents)
    start = time.perf_counter()
    threads = [threading.Thread(target=p.publish_all) for p in pubs]
    for t in threads:
        t.start()
    deadline = time.monotonic() + args.timeout
    while sum(len(p.acks) for p in pubs) < total and time.monotonic() < deadline:
        time.sleep(0.01)
    end = max(p.last_ack for p in pubs)
    stop.set()
    for p in procs:
        p.join(30)
    for p in pubs:
        p.close()
    stored = store.count("received_records")
    duplicated = sum(n - 1 for p in pubs for n in p.acks.values()) + max(stored - total, 0)
    store.close()
    drop_pg(pg_name)
    return (
        total / (end - start),
        total - stored,
        duplicated,
        [x for v in payloads.values() for x in v],
    )


def verify_ceiling(payloads: list[bytes], agents_keys: dict[str, object]) -> float:
    """Bare Ed25519 verifications per second of the same payloads, one core."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pairs = [(key.sign(DOMAIN + read_header(p).signed_bytes), DOMAIN + read_header(p).signed_bytes)
             for p in payloads]  # fmt: skip
    public = key.public_key()
    start = time.perf_counter()
    for signature, message in pairs:
        public.verify(signature, message)
    return len(pairs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run, under a minute")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    args.records = args.records or (6000 if args.quick else 40000)
    tmp = Path(tempfile.mkdtemp(prefix="sg-bench-"))
    proc, port, files = start_broker(tmp / "broker")
    try:
        one, lost1, dup1, payloads = run_round(args, 1, port, files, proc, tmp)
        print(f"1 worker : {one:8.0f} records/s  lost={lost1} duplicated={dup1}")
        two, lost2, dup2, _ = run_round(args, 2, port, files, proc, tmp)
        print(f"2 workers: {two:8.0f} records/s  lost={lost2} duplicated={dup2}")
        ceiling = verify_ceiling(payloads, {})
        print(f"bare Ed25519 verify, one core: {ceiling:8.0f} /s")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"RESULT ingest_per_s={one:.0f} verify_ceiling_per_s={ceiling:.0f} "
          f"ratio={one / ceiling:.2f} scale2={two / one:.2f} lost={lost1 + lost2} "
          f"duplicated={dup1 + dup2} store={args.store}")  # fmt: skip


if __name__ == "__main__":
    main()
