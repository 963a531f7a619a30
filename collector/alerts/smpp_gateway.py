"""SMPP 3.4 gateway over smpplib, run by one supervised thread.

Theory of operation (SMPP 3.4 §2.2-2.3 sessions, §4.1 bind, §4.4 submit_sm, §4.6 deliver_sm,
§4.11 enquire_link, Appendix B receipts):

- The worker thread owns the sockets. It binds as transceiver (``bind=trx``) or as transmitter
  plus a receiver session for receipts (``bind=tx``), keeps the link alive with enquire_link when
  idle, and reconnects with jittered exponential back-off.
- :meth:`SmppGateway.send` splits the text (:mod:`.encoding`) into parts with a UDH (or SAR TLVs
  with ``sar=1``) and queues them. At most ``window`` submit_sm are outstanding.
- ``ESME_RTHROTTLED``/``ESME_RMSGQFUL`` put only that part back in the queue after
  ``throttle_delay``; parts already accepted are never submitted again.
- A part written but never answered (timeout, link lost) makes the message *uncertain*: we do
  not resubmit it, because SMPP has no idempotency and a second copy cannot be taken back.
- Receipts come from ``receipted_message_id``/``message_state`` TLVs or the receipt text.

Never logged, at any level: the bind password and message bodies. smpplib's own logger dumps
whole PDUs in hex at DEBUG, so its logger is disabled for our clients.
"""

from __future__ import annotations

import logging
import random
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from settleguard.collector.alerts.encoding import concat_udh, data_coding, encode_part, segment
from settleguard.collector.alerts.gateway import (
    DeliveryReceipt,
    GatewayConfigError,
    GatewayUnavailable,
    SendRejected,
    SendResult,
    SendUncertain,
    TemplateCall,
    normalise_state,
    parse_receipt_text,
)
from smpplib import consts, smpp
from smpplib import exceptions as smpp_errors
from smpplib.client import Client

log = logging.getLogger("settleguard.alerts.smpp")
_WIRE_LOGGER = "settleguard.alerts.smpp.wire"
# smpplib logs whole PDUs (bind password, message text) in hex at DEBUG. Its clients get a
# logger that is not registered with the logging manager, so no logging configuration
# (dictConfig, caplog, a root DEBUG level) can switch it back on.
_SILENT = logging.Logger(_WIRE_LOGGER, level=logging.CRITICAL + 1)
_SILENT.disabled = True
_SILENT.propagate = False

RETRY_LATER = frozenset({consts.SMPP_ESME_RTHROTTLED, consts.SMPP_ESME_RMSGQFUL})
# SMPP 3.4 §5.2.28 message_state values
MESSAGE_STATES = {
    2: "DELIVERED",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIVERABLE",
    6: "ACCEPTED",
    7: "UNKNOWN",
    8: "REJECTED",
}
LinkError = (smpp_errors.ConnectionError, smpp_errors.PDUError, OSError)


@dataclass(frozen=True, slots=True)
class SmppSettings:
    """Connection and timing settings; all durations in seconds."""

    host: str
    port: int
    system_id: str
    password: str = field(repr=False)
    bind: str = "trx"
    window: int = 10
    sar: bool = False
    source_addr: str = "SettleGuard"
    system_type: str = ""
    enquire_interval: float = 30.0
    response_timeout: float = 10.0
    submit_timeout: float = 30.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    throttle_delay: float = 1.0
    tick: float = 0.2


@dataclass(eq=False, slots=True)
class _Job:
    parts: list[_Part] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    result: SendResult | None = None
    error: Exception | None = None

    def accepted(self) -> tuple[str, ...]:
        return tuple(p.message_id for p in self.parts if p.message_id is not None)


@dataclass(eq=False, slots=True)
class _Part:
    job: _Job
    params: dict[str, Any]
    written: bool = False
    sent_at: float = 0.0
    not_before: float = 0.0
    message_id: str | None = None


def _address(number: str) -> tuple[int, int, str]:
    """(ton, npi, digits): '+86…' is international/E.164 (SMPP 3.4 §5.2.5-6)."""
    if number.startswith("+"):
        return 1, 1, number[1:]
    return 0, 1, number


def _source(addr: str) -> tuple[int, int, str]:
    if addr.lstrip("+").isdigit():
        return _address(addr)
    return 5, 0, addr  # alphanumeric sender


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").rstrip("\x00")
    return "" if value is None else str(value)


