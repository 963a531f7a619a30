"""End-to-end fault injection: agents, Mosquitto and ingest workers killed at random; nothing lost.

    python benchmarks/chaos.py --quick              # a few minutes, SQLite, >= 20 kills
    python benchmarks/chaos.py --long               # nightly: longer, more agents
    python benchmarks/chaos.py --quick --store postgresql

Theory of operation (docs/architecture.md §4 "never lose a batch", §5 ingest, §6): every process
is real and separate. A Mosquitto runs with the configuration ``write_broker_config`` ships
(two limits are lowered so a short burst can reach them, see :func:`start_broker`); N ingest
workers (``collector.ingest.worker.run_worker``) share ``$share/ingest/…`` and write to a real store;
M agents (this file's ``_agent`` mode: the agent library's recorder + ``SyncLink`` in a loop,
as ``agent run`` does) each commit a signed ``BatchSummary`` to their own outbox every few tens
of milliseconds and sync continuously. A scheduler meanwhile:

* ``kill -9`` an agent, a worker or the broker, and restarts it after a short random delay;
* takes the broker away for a while (killed and restarted later: a network outage) and freezes
  it (SIGSTOP/SIGCONT: a half-open link that answers nothing);
* makes a *burst*: all workers frozen while every agent commits a batch of records at once, so
  the broker's per-client in-flight and queue limits are exceeded and it drops messages (its
  log says so); agents must notice the missing app acks and resend.

The worker has no hook to stop between its database commit and its application ack, so that
window is hit by killing workers at random under load; the proof is by counting: the
``monitor`` (a plain subscriber with the collector's credentials) sees how often each
``(agent, seq)`` was published, and every record published more than once is still stored once.

At the end the chaos stops, everything is brought back up, every agent's outbox drains, and
each record any agent committed (read from its outbox file) is compared with the store: present
once, same bytes, valid Ed25519 signature under the agent's registered key. The last line:
``RESULT kills=… records=… lost=… duplicated=… bad_signatures=… conflicts=…``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from settleguard.collector.enrollment.broker import free_port, wait_listening  # noqa: E402

COLLECTOR_PASSWORD = "chaos-collector-pw"
ADMIN_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class ChaosOptions:
    """What to run and for how long."""

    duration_s: float = 90.0
    agents: int = 4
    workers: int = 2
    store: str = "sqlite"  # or "postgresql"
    seed: int = 1
    record_interval_s: float = 0.05  # per agent, between two committed batches
    mean_event_gap_s: float = 2.5  # mean time between two chaos events
    outage_s: float = 4.0
    burst_records: int = 60  # per agent
    agent_window: int = 50
    ack_timeout_s: float = 2.0
    drain_timeout_s: float = 180.0
    broker_inflight: int = 20  # lowered from the shipped 100 so a burst overflows it
    broker_queue: int = 10  # lowered from the shipped 10000, same reason


@dataclass
class ChaosResult:
    """The counts the last line prints, plus the evidence behind them."""

    kills: Counter[str] = field(default_factory=Counter)
    records: int = 0
    lost: int = 0
    duplicated: int = 0
    bad_signatures: int = 0
    conflicts: int = 0
    rejected: int = 0
    republished: int = 0  # (agent, seq) seen published more than once by the monitor
    broker_drops: int = 0  # "dropped" lines in the broker log (queue/in-flight limit reached)
    outages: int = 0
    bursts: int = 0
    drained: bool = False

    def line(self) -> str:
        return (
            f"RESULT kills={sum(self.kills.values())} records={self.records} lost={self.lost} "
            f"duplicated={self.duplicated} bad_signatures={self.bad_signatures} "
            f"conflicts={self.conflicts}"
        )


# --- child processes ------------------------------------------------------------------------


def agent_main(
    home_dir: str,
    port: str,
    password: str,
    interval: str,
    window: str,
    ack_timeout: str,
    burst: str,
) -> None:
    """One agent: commit a batch every ``interval`` s (plus bursts on SIGUSR1) and sync."""
    from settleguard.agent.config import SyncSettings
    from settleguard.agent.errors import SyncError
    from settleguard.agent.home import agent_home
    from settleguard.agent.keys import load_or_create_key
    from settleguard.agent.outbox import Outbox
    from settleguard.agent.recorder import append_record
    from settleguard.agent.sync import BrokerTarget, SyncLink, backoff_delay
    from settleguard.protocol.records import BatchSummary, Bucket

    home = agent_home(home_dir)
    key = load_or_create_key(home)
    box = Outbox(home.outbox_path)
    target = BrokerTarget.from_url(
        f"mqtt://127.0.0.1:{port}", username=key.agent_id, password=password
    )
    settings = SyncSettings(
        window=int(window), ack_timeout_s=float(ack_timeout), session_expiry_s=120, keepalive_s=5
    )
    link = SyncLink(box, key, target, settings)
    state = {"stop": False, "burst": 0}
    signal.signal(signal.SIGTERM, lambda *_: state.update(stop=True))
    signal.signal(signal.SIGUSR1, lambda *_: state.update(burst=state["burst"] + int(burst)))
    producing = Path(home_dir).parent / "producing"  # removed by the harness when chaos ends
    terminal = "T" + key.agent_id[-7:]

    def commit() -> None:
        number = int(box.get_meta("next_seq") or 1)
        amount = 1000 + number % 9000
        append_record(
            box,
            key,
            BatchSummary(
                terminal_id=terminal,
                merchant_id="M-CHAOS",
                batch_no=number,
                closed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                terminal_local_time=None,
                currency="978",
                buckets=(Bucket("girocard", sale_count=1 + number % 7, sale_amount=amount),),
                receipt_start=1,
                receipt_end=1 + number % 7,
                host_reconciled=True,
                protocol="zvt",
            ),
        )

    next_record, attempt, next_connect = time.monotonic(), 0, 0.0
    while not state["stop"]:
        now = time.monotonic()
        while state["burst"] > 0:
            state["burst"] -= 1
            commit()
        if now >= next_record and producing.exists():
            commit()
            next_record = now + float(interval)
        if not link.connected:
            if now >= next_connect:
                try:
                    link.connect(timeout=3)
                    attempt = 0
                except SyncError:
                    attempt += 1
                    next_connect = now + backoff_delay(attempt, 0.2, 2.0)
            time.sleep(0.02)
            continue
        link.pump(0.02)
    if link.connected:
        link.disconnect()
    box.close()


def worker_main(url: str, port: str, password: str, inflight: str) -> None:
    """One ingest worker process (exits non-zero if the broker is not there: restarted)."""
    from settleguard.collector.ingest.worker import run_worker

    run_worker(
        {
            "DATABASE_URL": url,
            "MQTT_HOST": "127.0.0.1",
            "MQTT_PORT": int(port),
            "MQTT_USERNAME": "collector",
            "MQTT_PASSWORD": password,
            "MQTT_PROTOCOL": "5",
            "INGEST_BATCH_SIZE": 64,
            "INGEST_BATCH_WAIT_S": 0.01,
            # the broker's in-flight limit for the burst to overflow (ChaosOptions)
            "INGEST_RECEIVE_MAXIMUM": int(inflight),
        }
    )


# --- the harness ----------------------------------------------------------------------------


class Supervised:
    """A child process that chaos may kill; ``ensure()`` restarts it when it is due."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name, self.argv, self.log = name, argv, log
        self.process: subprocess.Popen[bytes] | None = None
        self.restart_at: float | None = 0.0
        self.frozen = False

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.argv, cwd=ROOT, stdout=out, stderr=out)
        self.restart_at = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure(self, now: float) -> None:
        if not self.alive() and self.restart_at is None:
            self.restart_at = now + 0.3  # it exited by itself (e.g. broker was down at start)
        if self.restart_at is not None and now >= self.restart_at:
            self.start()

    def kill(self, restart_after: float | None) -> bool:
        if not self.alive():
            return False
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.process.kill()
        self.process.wait()
        self.frozen = False
        self.restart_at = None if restart_after is None else time.monotonic() + restart_after
        return True

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(sig)
            self.frozen = sig == signal.SIGSTOP

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.restart_at = None


