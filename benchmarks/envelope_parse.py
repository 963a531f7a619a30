"""Micro benchmark of the collector's envelope verifier, against bare Ed25519 in the same run.

    .venv/bin/python benchmarks/envelope_parse.py [--quick] [--records 6000] [--repeat 7]
        [--kind batch|heartbeat]

Seals ``--records`` envelopes from eight agents (batch summaries shaped like
``benchmarks/ingest.py``'s, or heartbeats; sealing is not timed), then, ``--repeat`` times and
interleaved so that both see the same machine load, times on one thread's CPU clock
(``time.thread_time``):

* **full**: verifying one envelope on its own, ``read_header`` + ``verify_header_and_parse`` +
  ``Envelope.record()`` (the ingest worker checks a batch's signatures in one call instead:
  ``benchmarks/ingest_stages.py`` times that path);
* **verify**: bare ``Ed25519PublicKey.verify`` over the same signed bytes (domain prefix and
  signature split off beforehand, as ``benchmarks/ingest.py``'s verify ceiling does).

Last line: ``RESULT full_us=… verify_us=… parse_us=… ratio=… records=… kind=…``, medians over
the rounds: ``parse_us`` = full − verify of the same round (header, strict JSON, canonical
check, field and record validation, object construction) and ``ratio`` = verify_us / full_us,
the share of the verifier's CPU that is the signature check itself. Issue 4 asks the whole
ingest worker for ≥ 0.7 of bare verify; this benchmark covers only its verifier step (no MQTT,
no store), so its ratio is an upper bound for the worker's.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from settleguard.protocol.envelope import (
    DOMAIN,
    key_id_for,
    read_header,
    seal_envelope,
    verify_header_and_parse,
)
from settleguard.protocol.records import Heartbeat, Record

from tests.helpers.records import batch

Sealed = tuple[Ed25519PublicKey, str, bytes]


def seal_all(records: int, kind: str) -> list[Sealed]:
    """``records`` payloads from eight agents, each with its own key: (key, key id, payload)."""
    keys = [Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32) for i in range(8)]
    sealed = []
    for n in range(records):
        agent, seq = n % 8, n // 8 + 1
        record: Record
        if kind == "batch":
            record = batch(terminal_id=f"T{agent:03d}", batch_no=seq)
        else:
            record = Heartbeat(seq % 50, 5, "up", "0.1.0", f"T{agent:03d}", "2026-03-01T10:00:00Z")
        payload = seal_envelope(
            keys[agent],
            record_type=record.RECORD_TYPE,
            agent_id=f"bench-{agent:03d}",
            seq=seq,
            created_at="2026-03-01T10:00:00.000Z",
            body=record.to_body(),
        )
        public = keys[agent].public_key()
        sealed.append((public, key_id_for(public), payload))
    return sealed


def time_full(sealed: list[Sealed]) -> float:
    """CPU µs per record for header + verify + strict parse + record, as the worker does."""
    gc.collect()
    start = time.thread_time()
    for public, key_id, payload in sealed:
        verify_header_and_parse(read_header(payload), public, key_id).record()
    return (time.thread_time() - start) / len(sealed) * 1e6


def time_verify(pairs: list[tuple[Ed25519PublicKey, bytes, bytes]]) -> float:
    """CPU µs per record for the bare Ed25519 verification of the same bytes."""
    gc.collect()
    start = time.thread_time()
    for public, signature, message in pairs:
        public.verify(signature, message)
    return (time.thread_time() - start) / len(pairs) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of --repeat")
    parser.add_argument("--records", type=int, default=6000)
    parser.add_argument("--repeat", type=int, default=7, help="rounds; medians are reported")
    parser.add_argument("--kind", choices=("batch", "heartbeat"), default="batch")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.repeat

    sealed = seal_all(args.records, args.kind)
    pairs = []
    for public, _, payload in sealed:
        header = read_header(payload)
        pairs.append((public, header.signature, DOMAIN + header.signed_bytes))
    print(f"{len(sealed)} {args.kind} envelopes of {len(sealed[0][2])} bytes, {rounds} rounds")
    time_full(sealed[:500])  # warm caches and lazily built state
    full, verify, parse = [], [], []
    for i in range(rounds):
        full.append(time_full(sealed))
        verify.append(time_verify(pairs))
        parse.append(full[-1] - verify[-1])
        print(
            f"round {i + 1}: full {full[-1]:.1f} µs  verify {verify[-1]:.1f} µs  "
            f"parse {parse[-1]:.1f} µs  ratio {verify[-1] / full[-1]:.2f}"
        )
    full_us, verify_us = statistics.median(full), statistics.median(verify)
    print(
        f"RESULT full_us={full_us:.1f} verify_us={verify_us:.1f} "
        f"parse_us={statistics.median(parse):.1f} ratio={verify_us / full_us:.2f} "
        f"records={len(sealed)} kind={args.kind}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
