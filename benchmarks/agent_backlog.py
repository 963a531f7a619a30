"""Flush a 10,000-record outbox backlog through a local Mosquitto, with application acks.

Usage: ``python benchmarks/agent_backlog.py [--quick] [--records N] [--window W]``

1. Starts Mosquitto on a free loopback port with the shipped config (``set_tcp_nodelay``,
   password file, per-agent ACL) and the collector ack double in its own process
   (:mod:`tests.agent.ackdouble`: dedupes by ``(agent, seq)`` and payload hash, acks in
   batches of up to 256 records or 20 ms, as the ingest worker commits). By default it does not verify signatures: that is the collector's cost, spread
   over its ingest processes (docs/architecture.md §7), and in one Python process it, not the agent,
   would set the pace. ``--verify`` turns verification on to show the end-to-end rate.
2. Fills a fresh outbox with N signed records (not timed).
3. **raw**: bare paho (QoS 1, 100 in flight) publishes the same payloads under a second agent
   id the ack double ignores, timed until the last PUBACK: the broker's and paho's ceiling
   on this machine, measured in the same run.
4. **flush**: :meth:`agent.sync.SyncLink.flush` sends the backlog in seq order and waits until
   every record is app-acked and marked in the outbox.

The last line is ``RESULT flush_per_s=… raw_per_s=… ratio=… rss_mb=… lost=…``;
``rss_mb`` is the peak RSS of the agent process (the flush runs in a child that imports
only the agent, as ``settleguard agent sync`` would), ``lost`` counts records that were
not both acked in the outbox and accepted by the ack double. Targets:
ratio ≥ 0.5, rss_mb ≤ 60, lost = 0. ``--quick`` uses the same 10,000 records (it finishes
in well under a minute); use ``--records`` for other sizes.
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion  # noqa: E402
from settleguard.agent.config import SyncSettings  # noqa: E402
from settleguard.agent.home import agent_home  # noqa: E402
from settleguard.agent.keys import load_or_create_key  # noqa: E402
from settleguard.agent.outbox import Outbox  # noqa: E402
from settleguard.agent.recorder import append_record  # noqa: E402
from settleguard.agent.sync import BrokerTarget, SyncLink  # noqa: E402
from settleguard.protocol.topics import rec_topic  # noqa: E402

PASSWORD = "bench-pw"


def fill(box: Outbox, key: object, count: int) -> None:
    from tests.agent.samples import sample_record

    # Filling is set-up, not measured: skip the per-commit fsync to keep --quick quick.
    box.conn.execute("PRAGMA synchronous=OFF")
    for i in range(count):
        append_record(box, key, sample_record(i % 1000))  # type: ignore[arg-type]


def raw_publish(port: int, user: str, payloads: list[bytes]) -> float:
    """Publish ``payloads`` with bare paho, QoS 1; return messages per second."""
    done = threading.Event()
    acked = 0

    def on_publish(*_args: object) -> None:
        nonlocal acked
        acked += 1
        if acked == len(payloads):
            done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=user, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set(user, PASSWORD)
    client.max_inflight_messages_set(100)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    topic = rec_topic(user)
    started = time.perf_counter()
    for payload in payloads:
        client.publish(topic, payload, qos=1)
    if not done.wait(120):
        raise SystemExit("raw publish did not finish")
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return len(payloads) / elapsed


def peak_rss_mb() -> float:
    """This process's peak RSS (``VmHWM``; ``ru_maxrss`` would include the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def agent_flush(home_dir: str, port: str, window: str) -> None:
    """Child mode: be the agent. Flush the backlog, print seconds and peak RSS."""
    home = agent_home(home_dir)
    key = load_or_create_key(home)
    with Outbox(home.outbox_path) as box:
        target = BrokerTarget.from_url(
            f"mqtt://127.0.0.1:{port}", username=key.agent_id, password=PASSWORD
        )
        link = SyncLink(box, key, target, SyncSettings(window=int(window)))
        started, cpu0 = time.perf_counter(), time.process_time()
        result = link.flush(timeout=300)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    rss_mb = peak_rss_mb()
    print(f"flushed {elapsed:.6f} {rss_mb:.1f} {result.pending} {cpu:.3f}", flush=True)


def main() -> None:
    if sys.argv[1:2] == ["--agent-flush"]:
        agent_flush(*sys.argv[2:5])
        return
    from tests.helpers.mosquitto import running_broker

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 10,000-record run (default)")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=SyncSettings().window)
    parser.add_argument(
        "--verify",
        action="store_true",
        help="the ack double also verifies every signature (collector cost, not the agent's)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = agent_home(Path(tmp) / "agent")
        key = load_or_create_key(home)
        raw_home = agent_home(Path(tmp) / "raw")
        raw_id = load_or_create_key(raw_home).agent_id
        broker_dir = Path(tmp) / "broker"
        agents = {key.agent_id: PASSWORD, raw_id: PASSWORD}
        with running_broker(broker_dir, agents) as broker, Outbox(home.outbox_path) as box:
            fill(box, key, args.records)
            payloads = [payload for _, payload in box.pending(limit=args.records)]
            double = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.agent.ackdouble",
                    str(broker.port),
                    *broker.collector,
                    key.agent_id,
                    base64.b64encode(key.public_raw).decode(),
                ],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={
                    **os.environ,
                    "ACKDOUBLE_VERIFY": "1" if args.verify else "0",
                    "ACKDOUBLE_RECORD_QOS": "0",
                },
            )
            assert double.stdout is not None and double.stdin is not None
            assert double.stdout.readline().strip() == "ready"
            raw_per_s = raw_publish(broker.port, raw_id, payloads)
            del payloads
            flushed = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--agent-flush",
                    str(home.root),
                    str(broker.port),
                    str(args.window),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            flush_per_s = args.records / float(flushed[1])
            rss_mb, pending, agent_cpu = float(flushed[2]), int(flushed[3]), float(flushed[4])
            double.stdin.close()
            report = double.stdout.readline().split()
            double.wait(30)
            double.stdout.close()
            accepted = int(report[1])
            stats = box.stats()
    lost = max(args.records - stats.acked, args.records - accepted, pending)
    print(
        f"records={args.records} window={args.window} verify={args.verify} "
        f"duplicates={report[3]} agent_cpu_s={agent_cpu:.2f} "
        f"agent_cpu_per_record_us={agent_cpu / args.records * 1e6:.0f} "
        f"ack_double_cpu_s={report[5]}"
    )
    print(
        f"RESULT flush_per_s={flush_per_s:.0f} raw_per_s={raw_per_s:.0f} "
        f"ratio={flush_per_s / raw_per_s:.2f} rss_mb={rss_mb:.1f} lost={lost}"
    )


if __name__ == "__main__":
    main()