def start_broker(directory: Path, port: int, agents: dict[str, str], opts: ChaosOptions) -> Path:
    """Write OUR broker config; lower the in-flight/queue limits and log notices (for drops)."""
    from settleguard.collector.enrollment import broker

    files = broker.write_broker_config(
        directory,
        port=port,
        collector_password_hash=broker.hash_password(COLLECTOR_PASSWORD),
        agents={a: broker.hash_password(p) for a, p in agents.items()},
        run_as=pwd.getpwuid(os.geteuid()).pw_name,
    )
    text = files.config.read_text()
    text = text.replace(
        "max_inflight_messages 100", f"max_inflight_messages {opts.broker_inflight}"
    )
    text = text.replace("max_queued_messages 10000", f"max_queued_messages {opts.broker_queue}")
    files.config.write_text(text + "log_type notice\n")
    return files.config


def fresh_store(kind: str, directory: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{directory / 'collector.db'}", None
    import psycopg

    name = f"sg_chaos_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{ADMIN_PG.rsplit('/', 1)[0]}/{name}", name


def drop_store(name: str | None) -> None:
    if name:
        import psycopg

        with psycopg.connect(ADMIN_PG, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Monitor:
    """Counts publications per ``(agent, seq)`` on ``sg/v1/a/+/rec`` (collector credentials)."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from settleguard.protocol.envelope import read_header

        self.seen: Counter[tuple[str, int]] = Counter()
        self._read_header = read_header
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"chaos-mon-{port}", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set("collector", COLLECTOR_PASSWORD)
        self.client.reconnect_delay_set(0.1, 1.0)
        self.client.on_connect = lambda c, *_: c.subscribe("sg/v1/a/+/rec", 0)
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: object) -> None:
        try:
            obj = json.loads(self._read_header(msg.payload).signed_bytes)  # type: ignore[attr-defined]
            self.seen[(obj["agent_id"], obj["seq"])] += 1
        except Exception:  # a monitor never takes the run down
            return

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _pending(outbox: Path) -> int:
    try:
        with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=5) as conn:
            return int(
                conn.execute("SELECT COUNT(*) FROM outbox WHERE state='pending'").fetchone()[0]
            )
    except sqlite3.Error:
        return 1


def verify(store_url: str, outboxes: list[Path], result: ChaosResult) -> None:
    """Compare every committed record with the store (see the module docstring)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from settleguard.collector.store import open_store
    from settleguard.protocol.envelope import EnvelopeError, verify_and_parse

    store = open_store(store_url)
    try:
        keys = {
            r["agent_id"]: Ed25519PublicKey.from_public_bytes(bytes(r["public_key"]))
            for r in store.query("SELECT agent_id, public_key FROM agent_keys")
        }
        stored: dict[tuple[str, int], list[bytes]] = {}
        for row in store.query("SELECT agent_id, seq, envelope FROM received_records"):
            stored.setdefault((row["agent_id"], int(row["seq"])), []).append(bytes(row["envelope"]))
        natural = store.query(
            "SELECT terminal_id, batch_no, closed_at, COUNT(*) AS n FROM batch_summaries"
            " GROUP BY terminal_id, batch_no, closed_at HAVING COUNT(*) > 1"
        )
        result.duplicated += sum(int(r["n"]) - 1 for r in natural)
        result.conflicts += store.count("conflicts")
        for outbox in outboxes:
            with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True) as conn:
                rows = conn.execute(
                    "SELECT seq, payload, state FROM outbox ORDER BY seq"
                ).fetchall()
            for seq, payload, state in rows:
                result.records += 1
                result.rejected += state == "rejected"
                agent_id = json.loads(_signed(payload))["agent_id"]
                copies = stored.get((agent_id, seq), [])
                if not copies:
                    result.lost += 1
                    continue
                result.duplicated += len(copies) - 1
                for copy in copies:
                    if hashlib.sha256(copy).digest() != hashlib.sha256(payload).digest():
                        result.bad_signatures += 1  # stored bytes differ from what was signed
                        continue
                    try:
                        verify_and_parse(copy, keys[agent_id])
                    except (EnvelopeError, KeyError):
                        result.bad_signatures += 1
        committed = {(json.loads(_signed(p))["agent_id"], s) for o in outboxes for s, p in _rows(o)}
        result.duplicated += sum(len(v) for k, v in stored.items() if k not in committed)
    finally:
        store.close()


def _signed(payload: bytes) -> bytes:
    from settleguard.protocol.envelope import read_header

    return read_header(payload).signed_bytes


def _rows(outbox: Path) -> list[tuple[int, bytes]]:
    with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT seq, payload FROM outbox").fetchall()


def run_chaos(opts: ChaosOptions, workdir: Path, say: Callable[[str], None] = print) -> ChaosResult:
    """Run the whole scenario in ``workdir``; return the counts (see :class:`ChaosResult`)."""
    from settleguard.agent.home import agent_home
    from settleguard.agent.keys import load_or_create_key
    from settleguard.collector.enrollment import service as enrollment
    from settleguard.collector.store import open_store

    rng = random.Random(opts.seed)
    result = ChaosResult()
    url, pg_name = fresh_store(opts.store, workdir)
    store = open_store(url)
    store.migrate()
    passwords: dict[str, str] = {}
    outboxes: list[Path] = []
    homes = []
    for i in range(opts.agents):
        home = agent_home(workdir / f"agent-{i}")
        key = load_or_create_key(home)
        token = enrollment.issue_token(store, "M-CHAOS", ttl_s=600)
        enrolled = enrollment.enroll(
            store, token=token, public_key=key.public_raw, agent_id=key.agent_id
        )
        enrollment.approve(store, key.agent_id, actor="chaos")
        passwords[key.agent_id] = enrolled.broker_password
        homes.append((home, key.agent_id))
        outboxes.append(home.outbox_path)
    store.close()
    port = free_port()
    config = start_broker(workdir / "broker", port, passwords, opts)
    binary = "/usr/sbin/mosquitto"
    from settleguard.collector.enrollment.broker import mosquitto_binary

    binary = mosquitto_binary() or binary
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    me = [sys.executable, str(Path(__file__).resolve())]
    broker = Supervised("broker", [binary, "-c", str(config)], logs / "mosquitto.log")
    workers = [
        Supervised(
            f"worker{i}",
            [*me, "_worker", url, str(port), COLLECTOR_PASSWORD, str(opts.broker_inflight)],
            logs / f"worker{i}.log",
        )
        for i in range(opts.workers)
    ]
    agents = [
        Supervised(
            f"agent{i}",
            [
                *me,
                "_agent",
                str(home.root),
                str(port),
                passwords[aid],
                str(opts.record_interval_s),
                str(opts.agent_window),
                str(opts.ack_timeout_s),
                str(opts.burst_records),
            ],
            logs / f"agent{i}.log",
        )
        for i, (home, aid) in enumerate(homes)
    ]
    everyone = [broker, *workers, *agents]
    broker.start()
    assert broker.process is not None
    wait_listening(broker.process, port, 10)
    monitor = Monitor(port)
    (workdir / "producing").touch()
    for proc in everyone[1:]:
        proc.start()
    outage_until: float | None = None
    thaw: list[tuple[float, Supervised]] = []
    start = time.monotonic()
    planned = {
        "outage": start + opts.duration_s * 0.35,
        "burst": start + opts.duration_s * 0.65,
        "freeze": start + opts.duration_s * 0.5,
    }
    next_event = start + rng.uniform(0.5, 2 * opts.mean_event_gap_s)
    try:
        while time.monotonic() - start < opts.duration_s:
            now = time.monotonic()
            for when, proc in [t for t in thaw if t[0] <= now]:
                proc.signal(signal.SIGCONT)
                thaw.remove((when, proc))
            if outage_until is not None and now >= outage_until:
                outage_until = None
                broker.restart_at = now
            for proc in everyone:
                if proc is broker and outage_until is not None:
                    continue
                proc.ensure(now)
            due = [k for k, t in planned.items() if now >= t]
            if due:
                kind = due[0]
                del planned[kind]
            elif now >= next_event:
                kind = rng.choices(["agent", "worker", "broker"], weights=[4, 4, 2])[0]
                next_event = now + rng.uniform(0.3, 2 * opts.mean_event_gap_s)
            else:
                time.sleep(0.02)
                continue
            if kind == "agent":
                victim = rng.choice(agents)
                if victim.kill(rng.uniform(0.0, 0.5)):
                    result.kills["agent"] += 1
            elif kind == "worker":
                victim = rng.choice(workers)
                if victim.kill(rng.uniform(0.0, 0.5)):
                    result.kills["worker"] += 1
            elif kind == "broker" and outage_until is None:
                if broker.kill(rng.uniform(0.0, 0.3)):
                    result.kills["broker"] += 1
            elif kind in ("outage", "freeze") and (outage_until is not None or not broker.alive()):
                # The broker is down from a random kill right now: hold the planned outage or
                # freeze until it is back, so every run really has both.
                planned[kind] = now + 0.5
            elif kind == "outage":
                if broker.kill(None):
                    result.kills["broker"] += 1
                    result.outages += 1
                    outage_until = now + opts.outage_s
            elif kind == "freeze":
                broker.signal(signal.SIGSTOP)
                thaw.append((now + opts.outage_s / 2, broker))
                result.outages += 1
            elif kind == "burst":
                for worker in workers:
                    worker.signal(signal.SIGSTOP)
                    thaw.append((now + 2.0, worker))
                for agent in agents:
                    agent.signal(signal.SIGUSR1)
                result.bursts += 1
            say(f"{now - start:6.1f}s {kind:7s} kills={sum(result.kills.values())}")
        say("chaos over: everything back up, producers stop, outboxes drain")
        for proc in everyone:
            proc.signal(signal.SIGCONT)
            proc.ensure(time.monotonic() + 10)
        (workdir / "producing").unlink()
        deadline = time.monotonic() + opts.drain_timeout_s
        while time.monotonic() < deadline:
            for proc in everyone:
                proc.ensure(time.monotonic())
            if all(_pending(o) == 0 for o in outboxes):
                result.drained = True
                break
            time.sleep(0.2)
        for proc in reversed(everyone):
            proc.stop()
    finally:
        monitor.close()
        for proc in everyone:
            proc.stop()
    verify(url, outboxes, result)
    result.republished = sum(1 for n in monitor.seen.values() if n > 1)
    result.broker_drops = sum(
        "dropped" in line
        for line in (logs / "mosquitto.log").read_text(errors="replace").splitlines()
    )
    drop_store(pg_name)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="about 90 s of chaos (default)")
    mode.add_argument("--long", action="store_true", help="nightly: 15 minutes, 8 agents")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    opts = ChaosOptions(
        store=args.store, seed=args.seed if args.seed is not None else random.randrange(1 << 30)
    )
    if args.long:
        opts.duration_s, opts.agents, opts.workers, opts.mean_event_gap_s = 900, 8, 3, 4.0
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sg-chaos-"))
    print(f"seed={opts.seed} store={opts.store} workdir={workdir}", flush=True)
    t0 = time.monotonic()
    result = run_chaos(opts, workdir, say=lambda s: print(s, flush=True))
    print(f"kills by kind: {dict(result.kills)}  outages={result.outages} bursts={result.bursts}")
    print(
        f"drained={result.drained} rejected={result.rejected} "
        f"republished={result.republished} broker_drop_notices={result.broker_drops} "
        f"elapsed={time.monotonic() - t0:.0f}s"
    )
    print(result.line(), flush=True)
    if result.lost or result.duplicated or result.bad_signatures or not result.drained:
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_agent":
        agent_main(*sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker_main(*sys.argv[2:])
    else:
        main()
