"""Receive-side MQTT cost: CPU per QoS 1 message of the ingest link against paho-mqtt 2.x.

    python benchmarks/mqtt_receive.py [--messages 5000] [--runs 5] [--payload 420]

A local Mosquitto (our generated config) queues ``--messages`` QoS 1 messages for a
persistent session of the reader while it is away; the reader then reconnects and drains
them in batches of 256 the way the ingest worker does: take a batch, "commit" it (nothing
here), then PUBACK every message of it. The figure is the CPU time of the reading thread
(``time.thread_time``) per message, from the reconnect to the last PUBACK written, so the
broker's and the publisher's CPU do not count. Runs of the clients alternate; medians are
printed.

Readers:
- ``link``: :class:`collector.ingest.mqtt_link.IngestLink` (``receive`` / ``ack_all`` / ``flush``).
- ``paho-loop``: paho with ``manual_ack=True``, ``loop()`` in the caller's thread, one
  ``ack(mid, 1)`` per message after the batch.
- ``paho-read``: the same but driving paho with ``loop_read()`` / ``loop_write()`` (paho's
  "external event loop" interface, which skips the wake-up socket pair of ``loop()``).

Last line: ``RESULT link_us=… paho_loop_us=… paho_read_us=… messages=… protocol=5`` (MQTT 5
only: the link keeps a session only there). Figures and the decision they fed:
``docs/decisions/0005-ingest-mqtt-client.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from settleguard.collector.ingest.mqtt_link import IngestLink

from tests.helpers.mosquitto import running_broker

BATCH = 256
RECEIVE_MAXIMUM = 6 * BATCH
TOPIC = "sg/v1/a/a1/rec"
FILTER = "sg/v1/a/+/rec"


def publish(port: int, count: int, payload: bytes) -> None:
    """Queue ``count`` QoS 1 messages as agent ``a1`` and wait until the broker has them."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub", protocol=mqtt.MQTTv5)
    client.username_pw_set("a1", "pw")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(TOPIC, payload, qos=1) for _ in range(count)]
    for info in infos:
        info.wait_for_publish(30)
    client.loop_stop()
    client.disconnect()


def paho_client(port: int, user: tuple[str, str], v5: bool) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id="bench-rx-paho",
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        manual_ack=True,
        clean_session=None if v5 else False,
    )
    client.username_pw_set(*user)
    client.max_inflight_messages_set(RECEIVE_MAXIMUM)
    return client


def paho_connect(client: mqtt.Client, port: int, v5: bool) -> None:
    props = None
    kwargs: dict[str, object] = {}
    if v5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        kwargs["clean_start"] = False
    client.connect("127.0.0.1", port, keepalive=30, properties=props, **kwargs)  # type: ignore[arg-type]


def paho_prepare(port: int, user: tuple[str, str], v5: bool) -> None:
    """Create the paho reader's session and subscription, then leave."""
    client = paho_client(port, user, v5)
    paho_connect(client, port, v5)
    subscribed: list[bool] = []
    client.on_subscribe = lambda *_a: subscribed.append(True)
    while not client.is_connected():
        client.loop(0.1)
    client.subscribe(FILTER, qos=1)
    while not subscribed:
        client.loop(0.1)
    client.disconnect()


def paho_drain(port: int, user: tuple[str, str], v5: bool, count: int, external: bool) -> float:
    client = paho_client(port, user, v5)
    got: list[mqtt.MQTTMessage] = []
    client.on_message = lambda _c, _u, msg: got.append(msg)
    start = time.thread_time()
    paho_connect(client, port, v5)
    done = 0
    sock = None
    while done < count:
        if external:
            if sock is None:
                sock = client.socket()
                sock.setblocking(True)  # type: ignore[union-attr]
            client.loop_read()
            if client.want_write():
                client.loop_write()
        else:
            client.loop(0.5)
        if len(got) >= BATCH or (got and done + len(got) >= count):
            batch, got[:] = list(got), []
            for msg in batch:
                client.ack(msg.mid, msg.qos)
            done += len(batch)
    spent = time.thread_time() - start
    client.disconnect()
    return spent


def link_for(port: int, user: tuple[str, str], v5: bool) -> IngestLink:
    return IngestLink(
        "127.0.0.1",
        port,
        client_id="bench-rx-link",
        filters=[FILTER],
        username=user[0],
        password=user[1],
        v5=v5,
        session_expiry_s=3600,
        receive_maximum=RECEIVE_MAXIMUM,
    )


def link_prepare(port: int, user: tuple[str, str], v5: bool) -> None:
    link = link_for(port, user, v5)
    if not v5:
        raise SystemExit("the link keeps a session only on MQTT 5")
    link.connect()
    link.close()


def link_drain(port: int, user: tuple[str, str], v5: bool, count: int) -> float:
    link = link_for(port, user, v5)
    start = time.thread_time()
    link.connect()
    done = 0
    while done < count:
        batch = link.receive(BATCH, 5.0, 0.02)
        link.ack_all(batch)
        link.flush()
        done += len(batch)
    spent = time.thread_time() - start
    link.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--payload", type=int, default=420, help="bytes per message")
    args = parser.parse_args()
    v5 = True
    payload = bytes(range(256)) * (args.payload // 256) + b"x" * (args.payload % 256)
    results: dict[str, list[float]] = {"link": [], "paho-loop": [], "paho-read": []}
    with tempfile.TemporaryDirectory() as tmp, running_broker(Path(tmp), {"a1": "pw"}) as broker:
        user = broker.collector
        link_prepare(broker.port, user, v5)
        paho_prepare(broker.port, user, v5)
        readers: dict[str, Callable[[int], float]] = {
            "link": lambda n: link_drain(broker.port, user, v5, n),
            "paho-loop": lambda n: paho_drain(broker.port, user, v5, n, external=False),
            "paho-read": lambda n: paho_drain(broker.port, user, v5, n, external=True),
        }
        publish(broker.port, args.messages, payload)
        for read in readers.values():  # warm-up; the paho readers share one session
            if read is not readers["paho-read"]:
                read(args.messages)
        for run in range(args.runs):
            for paho in ("paho-loop", "paho-read"):
                publish(broker.port, args.messages, payload)  # queued for both sessions
                for name in ("link", paho) if run % 2 else (paho, "link"):
                    spent = readers[name](args.messages)
                    results[name].append(spent / args.messages * 1e6)
            print(f"run {run + 1}: " + "  ".join(f"{n}={v[-1]:.1f} µs" for n, v in results.items()))
    med = {n: statistics.median(v) for n, v in results.items()}
    print(
        f"RESULT link_us={med['link']:.1f} paho_loop_us={med['paho-loop']:.1f} "
        f"paho_read_us={med['paho-read']:.1f} messages={args.messages} protocol=5"
    )


if __name__ == "__main__":
    main()
