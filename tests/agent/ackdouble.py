"""A stand-in for the collector's ack role: verify records, dedupe by (agent, seq), ack.

It subscribes to ``sg/v1/a/+/rec`` and ``sg/v1/a/+/hb`` on a real broker as the collector
user, verifies every envelope with the agent's registered public key, remembers the SHA-256
of each ``(agent_id, seq)`` and answers on ``sg/v1/a/{agent}/ack``: ``accepted`` the first
time, ``duplicate`` for the same bytes again, ``conflict`` for different bytes under a seen
seq, ``rejected`` for a bad signature or a seq listed in :attr:`AckDouble.reject`.

Work happens on one worker thread fed by a queue and batched the way the real ingest worker
batches (:class:`collector.ingest.worker.IngestWorker`): take up to ``batch_size`` messages, waiting at
most ``batch_wait_s`` to fill the batch, then answer with one ack message per agent per batch
(at most :data:`protocol.acks.MAX_ACKS` acks each). Only what was received is acked.

Run as a process for the benchmark: ``python -m tests.agent.ackdouble PORT USER PASSWORD
AGENT_ID PUBKEY_B64`` prints ``ready`` and then ``accepted N duplicates M`` when stdin closes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import ssl
import sys
import threading
import time
from collections import Counter
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from settleguard.protocol.acks import MAX_ACKS, Ack, encode_acks
from settleguard.protocol.envelope import EnvelopeError, verify_and_parse
from settleguard.protocol.topics import HEARTBEAT_FILTER, PLAIN_INGEST_FILTER, ack_topic

# The real ingest worker's defaults (collector/settings.py INGEST_BATCH_SIZE, _WAIT_S).
INGEST_BATCH_SIZE = 256
INGEST_BATCH_WAIT_S = 0.02


class AckDouble:
    """The collector's ack role, for tests. See the module docstring."""

    def __init__(
        self,
        port: int,
        username: str,
        password: str,
        keys: dict[str, Ed25519PublicKey],
        *,
        protocol: int = 5,
        verify: bool = True,
        record_qos: int = 1,
        batch_size: int = INGEST_BATCH_SIZE,
        batch_wait_s: float = INGEST_BATCH_WAIT_S,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.keys = dict(keys)
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.verify = verify
        self.record_qos = record_qos
        self.seen: dict[tuple[str, int], bytes] = {}
        self.deliveries: Counter[tuple[str, int]] = Counter()
        self.accepted: Counter[tuple[str, int]] = Counter()
        self.duplicates = 0
        self.conflicts = 0
        self.heartbeats: list[tuple[str, Any]] = []
        self.order: list[tuple[str, int]] = []  # (agent, seq) in arrival order
        self.reject: dict[int, str] = {}  # seq -> reason: answer "rejected"
        self.silent = False  # receive and remember, but send no acks
        self.lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._ready = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"ackdouble-{id(self)}",
            protocol=MQTTProtocolVersion.MQTTv5 if protocol == 5 else MQTTProtocolVersion.MQTTv311,
        )
        self._client.username_pw_set(username, password)
        if tls is not None:  # a TLS listener (with a client certificate if the context has one)
            self._client.tls_set_context(tls)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_a: self._ready.set()
        self._client.on_message = lambda _c, _u, m: self._queue.put((m.topic, m.payload))
        self._worker = threading.Thread(target=self._work, daemon=True)
        self._port = port

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        assert not rc.is_failure, f"ack double refused: {rc}"
        client.subscribe([(PLAIN_INGEST_FILTER, self.record_qos), (HEARTBEAT_FILTER, 0)])

    def start(self) -> AckDouble:
        """Connect, subscribe and wait until subscribed."""
        self._client.connect("127.0.0.1", self._port)
        self._client.loop_start()
        self._worker.start()
        assert self._ready.wait(10), "ack double did not get its SUBACK"
        return self

    def stop(self) -> None:
        """Stop the worker and disconnect."""
        self._queue.put(None)
        self._worker.join(10)
        self._client.disconnect()
        self._client.loop_stop()
        self._client._reset_sockets()  # paho closes its wake-up socket pair only in __del__

    def _take(self) -> list[tuple[str, bytes] | None]:
        """The next batch: block for one message, then fill for at most ``batch_wait_s``."""
        item = self._queue.get()
        batch = [item]
        deadline = time.monotonic() + self.batch_wait_s
        while item is not None and len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            batch.append(item)
        return batch

    def _work(self) -> None:
        while True:
            batch = self._take()
            acks: dict[str, list[Ack]] = {}
            for entry in batch:
                if entry is None:
                    return
                self._handle(*entry, acks)
            for agent_id, agent_acks in acks.items():
                for start in range(0, len(agent_acks), MAX_ACKS):
                    payload = self._encode(agent_id, agent_acks[start : start + MAX_ACKS])
                    self._client.publish(ack_topic(agent_id), payload, qos=1)

    def _encode(self, agent_id: str, acks: list[Ack]) -> bytes:
        if self.verify:
            return encode_acks(agent_id, acks)
        # Fast mode (benchmark): plain JSON of the same shape. decode_acks accepts any strict
        # JSON, and RFC 8785 in pure Python would make this double, not the agent, the
        # bottleneck being measured.
        items = [{"seq": a.seq, "status": a.status, "reason": a.reason} for a in acks]
        return json.dumps({"agent_id": agent_id, "acks": items}).encode()

    def _handle(self, topic: str, payload: bytes, acks: dict[str, list[Ack]]) -> None:
        agent_id = topic.split("/")[3]
        key = self.keys.get(agent_id)
        if key is None:
            return
        if self.verify:
            try:
                envelope = verify_and_parse(payload, key)
            except EnvelopeError:
                return  # no seq we can trust: nothing to ack
            seq = envelope.seq
            if envelope.agent_id != agent_id:
                return
        else:
            seq = int(payload.split(b'"seq":', 1)[1].split(b",", 1)[0])
        if topic.endswith("/hb"):
            with self.lock:
                self.heartbeats.append((agent_id, envelope.body if self.verify else None))
            return
        digest = hashlib.sha256(payload).digest()
        with self.lock:
            key_ = (agent_id, seq)
            self.deliveries[key_] += 1
            self.order.append(key_)
            if seq in self.reject:
                ack = Ack(seq, "rejected", self.reject[seq])
            elif key_ not in self.seen:
                self.seen[key_] = digest
                self.accepted[key_] += 1
                ack = Ack(seq, "accepted")
            elif self.seen[key_] == digest:
                self.duplicates += 1
                ack = Ack(seq, "duplicate")
            else:
                self.conflicts += 1
                ack = Ack(seq, "conflict", "different record under a seen seq")
            if self.silent:
                return
        acks.setdefault(agent_id, []).append(ack)


def main(argv: list[str]) -> None:
    """Process mode for the benchmark (see module docstring)."""
    port, user, password, agent_id, public_b64 = argv
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64))
    verify = os.environ.get("ACKDOUBLE_VERIFY", "1") != "0"
    # The benchmark measures the agent: its double takes records at QoS 0, so the broker sends
    # them without waiting for the double's PUBACK (the agent still publishes at QoS 1 and still
    # waits for the application ack; a lost delivery would show as lost=…).
    qos = int(os.environ.get("ACKDOUBLE_RECORD_QOS", "1"))
    double = AckDouble(
        int(port), user, password, {agent_id: key}, verify=verify, record_qos=qos
    ).start()
    print("ready", flush=True)
    sys.stdin.read()
    with double.lock:
        accepted = sum(double.accepted.values())
        cpu = time.process_time()
        print(f"accepted {accepted} duplicates {double.duplicates} cpu {cpu:.2f}", flush=True)
    double.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
