"""Malformed packets from the broker: a LinkError (logged), never a crash or a hang, and the
link (and the ingest worker on it) connects again.

A scripted broker on loopback answers each connection with the bytes a test gives it.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from settleguard.collector.ingest.mqtt_codec import packet as _packet
from settleguard.collector.ingest.mqtt_codec import varint as _varint
from settleguard.collector.ingest.mqtt_link import IngestLink, LinkError
from settleguard.collector.ingest.worker import IngestWorker, WorkerError
from settleguard.collector.store import Store

from tests.helpers.mosquitto import wait_until

GOOD_CONNACK = _packet(0x20, b"\x00\x00\x00")  # v5: session not present, success, no properties
Suback = bytes | Callable[[bytes], bytes]  # fixed bytes, or built from the SUBSCRIBE's id


def GOOD_SUBACK(packet_id: bytes) -> bytes:
    return _packet(0x90, packet_id + b"\x00\x01")  # no properties, one filter granted QoS 1


def WORKER_SUBACK(packet_id: bytes) -> bytes:
    return _packet(0x90, packet_id + b"\x00\x01\x01")  # the worker's two filters


def _connack(props: bytes) -> bytes:
    return _packet(0x20, b"\x00\x00" + _varint(len(props)) + props)


class ScriptedBroker:
    """Accepts connections on 127.0.0.1; the n-th gets ``scripts[n]`` (the last one repeats):
    after the CONNECT it sends the CONNACK bytes, after the SUBSCRIBE the SUBACK, after the
    client's next packet the ``after`` bytes, and reads until the client closes."""

    def __init__(self, scripts: list[tuple[bytes, Suback, bytes]]) -> None:
        self.scripts = scripts
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._open: list[socket.socket] = []
        self._closing = False
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            if self._closing:
                conn.close()
                return
            script = self.scripts[min(self.connections, len(self.scripts) - 1)]
            self.connections += 1
            self._open.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn, script), daemon=True)
            self._threads.append(thread)
            thread.start()

    @classmethod
    def _read_packet(cls, conn: socket.socket) -> bytes | None:
        """One packet's body (None when the client closed)."""
        head = conn.recv(1)
        return cls._read_packet_rest(conn) if head else None

    @staticmethod
    def _read_packet_rest(conn: socket.socket) -> bytes | None:
        """The rest of a packet whose first byte was read: its body."""
        size, shift = 0, 0
        while True:
            byte = conn.recv(1)
            if not byte:
                return None
            size |= (byte[0] & 0x7F) << shift
            shift += 7
            if byte[0] < 0x80:
                break
        body = b""
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                return None
            body += chunk
        return body

    def _serve(self, conn: socket.socket, script: tuple[bytes, Suback, bytes]) -> None:
        connack, suback, after = script
        try:
            if self._read_packet(conn) is None:
                return
            conn.sendall(connack)
            subscribe = self._read_packet(conn)
            if subscribe is None:
                return
            conn.sendall(suback(subscribe[:2]) if callable(suback) else suback)
            if after and self._read_packet(conn) is not None:
                conn.sendall(after)
            while True:  # answer PINGREQs (first byte 0xc0) until the client hangs up
                head = conn.recv(1)
                if not head or self._read_packet_rest(conn) is None:
                    return
                if head == b"\xc0":
                    conn.sendall(b"\xd0\x00")
        except OSError:
            return

    def close(self) -> None:
        self._closing = True
        with socket.create_connection(("127.0.0.1", self.port)):  # wakes the accept()
            pass
        self._accepting.join(5)
        self._server.close()
        for conn in self._open:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        for thread in self._threads:
            thread.join(5)


@contextmanager
def scripted(*scripts: tuple[bytes, Suback, bytes]) -> Iterator[ScriptedBroker]:
    broker = ScriptedBroker(list(scripts))
    try:
        yield broker
    finally:
        broker.close()


def _link(port: int) -> IngestLink:
    return IngestLink("127.0.0.1", port, client_id="t", filters=["x"], keepalive_s=5)


