"""The ingest worker's MQTT connection: the I/O around :class:`collector.ingest.mqtt_codec.ClientSession`.

The packets, the protocol state and its checks live in :mod:`collector.ingest.mqtt_codec` (sans-I/O);
this module owns the socket, TLS, the clocks and the reconnects, all in the worker's own
thread (``docs/decisions/0005-ingest-mqtt-client.md`` has why this is not paho-mqtt).

- :meth:`IngestLink.connect` sends CONNECT, waits for CONNACK (a refusal raises
  :class:`LinkRefused` with the broker's reason), resends our unacknowledged publishes if the
  broker kept our session, SUBSCRIBEs and waits for the SUBACK.
- :meth:`IngestLink.receive` reads what the socket has (up to 256 KiB per ``recv``) and hands
  it to the session, which cuts every complete packet out of it.
- Nothing is acknowledged on receipt. The worker commits first, then calls :meth:`publish`
  (application acks, QoS 1) and :meth:`ack_all` (PUBACKs) and :meth:`flush`, which writes all
  of them in one ``sendall``. Our QoS 1 publishes wait for the broker's Receive Maximum at most
  one keep-alive interval; a broker that stops acknowledging them loses the link.
- A lost connection, a broker DISCONNECT or a malformed packet (a :class:`LinkError`, logged
  with its reason) drops the link; the next :meth:`receive` reconnects with jittered
  exponential back-off (0.1 s doubling to 10 s). The broker redelivers what we did not PUBACK
  (persistent session) or the agent resends it after its ack timeout (clean session); the
  store answers a resend as a duplicate, so nothing is lost or counted twice.
- Keep-alive (§3.1.2.10): a PINGREQ when nothing was sent for half the keep-alive interval; a
  connection with no packet from the broker for 1.5 intervals is dropped and reconnected.
"""

from __future__ import annotations

import logging
import random
import socket
import ssl
import time
from collections.abc import Callable, Sequence

from settleguard.collector.ingest.mqtt_codec import (
    DISCONNECT_PACKET,
    MAX_PACKET,
    PINGREQ_PACKET,
    ClientSession,
    LinkError,
    LinkRefused,
    Received,
)

__all__ = ["MAX_PACKET", "IngestLink", "LinkError", "LinkRefused", "Received", "tls_context"]

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024


def tls_context(
    ca_file: str | None, cert_file: str | None = None, key_file: str | None = None
) -> ssl.SSLContext:
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
        self.tls = tls
        self.session = ClientSession(
            client_id=client_id,
            filters=filters,
            username=username,
            password=password,
            v5=v5,
            session_expiry_s=session_expiry_s,
            keepalive_s=keepalive_s,
            receive_maximum=receive_maximum,
            max_packet=max_packet,
        )
        self.keepalive_s = keepalive_s
        self.connected = False
        self.last_error: str | None = None
        self._sock: socket.socket | None = None
        self._out: list[bytes] = []
        self._last_sent = self._last_heard = 0.0
        self._retry_at = 0.0
        self._backoff = 0.1

    @property
    def generation(self) -> int:
        """The connection number (see :meth:`ack`)."""
        return self.session.generation

    @property
    def receive_maximum(self) -> int | None:
        """The Receive Maximum we ask the broker for (v5)."""
        return self.session.receive_maximum

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
        self._sock = sock
        session = self.session
        try:
            sock.sendall(session.connect_packet())
            self._read_until(lambda: session.connected, deadline)
            sock.sendall(session.subscribe_packet())
            self._read_until(lambda: session.subscribed, deadline)
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

    def _read_until(self, done: Callable[[], bool], deadline: float) -> None:
        """Read until ``done()`` (connect phase only; PUBLISHes wait in the session)."""
        assert self._sock is not None
        while not done():
            if self.session.disconnect_reason is not None:
                raise LinkRefused(f"broker disconnected: {self.session.disconnect_reason}")
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
            self.session.receive_data(data)

    def close(self) -> None:
        """Say DISCONNECT (a v5 session with expiry stays on the broker) and close."""
        if self._sock is not None and self.connected:
            try:
                self._sock.sendall(b"".join(self._out) + DISCONNECT_PACKET)
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
        self._out.clear()  # PUBACKs of a dead connection mean nothing on the next

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
            log.warning("MQTT reconnect failed (next try in %.1f s): %s", self._retry_at - now, exc)
            return False

    # -- receiving ----------------------------------------------------------------------------

    def receive(self, limit: int, timeout: float, wait: float = 0.0) -> list[Received]:
        """Up to ``limit`` messages: wait up to ``timeout`` for the first, then up to ``wait``
        more seconds to fill the batch. Reconnects (with back-off) when the link is down."""
        now = time.monotonic()
        first_deadline = now + timeout
        fill_deadline: float | None = None
        session = self.session
        while len(session.ready) < limit:
            if session.ready and fill_deadline is None:
                fill_deadline = time.monotonic() + wait
            deadline = fill_deadline if fill_deadline is not None else first_deadline
            remaining = deadline - time.monotonic()
            if not self.connected and not self._reconnect():
                if session.ready or remaining <= 0:
                    break
                time.sleep(min(remaining, max(self._retry_at - time.monotonic(), 0.0), 0.1))
                continue
            self._pump(max(remaining, 0.0))
            if time.monotonic() >= deadline:
                break
        return session.take(limit)

    def _pump(self, timeout: float) -> None:
        """One read (waiting at most ``timeout``), every complete packet handled."""
        assert self._sock is not None
        now = time.monotonic()
        half = self.keepalive_s / 2
        if now - self._last_heard > self.keepalive_s * 1.5:
            self._drop("no packet from the broker within 1.5 keep-alive intervals")
            return
        if now - self._last_sent >= half:
            self._out.append(PINGREQ_PACKET)
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
        try:
            self.session.receive_data(data)
        except LinkError as exc:
            self._drop(str(exc))
            return
        if self.session.disconnect_reason is not None:
            self._drop(f"broker disconnected: {self.session.disconnect_reason}")

    # -- sending ------------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Queue a PUBLISH (sent by :meth:`flush`). QoS 1 waits for quota if the broker's
        Receive Maximum is reached. Dropped silently if the link is down (the worker's acks are
        answered again when the agent resends)."""
        if not self.connected:
            return
        if qos and not self._wait_for_quota():
            return
        self._out.append(self.session.publish(topic, payload, qos))

    def _wait_for_quota(self) -> bool:
        """Wait until the broker's Receive Maximum lets one more QoS 1 publish go; drop the
        link if the broker acknowledges none of ours within a keep-alive interval (a broker
        that stops sending PUBACKs would otherwise hold the worker here for ever)."""
        deadline = time.monotonic() + self.keepalive_s
        while not self.session.can_publish and self.connected:
            if time.monotonic() >= deadline:
                self._drop(
                    f"the broker acknowledged none of our {self.session.unacknowledged} "
                    f"publishes within {self.keepalive_s} s"
                )
                break
            self.flush()
            self._pump(1.0)
        return self.connected

    def ack(self, message: Received) -> None:
        """Queue the PUBACK for ``message`` (sent by :meth:`flush`); skipped for QoS 0 and for
        messages of an earlier connection."""
        self.ack_all([message])

    def ack_all(self, messages: Sequence[Received]) -> None:
        """:meth:`ack` for each of ``messages``, built as one buffer."""
        if not self.connected:
            return
        data = self.session.acks(messages)
        if data:
            self._out.append(data)

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
