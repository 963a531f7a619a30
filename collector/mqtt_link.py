"""The ingest worker's MQTT connection: one socket, read in bulk, packets parsed in one loop.

Why not paho here: measured on this 2-core machine (issue 4), paho-mqtt 2.x costs ~39 µs of
CPU per received QoS 1 message on MQTT v5 (its network thread reads each packet with several
``recv`` calls, unpacks v5 properties into objects, and hands every message to another thread),
and the hand-over to the worker thread costs as much again — together ~80 µs beside a ~108 µs
Ed25519 verify. The worker only needs a small part of MQTT, so this module does that part in
the worker's own thread: ~5 µs per message. Agents, tests and tools keep using paho.

Theory of operation (MQTT 3.1.1 and 5.0, OASIS; section numbers are v5's):

- :meth:`IngestLink.connect` sends CONNECT (§3.1: username/password, keep-alive, clean start
  unless a v5 session is resumed, Session Expiry and Receive Maximum properties), waits for
  CONNACK (§3.2; a refusal raises :class:`LinkRefused` with the broker's reason), then
  SUBSCRIBEs at QoS 1 (§3.8) and checks every SUBACK reason code (§3.9).
- :meth:`IngestLink.receive` reads what the socket has (up to 256 KiB per ``recv``) into a
  buffer and cuts every complete packet out of it: PUBLISH (§3.3; the properties block is
  skipped — we never offer Topic Aliases, so the topic is always present), PUBACK for our own
  publishes (§3.4), PINGRESP, and a broker DISCONNECT (§3.14). A packet split across reads
  waits in the buffer for the rest.
- Nothing is acknowledged on receipt. The worker commits first, then calls :meth:`publish`
  (application acks, QoS 1) and :meth:`ack` (PUBACK, §3.4) and :meth:`flush`, which writes all
  of them in one ``sendall``. Our own QoS 1 publishes respect the broker's Receive Maximum.
- A lost connection is reconnected by the next :meth:`receive` with jittered exponential
  back-off (0.1 s doubling to 10 s). Every connection has a generation number; a PUBACK for a
  message of an earlier connection is dropped, because packet ids belong to one connection of
  a clean session. The broker redelivers what we did not PUBACK (persistent session) or the
  agent resends it after its ack timeout (clean session); the store answers a resend as a
  duplicate, so nothing is lost or counted twice.
- A malformed packet from the broker (a PUBACK or SUBACK shorter than its packet id, properties
  that run past their block, a Receive Maximum of 0, a QoS 3 PUBLISH) is a :class:`LinkError`:
  during :meth:`connect` it is raised, afterwards the link is dropped with the reason logged
  and reconnected like a lost one. Our publishes wait for the broker's quota at most one
  keep-alive interval; a broker that stops acknowledging them loses the link the same way.
- Keep-alive (§3.1.2.10): a PINGREQ when nothing was sent for half the keep-alive interval; a
  connection with no packet from the broker for 1.5 intervals is dropped and reconnected.
"""

from __future__ import annotations

import logging
import random
import socket
import ssl
import struct
import time
from collections.abc import Sequence
from typing import ClassVar

import msgspec

log = logging.getLogger(__name__)

# Packet types (first byte, high nibble) and fixed first bytes we send.
CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
_PINGREQ = b"\xc0\x00"
_DISCONNECT = b"\xe0\x00"

READ_SIZE = 256 * 1024
MAX_PACKET = 16 * 1024 * 1024  # larger than any broker limit we ship; a bigger one is a fault

# MQTT v5 property ids by value type (§2.2.2.2), to walk CONNACK/SUBACK/DISCONNECT properties.
_PROP_BYTE = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
_PROP_TWO = {0x13, 0x21, 0x22, 0x23}
_PROP_FOUR = {0x02, 0x11, 0x18, 0x27}
_PROP_VARINT = {0x0B}
_PROP_STRING = {0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F, 0x09, 0x16}  # strings and binary
_PROP_PAIR = {0x26}
RECEIVE_MAXIMUM, REASON_STRING, MAXIMUM_PACKET_SIZE = 0x21, 0x1F, 0x27