@pytest.mark.parametrize(
    ("connack", "suback", "message"),
    [
        (_connack(struct.pack("!BH", 0x21, 0)), GOOD_SUBACK, "Receive Maximum 0"),
        (GOOD_CONNACK, _packet(0x90, b"\x00"), "malformed SUBACK"),
        (GOOD_CONNACK, _packet(0x90, b""), "malformed SUBACK"),
        (GOOD_CONNACK, _packet(0x90, b"\x00\x01\x05\x01"), "malformed SUBACK"),
        (_packet(0x20, b"\x00"), GOOD_SUBACK, "malformed CONNACK"),
        (_packet(0x20, b"\x00\x00\x05\x21"), GOOD_SUBACK, "malformed CONNACK"),
        (_connack(b"\x21\x00"), GOOD_SUBACK, "truncated MQTT properties"),
        (_connack(b"\x0b\x80"), GOOD_SUBACK, "truncated MQTT property"),
        (_connack(b"\x24"), GOOD_SUBACK, "truncated MQTT properties"),
    ],
    ids=["receive-max-0", "suback-1-byte", "suback-empty", "suback-props-past-end",
         "connack-1-byte", "connack-props-past-end", "connack-short-property",
         "connack-short-varint", "connack-byte-property-missing"],
)  # fmt: skip
def test_malformed_connect_answers_are_link_errors(
    connack: bytes, suback: bytes, message: str
) -> None:
    with scripted((connack, suback, b"")) as broker:
        link = _link(broker.port)
        with pytest.raises(LinkError, match=message):
            link.connect(5)
        assert not link.connected


def test_a_short_puback_drops_the_link_with_a_logged_reason_and_it_reconnects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    short_puback = _packet(0x40, b"\x07")
    with scripted((GOOD_CONNACK, GOOD_SUBACK, short_puback), (GOOD_CONNACK, GOOD_SUBACK, b"")) as broker:  # fmt: skip
        link = _link(broker.port)
        link.connect(5)
        link.publish("sg/v1/a/x/ack", b"ack")  # the broker answers it with the short PUBACK
        assert link.flush()
        with caplog.at_level(logging.WARNING, logger="settleguard.collector.ingest.mqtt_link"):
            wait_until(lambda: link.receive(1, 0.1) == [] and link.generation == 2
                       and link.connected, what="the link dropped and connected again")  # fmt: skip
        [lost] = [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
        assert "malformed PUBACK from the broker (1 bytes, needs 2)" in lost
        assert broker.connections == 2
        link.close()


def test_a_broker_that_never_acknowledges_cannot_hold_publish_for_ever() -> None:
    one_in_flight = _connack(struct.pack("!BH", 0x21, 1))
    with scripted((one_in_flight, GOOD_SUBACK, b"")) as broker:
        link = IngestLink("127.0.0.1", broker.port, client_id="t", filters=["x"], keepalive_s=2)
        link.connect(5)
        link.publish("sg/v1/a/x/ack", b"first")  # the one the broker's quota allows
        assert link.connected
        link.publish("sg/v1/a/x/ack", b"second")  # no PUBACK ever comes for the first
        assert not link.connected
        assert "acknowledged none" in str(link.last_error)


def test_worker_survives_a_malformed_packet_and_reconnects(store: Store) -> None:
    short_puback = _packet(0x40, b"")
    with scripted((GOOD_CONNACK, WORKER_SUBACK, short_puback), (GOOD_CONNACK, WORKER_SUBACK, b"")) as broker:  # fmt: skip
        worker = IngestWorker(store, {"host": "127.0.0.1", "port": broker.port}, pipeline=False)
        worker.start(5)
        worker.link.publish("sg/v1/a/x/ack", b"ack")
        assert worker.link.flush()
        try:
            wait_until(lambda: worker.run_once(0.1) == 0 and worker.link.generation == 2
                       and worker.link.connected, what="the worker's link back")  # fmt: skip
        finally:
            worker.stop()


def test_worker_start_reports_a_malformed_suback_as_its_own_error(store: Store) -> None:
    with scripted((GOOD_CONNACK, _packet(0x90, b"\x01"), b"")) as broker:
        worker = IngestWorker(store, {"host": "127.0.0.1", "port": broker.port}, pipeline=False)
        with pytest.raises(WorkerError, match="malformed SUBACK"):
            worker.start(5)
