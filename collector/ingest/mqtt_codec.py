"""The ingest link's MQTT client as a sans-I/O state machine: bytes in, packets and state out.

:class:`ClientSession` builds every packet the ingest worker sends and parses every packet the
broker sends, for MQTT 3.1.1 and 5.0 (OASIS; section numbers are v5's). It owns no socket, no
clock and no thread: :mod:`collector.ingest.mqtt_link` does the I/O, the timers and the reconnects,
and tests drive this class with bytes alone. The worker needs a small part of MQTT, so this
is that part and no more (see ``docs/decisions/0005-ingest-mqtt-client.md`` for why the
collector does not use paho-mqtt here).

One connection, in order:

1. :meth:`ClientSession.connect_packet` starts a connection: CONNECT (§3.1) with user name,
   password, keep-alive, Clean Start unless a v5 session is resumed, and on v5 Session Expiry,
   Receive Maximum and Maximum Packet Size. Every connection has a new :attr:`generation`.
2. :meth:`ClientSession.receive_data` takes whatever bytes arrived and cuts every complete
   packet out of them; a packet split across reads waits for the rest. CONNACK (§3.2) checks
   the broker's answer (a refusal raises :class:`LinkRefused` with the reason) and takes its
   Receive Maximum; SUBACK (§3.9) checks every reason code; PUBLISH (§3.3) becomes a
   :class:`Received` in :attr:`ready` (the properties block is skipped: we never offer Topic
   Aliases, so the topic is always there); PUBACK (§3.4) frees one of our publishes; a
   DISCONNECT (§3.14) ends the connection (:attr:`disconnect_reason`) and what follows it in
   the same read is ignored.
3. After the CONNACK, :meth:`ClientSession.subscribe_packet` resubmits our unacknowledged
   publishes when the broker resumed our session (§4.4: same packet ids, DUP set), then
   SUBSCRIBEs every filter at QoS 1 (§3.8).
4. Nothing is acknowledged on receipt: the worker commits, then :meth:`ClientSession.acks`
   builds the PUBACKs, skipping messages of an earlier connection (their packet ids belong to
   it; a resumed session redelivers them with DUP on the new one).

Flow control (§4.9): our QoS 1 publishes stop at the broker's Receive Maximum
(:attr:`ClientSession.can_publish`). Our own Receive Maximum tells the broker how many
unacknowledged messages we take; one it sends beyond that is still taken, not treated as a
protocol error: Mosquitto 2.0.11, the broker we ship with, sends past it while it drains a
resumed session (``docs/decisions/0005-ingest-mqtt-client.md``), and dropping the link for it
makes the session deliver its whole window again on every reconnect. Malformed input — a PUBACK or SUBACK
shorter than its packet id, properties past their block, a Receive Maximum of 0, a QoS 3
PUBLISH, a packet above :attr:`ClientSession.max_packet` — is a :class:`LinkError` whose text
names the packet and its size, never its content.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import ClassVar

import msgspec

# Packet types (first byte, high nibble) and fixed packets we send.
CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"
DUP = 0x08  # the DUP flag in a PUBLISH's first byte (§3.3.1.1)

MAX_PACKET = 16 * 1024 * 1024  # larger than any broker limit we ship; a bigger one is a fault

# MQTT v5 property ids by value type (§2.2.2.2), to walk CONNACK/SUBACK/DISCONNECT properties.
_PROP_BYTE = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
_PROP_TWO = {0x13, 0x21, 0x22, 0x23}
_PROP_FOUR = {0x02, 0x11, 0x18, 0x27}
_PROP_VARINT = {0x0B}
_PROP_STRING = {0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F, 0x09, 0x16}  # strings and binary
_PROP_PAIR = {0x26}
SESSION_EXPIRY, RECEIVE_MAXIMUM, REASON_STRING, MAXIMUM_PACKET_SIZE = 0x11, 0x21, 0x1F, 0x27

#: v5 reason codes (§3.2.2.2, §3.14.2.1) and v3.1.1 CONNACK return codes (3.1.1 §3.2.2.3).
REASONS = {
    0x04: "disconnect with will message",
    0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
    0x84: "unsupported protocol version", 0x85: "client identifier not valid",
    0x86: "bad user name or password", 0x87: "not authorized", 0x88: "server unavailable",
    0x89: "server busy", 0x8A: "banned", 0x8B: "server shutting down",
    0x8C: "bad authentication method", 0x8D: "keep alive timeout", 0x8E: "session taken over",
    0x93: "receive maximum exceeded", 0x95: "packet too large", 0x97: "quota exceeded",
    0x9C: "use another server", 0x9D: "server moved", 0x9F: "connection rate exceeded",
}  # fmt: skip
REASONS_311 = {
    1: "unacceptable protocol version", 2: "identifier rejected", 3: "server unavailable",
    4: "bad user name or password", 5: "not authorized",
}  # fmt: skip


class LinkError(Exception):
    """The connection failed or the broker broke the protocol (the link reconnects)."""


class LinkRefused(LinkError):
    """The broker refused the connection or a subscription (credentials, ACL)."""


class Received(msgspec.Struct, frozen=True, gc=False):
    """One PUBLISH from the broker.

    :ivar generation: the connection it arrived on (see :meth:`ClientSession.acks`)
    :ivar packet_id: 0 for QoS 0
    :ivar dup: the broker marked it as a possible re-delivery (§3.3.1.1)
    """

    topic: str
    payload: bytes
    qos: int
    packet_id: int
    generation: int
    dup: bool = False
    #: Where it came from, as :class:`collector.ingest.verify.Message` has it.
    source: ClassVar[str] = "mqtt"


def varint(value: int) -> bytes:
    """A variable byte integer (§1.5.5)."""
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def string(value: str | bytes) -> bytes:
    """A length-prefixed UTF-8 string or binary data (§1.5.4, §1.5.6)."""
    data = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(data)) + data


def packet(first: int, body: bytes) -> bytes:
    """A whole packet: first byte, remaining length, body."""
    return bytes([first]) + varint(len(body)) + body


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


class ClientSession:
    """The client side of MQTT for one client id, across its connections; no I/O.

    :param filters: topic filters subscribed at QoS 1 on every connection
    :param v5: MQTT 5.0, else 3.1.1
    :param session_expiry_s: v5 only: above 0, resume the session of ``client_id`` (Clean
        Start off) and ask the broker to keep it this long while we are away
    :param receive_maximum: at most this many unacknowledged QoS 1 messages in flight to us
        (v5 Receive Maximum); None leaves it to the broker
    :param max_packet: the largest packet we take; on v5 sent as Maximum Packet Size
        (§3.1.2.11.4) so the broker discards a larger message for us instead of sending it
    """

    def __init__(
        self,
        *,
        client_id: str,
        filters: Sequence[str],
        username: str | None = None,
        password: str | None = None,
        v5: bool = True,
        session_expiry_s: int = 0,
        keepalive_s: int = 30,
        receive_maximum: int | None = None,
        max_packet: int = MAX_PACKET,
    ) -> None:
        self.client_id, self.filters = client_id, list(filters)
        self.username, self.password = username, password
        self.v5 = v5
        self.session_expiry_s = session_expiry_s if v5 else 0
        self.keepalive_s = keepalive_s
        self.receive_maximum = receive_maximum
        self.max_packet = max_packet
        #: The connection number; :meth:`connect_packet` counts up.
        self.generation = 0
        #: PUBLISHes received and not taken yet (see :meth:`take`).
        self.ready: list[Received] = []
        #: The broker's CONNACK arrived and accepted us on this connection.
        self.connected = False
        #: The broker resumed a stored session for us (CONNACK Session Present).
        self.session_present = False
        #: The SUBACK for our subscription arrived and granted every filter.
        self.subscribed = False
        #: Set when the broker sent DISCONNECT: its reason.
        self.disconnect_reason: str | None = None
        self._buf = bytearray()
        self._next_id = 0
        self._sub_id = 0
        self._unacked: dict[int, bytes] = {}  # our QoS 1 publishes (packet bytes) awaiting PUBACK
        self._send_quota = 65535  # the broker's Receive Maximum (v5 CONNACK), else the default

    # -- the connection -----------------------------------------------------------------------

    @property
    def resumes_session(self) -> bool:
        """Whether a CONNECT asks the broker to continue a stored session."""
        return self.session_expiry_s > 0

    def connect_packet(self) -> bytes:
        """Start a new connection: reset its state and return the CONNECT to send."""
        self.generation += 1
        self._buf = bytearray()  # messages already in ready stay: acks() skips theirs
        self.connected = self.subscribed = self.session_present = False
        self.disconnect_reason = None
        flags = (0x80 if self.username else 0) | (0x40 if self.password is not None else 0)
        if not self.resumes_session:
            flags |= 0x02  # clean start
        head = string("MQTT") + bytes([5 if self.v5 else 4, flags])
        head += struct.pack("!H", self.keepalive_s)
        if self.v5:
            props = b""
            if self.receive_maximum:
                props += struct.pack("!BH", RECEIVE_MAXIMUM, self.receive_maximum)
            if self.session_expiry_s:
                props += struct.pack("!BI", SESSION_EXPIRY, self.session_expiry_s)
            props += struct.pack("!BI", MAXIMUM_PACKET_SIZE, self.max_packet)
            head += varint(len(props)) + props
        payload = string(self.client_id)
        if self.username:
            payload += string(self.username)
        if self.password is not None:
            payload += string(self.password.encode())
        return packet(CONNECT << 4, head + payload)

    def subscribe_packet(self) -> bytes:
        """After the CONNACK: our unacknowledged publishes again if the broker kept our
        session (§4.4: original packet ids, DUP set), then the SUBSCRIBE for every filter."""
        resend = b"".join(self._unacked.values())
        self._sub_id = self._new_id()
        body = struct.pack("!H", self._sub_id) + (b"\x00" if self.v5 else b"")
        for topic_filter in self.filters:
            body += string(topic_filter) + b"\x01"
        return resend + packet((SUBSCRIBE << 4) | 0x02, body)

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
            table = REASONS if self.v5 else REASONS_311
            reason = table.get(code, f"reason code 0x{code:02x}")
            text = props.get(REASON_STRING)
            detail = f" ({text.decode(errors='replace')})" if isinstance(text, bytes) else ""
            raise LinkRefused(f"broker refused the connection: {reason}{detail}")
        quota = props.get(RECEIVE_MAXIMUM, 65535)
        if not isinstance(quota, int) or quota < 1:
            raise LinkError(f"malformed CONNACK from the broker: Receive Maximum {quota}")
        self._send_quota = quota
        self.session_present = bool(body[0] & 0x01) and self.resumes_session
        if self.session_present:  # resent with DUP by subscribe_packet
            self._unacked = {
                pid: bytes([data[0] | DUP]) + data[1:] for pid, data in self._unacked.items()
            }
        else:  # a new session: our old packet ids mean nothing to the broker
            self._unacked.clear()
        self.connected = True

    def _on_suback(self, body: bytes) -> None:
        if packet_id_of("SUBACK", body) != self._sub_id:
            return
        pos = 2
        if self.v5:
            _, pos = properties_at("SUBACK", body, 2)
        codes = body[pos:]
        refused = [f for f, code in zip(self.filters, codes, strict=False) if code >= 0x80]
        if refused or len(codes) != len(self.filters):
            raise LinkRefused(f"subscription refused: {', '.join(refused) or 'malformed SUBACK'}")
        self.subscribed = True

    # -- receiving ----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Take bytes from the broker: every complete packet is handled (PUBLISHes go to
        :attr:`ready`); an incomplete one waits for the next call. After a DISCONNECT the
        connection is over and nothing more is read from it.

        :raises LinkRefused: the CONNACK or SUBACK refused us
        :raises LinkError: a malformed packet or a protocol violation
        """
        if self.disconnect_reason is not None:
            return
        self._buf += data
        for first, body in self._cut_packets():
            kind = first >> 4
            if kind == PUBACK:
                self._unacked.pop(packet_id_of("PUBACK", body), None)
            elif kind == CONNACK and not self.connected:
                self._on_connack(body)
            elif kind == SUBACK:
                self._on_suback(body)
            elif kind == DISCONNECT:
                self.disconnect_reason = self._reason(body)
                self.connected = False
                self._buf.clear()
                return
            elif kind != PINGRESP:
                raise LinkError(f"unexpected MQTT packet type {kind} from the broker")

    def take(self, limit: int) -> list[Received]:
        """Up to ``limit`` received messages, oldest first."""
        batch, self.ready = self.ready[:limit], self.ready[limit:]
        return batch

    def _cut_packets(self) -> list[tuple[int, bytes]]:
        """Cut complete packets out of the buffer. PUBLISHes go to :attr:`ready`; the others
        are returned as ``(first byte, body)``, stopping after a DISCONNECT."""
        buf, end, pos = self._buf, len(self._buf), 0
        others: list[tuple[int, bytes]] = []
        ready, generation, v5 = self.ready, self.generation, self.v5
        props = 0
        try:
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
                if first >> 4 == PUBLISH:
                    try:
                        qos = (first >> 1) & 3
                        if qos == 3:  # §3.3.1.2: a malformed packet
                            raise LinkError(
                                f"malformed PUBLISH from the broker (QoS 3, {size} bytes)"
                            )
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
                    ready.append(
                        Received(
                            topic,
                            bytes(buf[at:stop]),
                            qos,
                            packet_id,
                            generation,
                            bool(first & DUP),
                        )
                    )
                else:
                    others.append((first, bytes(buf[body_at:stop])))
                    if first >> 4 == DISCONNECT:
                        pos = stop
                        break
                pos = stop
        finally:
            if pos:
                del buf[:pos]
        return others

    def _reason(self, body: bytes) -> str:
        if not body:
            return "no reason given"
        code = body[0]
        return REASONS.get(code, f"reason code 0x{code:02x}")

    # -- sending ------------------------------------------------------------------------------

    @property
    def can_publish(self) -> bool:
        """Whether the broker's Receive Maximum lets one more QoS 1 publish go (§4.9)."""
        return len(self._unacked) < self._send_quota

    @property
    def unacknowledged(self) -> int:
        """How many of our QoS 1 publishes wait for the broker's PUBACK."""
        return len(self._unacked)

    def _new_id(self) -> int:
        self._next_id = (self._next_id % 65535) + 1
        while self._next_id in self._unacked:
            self._next_id = (self._next_id % 65535) + 1
        return self._next_id

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> bytes:
        """A PUBLISH to send; a QoS 1 one is kept until the broker's PUBACK.

        :raises LinkError: QoS 1 while :attr:`can_publish` is false
        """
        if qos:
            if not self.can_publish:
                raise LinkError(f"the broker's Receive Maximum of {self._send_quota} is reached")
            packet_id = self._new_id()
            variable = string(topic) + struct.pack("!H", packet_id)
        else:
            variable = string(topic)
        if self.v5:
            variable += b"\x00"
        data = packet((PUBLISH << 4) | (qos << 1), variable + payload)
        if qos:
            self._unacked[packet_id] = data
        return data

    def acks(self, messages: Sequence[Received]) -> bytes:
        """The PUBACKs (``40 02 <id>``) for ``messages``, skipping QoS 0 and messages of an
        earlier connection."""
        generation = self.generation
        ids = [m.packet_id for m in messages if m.qos and m.generation == generation]
        if not ids:
            return b""
        return struct.pack(f"!{len(ids)}I", *[0x40020000 | i for i in ids])