class SmppGateway:
    """:class:`~.gateway.SmsGateway` over SMPP 3.4."""

    def __init__(self, settings: SmppSettings) -> None:
        if len(settings.password) > 8 or len(settings.system_id) > 15:
            # SMPP 3.4 §4.1.1: password C-Octet String max 9, system_id max 16 (with NUL)
            raise GatewayConfigError("SMPP password max 8 and system_id max 15 characters")
        self.settings = settings
        self._lock = threading.Lock()
        self._pending: deque[_Part] = deque()
        self._inflight: dict[int, _Part] = {}
        self._receipts: list[DeliveryReceipt] = []
        self._links: list[Client] = []
        self._last_error = "not connected yet"
        self._failures = 0
        self._ref = random.randrange(0x100)
        self._last_rx = 0.0
        self._enquire_sent: float | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self.bound = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="smpp-gateway", daemon=True)
        self._thread.start()

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> SmppGateway:
        """Build from ``smpp://user:password@host:port?bind=trx|tx&window=10&sar=0``.

        Other query options: ``source``, ``system_type``, ``enquire``, ``timeout`` (response),
        ``submit_timeout``, ``backoff``, ``backoff_max``, ``throttle_delay``, ``tick``.
        """
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if not parts.hostname or parts.username is None:
            raise GatewayConfigError("SMPP URL needs smpp://system_id:password@host:port")
        bind = query.get("bind", "trx")
        if bind not in ("trx", "tx"):
            raise GatewayConfigError(f"SMPP bind must be trx or tx, not {bind!r}")
        try:
            floats = {
                name: float(query[key])
                for key, name in (
                    ("enquire", "enquire_interval"),
                    ("timeout", "response_timeout"),
                    ("submit_timeout", "submit_timeout"),
                    ("backoff", "backoff_base"),
                    ("backoff_max", "backoff_max"),
                    ("throttle_delay", "throttle_delay"),
                    ("tick", "tick"),
                )
                if key in query
            }
            settings = SmppSettings(
                host=parts.hostname,
                port=parts.port or 2775,
                system_id=unquote(parts.username),
                password=unquote(parts.password or ""),
                bind=bind,
                window=int(query.get("window", 10)),
                sar=query.get("sar", "0") == "1",
                source_addr=query.get("source", "SettleGuard"),
                system_type=query.get("system_type", ""),
                **{**floats, **overrides},
            )
        except ValueError as exc:
            raise GatewayConfigError(f"bad SMPP URL option: {exc}") from None
        return cls(settings)

    # --- caller side -------------------------------------------------------------------

    def send(
        self, to: str, text: str, *, client_ref: str, template: TemplateCall | None = None
    ) -> SendResult:
        """Submit *text* to *to*; returns one SMSC message id per part.

        :raises GatewayUnavailable: not bound within ``submit_timeout``, nothing was written
        :raises SendRejected: the SMSC refused the first part permanently
        :raises SendUncertain: a part may have gone out but was not confirmed
        """
        job = _Job()
        seg = segment(text)
        ref = self._next_ref()
        for index, part_text in enumerate(seg.parts, start=1):
            job.parts.append(
                _Part(
                    job,
                    self._submit_params(to, part_text, seg.encoding, ref, seg.part_count, index),
                )
            )
        with self._lock:
            self._pending.extend(job.parts)
        self._wake()
        log.info("queued %s: %d part(s) %s", client_ref, seg.part_count, seg.encoding)
        if not job.done.wait(self.settings.submit_timeout):
            with self._lock:
                if not job.done.is_set():
                    self._finish(job, self._timeout_error(job))
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _timeout_error(self, job: _Job) -> Exception:
        if any(p.written for p in job.parts):
            return SendUncertain("no answer from the SMSC in time", job.accepted())
        return GatewayUnavailable(f"SMPP link not available: {self._last_error}")

    def _next_ref(self) -> int:
        with self._lock:
            self._ref = (self._ref + 1) & 0xFF
            return self._ref

    def _submit_params(
        self, to: str, part_text: str, encoding: str, ref: int, total: int, index: int
    ) -> dict[str, Any]:
        src_ton, src_npi, src = _source(self.settings.source_addr)
        ton, npi, dest = _address(to)
        payload = encode_part(part_text, encoding)  # type: ignore[arg-type]
        params: dict[str, Any] = dict(
            source_addr_ton=src_ton,
            source_addr_npi=src_npi,
            source_addr=src,
            dest_addr_ton=ton,
            dest_addr_npi=npi,
            destination_addr=dest,
            esm_class=0,
            registered_delivery=1,
            data_coding=data_coding(encoding),  # type: ignore[arg-type]
            short_message=payload,
        )
        if total > 1 and self.settings.sar:
            params.update(sar_msg_ref_num=ref, sar_total_segments=total, sar_segment_seqnum=index)
        elif total > 1:
            params.update(esm_class=0x40, short_message=concat_udh(ref, total, index) + payload)
        return params

    def poll_receipts(self) -> list[DeliveryReceipt]:
        """Receipts received since the last call."""
        with self._lock:
            receipts, self._receipts = self._receipts, []
        return receipts

    def lookup(self, client_ref: str) -> SendResult | None:
        """SMPP cannot find a message by our reference: always None."""
        return None

    @property
    def alive(self) -> bool:
        """True while the supervised worker thread runs."""
        return self._thread.is_alive()

    def close(self) -> None:
        """Unbind, disconnect and stop the worker thread."""
        self._stop.set()
        self._wake()
        self._thread.join(timeout=self.settings.response_timeout + 5)
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    # --- worker thread -----------------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._links:
                    self._connect()
                self._step()
            except LinkError as exc:
                self._drop(f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # a bug must not kill the thread that sends alerts
                log.error("SMPP worker error %s; reconnecting", type(exc).__name__)
                self._drop(type(exc).__name__)
        self._shutdown()

    def _client(self) -> Client:
        client = Client(
            self.settings.host,
            self.settings.port,
            timeout=self.settings.response_timeout,
            logger_name=_WIRE_LOGGER,
            allow_unknown_opt_params=True,
        )
        client.logger = _SILENT
        client.connect()
        return client

    def _connect(self) -> None:
        s = self.settings
        log.info("connecting to SMSC %s:%d as %s (bind=%s)", s.host, s.port, s.system_id, s.bind)
        binds = ["bind_transceiver"] if s.bind == "trx" else ["bind_transmitter", "bind_receiver"]
        links = []
        try:
            for bind in binds:
                client = self._client()
                links.append(client)
                getattr(client, bind)(
                    system_id=s.system_id,
                    password=s.password,
                    system_type=s.system_type,
                    interface_version=0x34,
                )
        except LinkError:
            for client in links:
                self._close_socket(client)
            raise
        self._links = links
        self._failures = 0
        self._last_rx, self._enquire_sent = time.monotonic(), None
        self.bound.set()
        log.info("bound to SMSC %s:%d", s.host, s.port)

    def _step(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._submit_ready(now)
            self._expire_inflight(now)
        sockets = [client._socket for client in self._links]  # smpplib exposes no accessor
        readable, _, _ = select.select([self._wake_r, *sockets], [], [], self.settings.tick)
        if self._wake_r in readable:
            self._wake_r.recv(4096)
        for client in self._links:
            if client._socket in readable:
                pdu = client.read_pdu()
                self._last_rx, self._enquire_sent = time.monotonic(), None
                with self._lock:
                    self._handle(client, pdu)
        self._keepalive()

    def _keepalive(self) -> None:
        now = time.monotonic()
        if self._enquire_sent is not None:
            if now - self._enquire_sent > self.settings.response_timeout:
                raise smpp_errors.ConnectionError("no enquire_link_resp")
        elif now - self._last_rx >= self.settings.enquire_interval:
            for client in self._links:
                client.send_pdu(smpp.make_pdu("enquire_link", client=client))
            self._enquire_sent = now

    def _submit_ready(self, now: float) -> None:
        tx = self._links[0]
        while self._pending and len(self._inflight) < self.settings.window:
            part = self._pending[0]
            if part.job.done.is_set():
                self._pending.popleft()
                continue
            if part.not_before > now:
                return
            self._pending.popleft()
            pdu = smpp.make_pdu("submit_sm", client=tx, **part.params)
            part.written, part.sent_at = True, now
            self._inflight[pdu.sequence] = part
            tx.send_pdu(pdu)

    def _expire_inflight(self, now: float) -> None:
        for seq, part in list(self._inflight.items()):
            if now - part.sent_at > self.settings.response_timeout:
                del self._inflight[seq]
                log.warning("no submit_sm_resp for sequence %d", seq)
                self._finish(
                    part.job, SendUncertain("no submit_sm_resp in time", part.job.accepted())
                )

    @staticmethod
    def _respond(client: Client, command: str, request: Any) -> None:
        # SMPP 3.4 §3.2: a response carries the request's sequence_number. (smpplib's make_pdu
        # ignores a sequence keyword, so it is set afterwards.)
        resp = smpp.make_pdu(command, client=client)
        resp.sequence = request.sequence
        client.send_pdu(resp)

    def _handle(self, client: Client, pdu: Any) -> None:
        command = pdu.command
        if command in ("submit_sm_resp", "generic_nack"):
            self._on_submit_resp(pdu)
        elif command in ("deliver_sm", "data_sm"):
            self._on_deliver(client, pdu)
        elif command == "enquire_link":
            self._respond(client, "enquire_link_resp", pdu)
        elif command == "unbind":
            self._respond(client, "unbind_resp", pdu)
            raise smpp_errors.ConnectionError("SMSC unbound")
        elif command != "enquire_link_resp":
            log.debug("ignoring %s from SMSC", command)

    def _on_submit_resp(self, pdu: Any) -> None:
        part = self._inflight.pop(pdu.sequence, None)
        if part is None or part.job.done.is_set():
            return  # late answer for a part already given up on
        status = int(pdu.status)
        if status == consts.SMPP_ESME_ROK and pdu.command == "submit_sm_resp":
            part.message_id = _text(pdu.message_id)
            if all(p.message_id is not None for p in part.job.parts):
                seg_parts = len(part.job.parts)
                coding = "ucs2" if part.params["data_coding"] == 0x08 else "gsm7"
                part.job.result = SendResult(part.job.accepted(), seg_parts, coding)
                part.job.done.set()
        elif status in RETRY_LATER:
            log.warning("SMSC asked to slow down (0x%08X); retrying that part later", status)
            part.written, part.not_before = False, time.monotonic() + self.settings.throttle_delay
            self._pending.appendleft(part)
        else:
            description = consts.DESCRIPTIONS.get(status, "unknown status")
            accepted = part.job.accepted()
            error: Exception = (SendUncertain if accepted else SendRejected)(
                f"SMSC refused a part: 0x{status:08X} {description}",
                *([accepted] if accepted else []),
            )
            self._finish(part.job, error)

    def _on_deliver(self, client: Client, pdu: Any) -> None:
        self._respond(client, "deliver_sm_resp", pdu)
        receipt = self._receipt_from(pdu)
        if receipt is not None:
            self._receipts.append(receipt)

    @staticmethod
    def _receipt_from(pdu: Any) -> DeliveryReceipt | None:
        parsed = parse_receipt_text(_text(getattr(pdu, "short_message", b"")))
        tlv_id = _text(getattr(pdu, "receipted_message_id", None))
        tlv_state = getattr(pdu, "message_state", None)
        if tlv_id and tlv_state in MESSAGE_STATES:
            word = MESSAGE_STATES[tlv_state]
            error = parsed.error if parsed else None
            return DeliveryReceipt(tlv_id, normalise_state(word), error, raw_state=word)
        if parsed is not None and tlv_id:
            return DeliveryReceipt(tlv_id, parsed.state, parsed.error, parsed.raw_state)
        return parsed

    def _finish(self, job: _Job, error: Exception) -> None:
        if not job.done.is_set():
            job.error = error
            job.done.set()

    def _drop(self, reason: str) -> None:
        self._last_error = reason
        self.bound.clear()
        log.warning("SMPP link down (%s)", reason)
        with self._lock:
            for part in self._inflight.values():
                self._finish(
                    part.job,
                    SendUncertain("SMPP link lost after a part was written", part.job.accepted()),
                )
            self._inflight.clear()
        for client in self._links:
            self._close_socket(client)
        self._links = []
        self._failures += 1
        delay = min(
            self.settings.backoff_max, self.settings.backoff_base * 2 ** (self._failures - 1)
        )
        self._stop.wait(delay * random.uniform(0.5, 1.0))

    @staticmethod
    def _close_socket(client: Client) -> None:
        try:
            client.disconnect()
        except LinkError:
            pass
        client._socket = None  # so smpplib's __del__ does not warn about an open client

    def _shutdown(self) -> None:
        for client in self._links:
            try:
                client.unbind()
            except LinkError:
                pass
            self._close_socket(client)
        self._links = []
        with self._lock:
            for part in [*self._pending, *self._inflight.values()]:
                self._finish(
                    part.job,
                    GatewayUnavailable("gateway closed")
                    if not part.written
                    else SendUncertain("gateway closed", part.job.accepted()),
                )