#: v5 CONNACK reason codes (§3.2.2.2) and v3.1.1 return codes (3.1.1 §3.2.2.3) we explain.
CONNACK_REASONS = {
    0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
    0x84: "unsupported protocol version", 0x85: "client identifier not valid",
    0x86: "bad user name or password", 0x87: "not authorized", 0x88: "server unavailable",
    0x89: "server busy", 0x8A: "banned", 0x8C: "bad authentication method",
    0x95: "packet too large", 0x97: "quota exceeded", 0x9F: "connection rate exceeded",
}  # fmt: skip
CONNACK_REASONS_311 = {
    1: "unacceptable protocol version", 2: "identifier rejected", 3: "server unavailable",
    4: "bad user name or password", 5: "not authorized",
}  # fmt: skip


def tls_context(ca_file: str | None, cert_file: str | None = None,
                key_file: str | None = None) -> ssl.SSLContext:  # fmt: skip
    """A client TLS context: the broker verified against ``ca_file`` (else the system's CAs),
    host name checked, and our certificate presented when ``cert_file`` is given.

    :raises LinkError: a file is missing or unreadable, or the key does not fit the certificate
    """
    try:
        context = ssl.create_default_context(cafile=ca_file)
        if cert_file:
            context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise LinkError(f"cannot load the TLS files ({ca_file}, {cert_file}): {exc}") from exc
    return context


class LinkError(Exception):
    """The connection failed or the broker broke the protocol (the link reconnects)."""


class LinkRefused(LinkError):
    """The broker refused the connection or a subscription (credentials, ACL): not retried by
    :meth:`IngestLink.connect`; :meth:`IngestLink.receive` keeps retrying with back-off."""


class Received(msgspec.Struct, frozen=True, gc=False):
    """One PUBLISH from the broker.

    :ivar generation: the connection it arrived on (see :meth:`IngestLink.ack`)
    :ivar packet_id: 0 for QoS 0
    """

    topic: str
    payload: bytes
    qos: int
    packet_id: int
    generation: int
    #: Where it came from, as :class:`collector.ingest.Message` has it.
    source: ClassVar[str] = "mqtt"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


def _read_varint(buf: bytes | bytearray, pos: int, end: int) -> tuple[int, int]:
    """A variable byte integer at ``pos``: ``(value, next position)``; (-1, pos) if incomplete."""
    value, shift = 0, 0
    while pos < end:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise LinkError("malformed variable byte integer from the broker")
    return -1, pos


def parse_properties(data: bytes) -> dict[int, object]:
    """v5 properties (§2.2.2) as ``{id: value}`` (user properties are skipped).

    :raises LinkError: an unknown property id or a length beyond the block
    """
    props: dict[int, object] = {}
    pos, end = 0, len(data)
    try:
        while pos < end:
            pid = data[pos]
            pos += 1
            if pid in _PROP_BYTE:
                props[pid], pos = data[pos], pos + 1
            elif pid in _PROP_TWO:
                props[pid], pos = struct.unpack_from("!H", data, pos)[0], pos + 2
            elif pid in _PROP_FOUR:
                props[pid], pos = struct.unpack_from("!I", data, pos)[0], pos + 4
            elif pid in _PROP_VARINT:
                value, pos = _read_varint(data, pos, end)
                if value < 0:
                    raise LinkError(f"truncated MQTT property 0x{pid:02x}")
                props[pid] = value
            elif pid in _PROP_STRING:
                (size,) = struct.unpack_from("!H", data, pos)
                props[pid], pos = bytes(data[pos + 2 : pos + 2 + size]), pos + 2 + size
            elif pid in _PROP_PAIR:
                for _ in range(2):
                    (size,) = struct.unpack_from("!H", data, pos)
                    pos += 2 + size
            else:
                raise LinkError(f"unknown MQTT property 0x{pid:02x} at byte {pos - 1}")
    except (struct.error, IndexError) as exc:
        raise LinkError(f"truncated MQTT properties at byte {pos}") from exc
    if pos != end:
        raise LinkError("MQTT properties run past their block")
    return props


