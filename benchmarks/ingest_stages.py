"""Where one ingest worker's CPU goes, stage by stage, without MQTT; bare Ed25519 in the same run.

    .venv/bin/python benchmarks/ingest_stages.py [--quick] [--records 20000] [--repeat 3]

Seals ``--records`` batch summaries from eight agents (shaped like ``benchmarks/ingest.py``'s;
sealing is not timed) into a fresh SQLite collector store, then, ``--repeat`` times, times on
one thread's CPU clock (``time.thread_time``):

* **verify**: bare Ed25519 over the same signed bytes, a loop over
  ``Ed25519PublicKey.verify`` (the ceiling that ``benchmarks/ingest.py`` divides by);
* **verify_message**: :func:`collector.ingest.verify.verify_messages` in batches of 256, as the worker
  calls it: topic, header, key lookup, the signatures, strict parse, record schema
  (``verify_message - verify`` is the parse and checks);
* **store**: :func:`collector.ingest.verify.store_decided` in batches of 256 into a fresh database
  (rows, hashes, the multi-row INSERTs, one commit with ``synchronous = FULL`` per batch);

and, on wall clocks, the two together **sequentially** on one thread and **pipelined** as the
worker runs them (a writer thread commits batch N while batch N+1 is verified).

Last line: ``RESULT verify_us=… verify_message_us=… store_us=… sequential_per_s=…
pipelined_per_s=… ratio_sequential=… ratio_pipelined=…`` (medians), where each ratio is the
rate over the bare verify rate. These are upper bounds for ``benchmarks/ingest.py``'s ratio:
that one adds the broker, the MQTT link and the acks.
"""

from __future__ import annotations

import argparse
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from settleguard.collector.ingest.verify import (
    IncomingMessage,
    Keyring,
    Refused,
    Verified,
    store_decided,
    verify_messages,
)
from settleguard.collector.ingest.verify import verify_message as verify_one
from settleguard.collector.store import open_store
from settleguard.protocol.envelope import DOMAIN, read_header

from tests.helpers.records import batch, make_agent

BATCH = 256


def world(directory: Path, records: int, tag: str) -> tuple[object, list[IncomingMessage], Keyring]:
    """A fresh store with eight approved agents and their sealed messages."""
    store = open_store(f"sqlite:///{directory / f'{tag}.db'}")
    store.migrate()
    agents = [make_agent(store, f"bench-{i:03d}") for i in range(8)]
    per_agent = records // len(agents)
    messages = [
        IncomingMessage(a.topic, a.seal(batch(terminal_id=f"T{a.agent_id[-3:]}", batch_no=s), s))
        for a in agents
        for s in range(1, per_agent + 1)
    ]
    keyring = Keyring(store, ttl_s=3600)  # no re-reads of the keys inside a timed loop
    for message in messages[::per_agent]:
        verify_one(message, keyring)
    return store, messages, keyring


def one_round(directory: Path, records: int, tag: str) -> dict[str, float]:
    store, messages, keyring = world(directory, records, tag)
    n = len(messages)
    pairs = []
    for m in messages:
        header = read_header(m.payload)
        entry = keyring.lookup(header.key_id)
        assert entry is not None
        pairs.append((entry.public_key, header.signature, DOMAIN + header.signed_bytes))
    cpu = time.thread_time()
    for key, signature, data in pairs:
        key.verify(signature, data)
    verify_us = (time.thread_time() - cpu) / n * 1e6

    cpu = time.thread_time()
    decided = [
        d for i in range(0, n, BATCH) for d in verify_messages(messages[i : i + BATCH], keyring)
    ]
    verify_message_us = (time.thread_time() - cpu) / n * 1e6
    if not all(isinstance(d, Verified) for d in decided):
        sys.exit(f"refused: {[d.reason for d in decided if isinstance(d, Refused)][:3]}")

    cpu = time.thread_time()
    for i in range(0, n, BATCH):
        store_decided(store, decided[i : i + BATCH])  # type: ignore[arg-type]
    store_us = (time.thread_time() - cpu) / n * 1e6
    if store.count("received_records") != n:  # type: ignore[attr-defined]
        sys.exit("store round lost records")
    store.close()  # type: ignore[attr-defined]

    store, messages, keyring = world(directory, records, tag + "-seq")
    start = time.perf_counter()
    for i in range(0, n, BATCH):
        store_decided(store, verify_messages(messages[i : i + BATCH], keyring))
    sequential = n / (time.perf_counter() - start)
    store.close()  # type: ignore[attr-defined]

    store, messages, keyring = world(directory, records, tag + "-pipe")
    jobs: queue.Queue[list[Verified | Refused] | None] = queue.Queue(maxsize=1)

    def writer() -> None:
        while (job := jobs.get()) is not None:
            store_decided(store, job)  # type: ignore[arg-type]

    thread = threading.Thread(target=writer)
    start = time.perf_counter()
    thread.start()
    for i in range(0, n, BATCH):
        jobs.put(verify_messages(messages[i : i + BATCH], keyring))
    jobs.put(None)
    thread.join()
    pipelined = n / (time.perf_counter() - start)
    if store.count("received_records") != n:  # type: ignore[attr-defined]
        sys.exit("pipelined round lost records")
    store.close()  # type: ignore[attr-defined]
    return {
        "verify_us": verify_us,
        "verify_message_us": verify_message_us,
        "store_us": store_us,
        "sequential": sequential,
        "pipelined": pipelined,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6,000 records, 3 rounds")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    records = args.records or (6000 if args.quick else 20000)
    directory = Path(tempfile.mkdtemp(prefix="sg-stages-"))
    try:
        rounds = []
        for r in range(args.repeat):
            rounds.append(one_round(directory, records, f"r{r}"))
            x = rounds[-1]
            print(
                f"round {r + 1}: verify {x['verify_us']:.1f} us  verify_message"
                f" {x['verify_message_us']:.1f} us  store {x['store_us']:.1f} us  sequential"
                f" {x['sequential']:.0f}/s  pipelined {x['pipelined']:.0f}/s",
                flush=True,
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    med = {k: statistics.median(x[k] for x in rounds) for k in rounds[0]}
    ceiling = 1e6 / med["verify_us"]
    print(
        f"parse and checks (verify_message - verify): {med['verify_message_us'] - med['verify_us']:.1f} us;"
        f" {records} records x {args.repeat} rounds, medians"
    )
    print(
        f"RESULT verify_us={med['verify_us']:.1f} verify_message_us={med['verify_message_us']:.1f} "
        f"store_us={med['store_us']:.1f} sequential_per_s={med['sequential']:.0f} "
        f"pipelined_per_s={med['pipelined']:.0f} "
        f"ratio_sequential={med['sequential'] / ceiling:.2f} "
        f"ratio_pipelined={med['pipelined'] / ceiling:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