def packet_id_of(kind: str, body: bytes) -> int:
    """The packet identifier that opens a PUBACK or SUBACK body (§3.4.2, §3.9.2).

    :raises LinkError: the body is shorter than two bytes
    """
    if len(body) < 2:
        raise LinkError(f"malformed {kind} from the broker ({len(body)} bytes, needs 2)")
    return (body[0] << 8) | body[1]


def properties_at(kind: str, body: bytes, pos: int) -> tuple[dict[int, object], int]:
    """The v5 properties block at ``pos`` of a packet body and the position after it.

    :raises LinkError: the length is incomplete or runs past the body, or a property is bad
    """
    size, start = _read_varint(body, pos, len(body))
    if size < 0 or start + size > len(body):
        raise LinkError(f"malformed {kind} from the broker: properties run past the packet")
    return parse_properties(body[start : start + size]), start + size


class IngestLink:
    """One MQTT connection for an ingest worker; not thread-safe (one thread uses it).

    :param filters: topic filters subscribed at QoS 1 on every connection
    :param v5: MQTT 5.0, else 3.1.1
    :param session_expiry_s: v5 only: above 0, resume the session of ``client_id``
        (clean start off) and ask the broker to keep it this long while we are away
    :param tls: wrap the connection in TLS with this context (``mqtts``; see
        :func:`tls_context`); the broker's certificate must name ``host``
    :param receive_maximum: at most this many unacknowledged QoS 1 messages in flight to us
        (v5 Receive Maximum); None leaves it to the broker's ``max_inflight_messages``
    :param max_packet: the largest packet we take. On v5 it is sent as Maximum Packet Size
        (§3.1.2.11.4), so the broker discards a larger message for us instead of sending it;
        otherwise a resumed session would redeliver it on every reconnect and the link would
        never come back. On 3.1.1 a larger packet drops the connection, and the clean session
        forgets it.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        filters: Sequence[str],
        username: str | None = None,
        password: str | None = None,
        v5: bool = True,
        session_expiry_s: int = 0,
        keepalive_s: int = 30,
        receive_maximum: int | None = None,
        tls: ssl.SSLContext | None = None,
        max_packet: int = MAX_PACKET,
    ) -> None:
        self.host, self.port = host, port
        self.max_packet = max_packet
        self.tls = tls
        self.client_id, self.filters = client_id, list(filters)
        self.username, self.password = username, password
        self.v5 = v5
        self.session_expiry_s = session_expiry_s if v5 else 0
        self.keepalive_s = keepalive_s
        self.receive_maximum = receive_maximum
        self.generation = 0
        self.connected = False
        self.last_error: str | None = None
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._ready: list[Received] = []
        self._out: list[bytes] = []
        self._next_id = 0
        self._inflight: set[int] = set()  # our QoS 1 publishes awaiting PUBACK
        self._send_quota = 65535  # the broker's Receive Maximum (v5 CONNACK), else the default
        self._last_sent = self._last_heard = 0.0
        self._retry_at = 0.0
        self._backoff = 0.1

    # -- connection ---------------------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> None:
        """Connect and subscribe, or raise.

        :raises LinkRefused: CONNACK or SUBACK refused (the broker's reason in the message)
        :raises LinkError: no answer within ``timeout``, or the socket failed
        """
        self._drop()
        deadline = time.monotonic() + timeout
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except OSError as exc:
            raise LinkError(f"cannot reach the broker at {self.host}:{self.port}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
            except (ssl.SSLError, OSError) as exc:
                sock.close()
                raise LinkRefused(
                    f"TLS handshake with {self.host}:{self.port} failed: {exc}"
                ) from exc
        self._sock, self._buf = sock, bytearray()
        self._inflight.clear()
        self.generation += 1
        try:
            sock.sendall(self._connect_packet())
            _, body = self._wait_packet(CONNACK, deadline)
            self._on_connack(body)
            self._next_id = (self._next_id % 65535) + 1
            sub_id = self._next_id
            sock.sendall(self._subscribe_packet(sub_id))
            while True:
                _, body = self._wait_packet(SUBACK, deadline)
                if packet_id_of("SUBACK", body) == sub_id:
                    break
            self._on_suback(body)
        except OSError as exc:
            self._drop()
            raise LinkError(f"connection to {self.host}:{self.port} failed: {exc}") from exc
        except LinkError:
            self._drop()
            raise
        self.connected = True
        self.last_error = None
        self._backoff = 0.1
        self._last_sent = self._last_heard = time.monotonic()

    def _connect_packet(self) -> bytes:
        flags = (0x80 if self.username else 0) | (0x40 if self.password is not None else 0)
        if not self.session_expiry_s:
            flags |= 0x02  # clean start
        head = _string("MQTT") + bytes([5 if self.v5 else 4, flags])
        head += struct.pack("!H", self.keepalive_s)
        if self.v5:
            props = b""
            if self.receive_maximum:
                props += struct.pack("!BH", RECEIVE_MAXIMUM, self.receive_maximum)
            if self.session_expiry_s:
                props += struct.pack("!BI", 0x11, self.session_expiry_s)
            props += struct.pack("!BI", MAXIMUM_PACKET_SIZE, self.max_packet)
            head += _varint(len(props)) + props
        payload = _string(self.client_id)
        if self.username:
            payload += _string(self.username)
        if self.password is not None:
            payload += _string(self.password.encode())
        return _packet(CONNECT << 4, head + payload)

    def _subscribe_packet(self, packet_id: int) -> bytes:
        body = struct.pack("!H", packet_id) + (b"\x00" if self.v5 else b"")
        for topic_filter in self.filters:
            body += _string(topic_filter) + b"\x01"
        return _packet((SUBSCRIBE << 4) | 0x02, body)

    def _on_connack(self, body: bytes) -> None:
        """Check a CONNACK (§3.2) and take the broker's Receive Maximum.

        :raises LinkRefused: the broker refused us (its reason in the message)
        :raises LinkError: a malformed CONNACK, or a Receive Maximum of 0 (a protocol error,
            §3.2.2.3.3: we could never publish)
        """
        if len(body) < 2:
            raise LinkError(f"malformed CONNACK from the broker ({len(body)} bytes, needs 2)")
        code = body[1]
        props: dict[int, object] = {}
        if self.v5 and len(body) > 2:
            props, _ = properties_at("CONNACK", body, 2)
        if code:
            table = CONNACK_REASONS if self.v5 else CONNACK_REASONS_311
            reason = table.get(code, f"reason code 0x{code:02x}")
            text = props.get(REASON_STRING)
            detail = f" ({text.decode(errors='replace')})" if isinstance(text, bytes) else ""
            raise LinkRefused(f"broker refused the connection: {reason}{detail}")
        quota = props.get(RECEIVE_MAXIMUM, 65535)
        if not isinstance(quota, int) or quota < 1:
            raise LinkError(f"malformed CONNACK from the broker: Receive Maximum {quota}")
        self._send_quota = quota

    def _on_suback(self, body: bytes) -> None:
        packet_id_of("SUBACK", body)
        pos = 2
        if self.v5:
            _, pos = properties_at("SUBACK", body, 2)
        codes = body[pos:]
        refused = [f for f, code in zip(self.filters, codes, strict=False) if code >= 0x80]
        if refused or len(codes) != len(self.filters):
            raise LinkRefused(f"subscription refused: {', '.join(refused) or 'malformed SUBACK'}")

    def _wait_packet(self, kind: int, deadline: float) -> tuple[int, bytes]:
        """Read until a packet of ``kind`` arrives (connect phase only; PUBLISHes are queued)."""
        assert self._sock is not None
        while True:
            for first, body in self._cut_packets(queue_publishes=True):
                if first >> 4 == kind:
                    return first, body
                if first >> 4 == DISCONNECT:
                    raise LinkRefused(f"broker disconnected: {self._disconnect_reason(body)}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LinkError(f"no answer from the broker at {self.host}:{self.port}")
            self._sock.settimeout(remaining)
            try:
                data = self._sock.recv(READ_SIZE)
            except TimeoutError as exc:
                raise LinkError(f"no answer from the broker at {self.host}:{self.port}") from exc
            if not data:
                raise LinkError("the broker closed the connection")
            self._buf += data

    def close(self) -> None:
        """Say DISCONNECT (a v5 session with expiry stays on the broker) and close."""
        if self._sock is not None and self.connected:
            try:
                self._sock.sendall(b"".join(self._out) + _DISCONNECT)
            except OSError:
                pass
        self._out.clear()
        self._drop()

    def _drop(self, error: str | None = None) -> None:
        if error:
            self.last_error = error
            log.warning("MQTT link to %s:%s lost: %s", self.host, self.port, error)
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self.connected = False
        self._out.clear()  # PUBACKs and publishes of a dead connection mean nothing on the next

    def _reconnect(self) -> bool:
        now = time.monotonic()
        if now < self._retry_at:
            return False
        try:
            self.connect(timeout=5.0)
            log.info("MQTT link to %s:%s re-established", self.host, self.port)
            return True
        except LinkError as exc:
            self.last_error = str(exc)
            self._backoff = min(self._backoff * 2, 10.0)
            self._retry_at = now + self._backoff * random.uniform(0.5, 1.0)
            log.warning("MQTT reconnect failed (next try in %.1f s): %s",
                        self._retry_at - now, exc)  # fmt: skip
            return False

    # -- receiving ----------------------------------------------------------------------------

    def receive(self, limit: int, timeout: float, wait: float = 0.0) -> list[Received]:
        """Up to ``limit`` messages: wait up to ``timeout`` for the first, then up to ``wait``
        more seconds to fill the batch. Reconnects (with back-off) when the link is down."""
        now = time.monotonic()
        first_deadline = now + timeout
        fill_deadline: float | None = None
        while len(self._ready) < limit:
            if self._ready and fill_deadline is None:
                fill_deadline = time.monotonic() + wait
            deadline = fill_deadline if fill_deadline is not None else first_deadline
            remaining = deadline - time.monotonic()
            if not self.connected and not self._reconnect():
                if self._ready or remaining <= 0:
                    break
                time.sleep(min(remaining, max(self._retry_at - time.monotonic(), 0.0), 0.1))
                continue
            self._pump(max(remaining, 0.0))
            if time.monotonic() >= deadline:
                break
        batch, self._ready = self._ready[:limit], self._ready[limit:]
        return batch

    def _pump(self, timeout: float) -> None:
        """One read (waiting at most ``timeout``), every complete packet handled."""
        assert self._sock is not None
        now = time.monotonic()
        half = self.keepalive_s / 2
        if now - self._last_heard > self.keepalive_s * 1.5:
            self._drop("no packet from the broker within 1.5 keep-alive intervals")
            return
        if now - self._last_sent >= half:
            self._out.append(_PINGREQ)
            if not self.flush():
                return
        try:
            self._sock.settimeout(min(timeout, half) if timeout > 0 else 0.0)
            data = self._sock.recv(READ_SIZE)
        except (TimeoutError, BlockingIOError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self._drop(str(exc))
            return
        if not data:
            self._drop("the broker closed the connection")
            return
        self._last_heard = time.monotonic()
        self._buf += data
        try:
            for first, body in self._cut_packets(queue_publishes=True):
                kind = first >> 4
                if kind == PUBACK:
                    self._inflight.discard(packet_id_of("PUBACK", body))
                elif kind == DISCONNECT:
                    self._drop(f"broker disconnected: {self._disconnect_reason(body)}")
                    return
                elif kind not in (PINGRESP, SUBACK):
                    raise LinkError(f"unexpected MQTT packet type {kind} from the broker")
        except LinkError as exc:
            self._drop(str(exc))

    def _cut_packets(self, *, queue_publishes: bool) -> list[tuple[int, bytes]]:
        """Cut complete packets out of the buffer. PUBLISHes go to the ready list; the others
        are returned as ``(first byte, body)``."""
        buf, end, pos = self._buf, len(self._buf), 0
        others: list[tuple[int, bytes]] = []
        ready, generation, v5 = self._ready, self.generation, self.v5
        props = 0
        while pos + 2 <= end:
            first = buf[pos]
            size = buf[pos + 1]
            body_at = pos + 2
            if size & 0x80:
                size, body_at = _read_varint(buf, pos + 1, end)
                if size < 0:
                    break
                if size > self.max_packet:
                    raise LinkError(f"MQTT packet of {size} bytes exceeds {self.max_packet}")
            stop = body_at + size
            if stop > end:
                break
            if first >> 4 == PUBLISH and queue_publishes:
                try:
                    qos = (first >> 1) & 3
                    if qos == 3:  # §3.3.1.2: a malformed packet
                        raise LinkError(f"malformed PUBLISH from the broker (QoS 3, {size} bytes)")
                    tlen = (buf[body_at] << 8) | buf[body_at + 1]
                    at = body_at + 2 + tlen
                    topic = buf[body_at + 2 : at].decode("utf-8", "replace")
                    packet_id = 0
                    if qos:
                        packet_id = (buf[at] << 8) | buf[at + 1]
                        at += 2
                    if v5:
                        props = buf[at]
                        at += 1
                        if props & 0x80:
                            props, at = _read_varint(buf, at - 1, stop)
                        at += props
                except IndexError:
                    at = stop + 1
                if at > stop or (v5 and props < 0):
                    raise LinkError(f"malformed PUBLISH from the broker ({size} bytes)")
                ready.append(Received(topic, bytes(buf[at:stop]), qos, packet_id, generation))
            else:
                others.append((first, bytes(buf[body_at:stop])))
            pos = stop
        if pos:
            del buf[:pos]
        return others

    def _disconnect_reason(self, body: bytes) -> str:
        if not body:
            return "no reason given"
        code = body[0]
        return CONNACK_REASONS.get(code, f"reason code 0x{code:02x}")

    # -- sending ------------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Queue a PUBLISH (sent by :meth:`flush`). QoS 1 waits for quota if the broker's
        Receive Maximum is reached. Dropped silently if the link is down (the worker's acks are
        answered again when the agent resends)."""
        if not self.connected:
            return
        if qos:
            if not self._wait_for_quota():
                return
            self._next_id = (self._next_id % 65535) + 1
            while self._next_id in self._inflight:
                self._next_id = (self._next_id % 65535) + 1
            self._inflight.add(self._next_id)
            variable = _string(topic) + struct.pack("!H", self._next_id)
        else:
            variable = _string(topic)
        if self.v5:
            variable += b"\x00"
        self._out.append(_packet((PUBLISH << 4) | (qos << 1), variable + payload))

    def _wait_for_quota(self) -> bool:
        """Wait until the broker's Receive Maximum lets one more QoS 1 publish go; drop the
        link if the broker acknowledges none of ours within a keep-alive interval (a broker
        that stops sending PUBACKs would otherwise hold the worker here for ever)."""
        deadline = time.monotonic() + self.keepalive_s
        while len(self._inflight) >= self._send_quota and self.connected:
            if time.monotonic() >= deadline:
                self._drop(f"the broker acknowledged none of our {len(self._inflight)} "
                           f"publishes within {self.keepalive_s} s")  # fmt: skip
                break
            self.flush()
            self._pump(1.0)
        return self.connected

    def ack(self, message: Received) -> None:
        """Queue the PUBACK for ``message`` (sent by :meth:`flush`); skipped for QoS 0 and for
        messages of an earlier connection."""
        self.ack_all([message])

    def ack_all(self, messages: Sequence[Received]) -> None:
        """:meth:`ack` for each of ``messages``, built as one buffer (PUBACK ``40 02 <id>``)."""
        if not self.connected:
            return
        generation = self.generation
        ids = [m.packet_id for m in messages if m.qos and m.generation == generation]
        if ids:
            self._out.append(struct.pack(f"!{len(ids)}I", *[0x40020000 | i for i in ids]))

    def flush(self) -> bool:
        """Send everything queued in one write; False if the link dropped."""
        if not self._out:
            return self.connected
        if self._sock is None:
            self._out.clear()
            return False
        data = b"".join(self._out)
        self._out.clear()
        try:
            self._sock.settimeout(10.0)
            self._sock.sendall(data)
        except OSError as exc:
            self._drop(str(exc))
            return False
        self._last_sent = time.monotonic()
        return True
