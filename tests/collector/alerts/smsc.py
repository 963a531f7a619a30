"""A small SMPP 3.4 SMSC for tests: raw sockets, struct, and its own PDU codec.

Deliberately independent of smpplib so the gateway is checked against SMPP 3.4 as written
(§3.2 PDU format, §4 operations, §5.3 TLVs, Appendix B receipts), not against itself.
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# SMPP 3.4 §5.1.2 command ids
BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER = 0x00000001, 0x00000002, 0x00000009
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x00000004, 0x00000005, 0x00000006, 0x00000015
GENERIC_NACK, RESP = 0x80000000, 0x80000000
# §5.1.3 command_status
ROK, RINVCMDID, RBINDFAIL, RTHROTTLED, RMSGQFUL = 0x00, 0x03, 0x0D, 0x58, 0x14
# §5.3.2 TLV tags
TAG_RECEIPTED_ID, TAG_MESSAGE_STATE = 0x001E, 0x0427
TAG_SAR_REF, TAG_SAR_TOTAL, TAG_SAR_SEQ = 0x020C, 0x020E, 0x020F

# 3GPP TS 23.038 default alphabet and extension table, written out again (test oracle).
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXT = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}


def decode_gsm_unpacked(data: bytes) -> str:
    out, escape = [], False
    for octet in data:
        if escape:
            out.append(GSM_EXT[octet])
            escape = False
        elif octet == 0x1B:
            escape = True
        else:
            out.append(GSM_BASIC[octet])
    assert not escape, "escape sequence cut at the end of a part"
    return "".join(out)


def pdu(command_id: int, status: int, seq: int, body: bytes = b"") -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, seq) + body


def cstr(value: str | bytes) -> bytes:
    return (value.encode() if isinstance(value, str) else value) + b"\x00"


class Reader:
    def __init__(self, body: bytes) -> None:
        self.body, self.pos = body, 0

    def cstr(self) -> bytes:
        end = self.body.index(b"\x00", self.pos)
        value, self.pos = self.body[self.pos : end], end + 1
        return value

    def u8(self) -> int:
        self.pos += 1
        return self.body[self.pos - 1]

    def octets(self, n: int) -> bytes:
        self.pos += n
        return self.body[self.pos - n : self.pos]

    def tlvs(self) -> dict[int, bytes]:
        out = {}
        while self.pos + 4 <= len(self.body):
            tag, length = struct.unpack_from(">HH", self.body, self.pos)
            out[tag] = self.body[self.pos + 4 : self.pos + 4 + length]
            self.pos += 4 + length
        return out


@dataclass
class Submit:
    """One submit_sm as received (§4.4.1)."""

    seq: int
    dest: str
    dest_ton: int
    esm_class: int
    data_coding: int
    registered_delivery: int
    short_message: bytes
    tlvs: dict[int, bytes]
    message_id: str = ""

    def concat(self) -> tuple[int, int, int, bytes] | None:
        """(ref, total, seq, payload) from a UDH (IE 00/08) or SAR TLVs, else None."""
        if self.esm_class & 0x40:
            udhl = self.short_message[0]
            udh, payload = self.short_message[1 : 1 + udhl], self.short_message[1 + udhl :]
            pos = 0
            while pos < len(udh):
                iei, iel = udh[pos], udh[pos + 1]
                data = udh[pos + 2 : pos + 2 + iel]
                if iei == 0x00:
                    return data[0], data[1], data[2], payload
                if iei == 0x08:
                    return (data[0] << 8) | data[1], data[2], data[3], payload
                pos += 2 + iel
            raise AssertionError("UDHI set but no concatenation IE")
        if TAG_SAR_REF in self.tlvs:
            return (
                int.from_bytes(self.tlvs[TAG_SAR_REF], "big"),
                self.tlvs[TAG_SAR_TOTAL][0],
                self.tlvs[TAG_SAR_SEQ][0],
                self.short_message,
            )
        return None

    def text(self, payload: bytes) -> str:
        if self.data_coding == 0x08:
            return payload.decode("utf-16-be")  # raises if a surrogate pair was cut
        assert self.data_coding == 0x00, f"unexpected data_coding {self.data_coding}"
        return decode_gsm_unpacked(payload)


@dataclass
class Faults:
    """What the SMSC does wrong next; tests change these at any time."""

    bind_failures: int = 0  # answer the next N binds with ESME_RBINDFAIL
    throttle: int = 0  # answer the next N submit_sm with ESME_RTHROTTLED
    queue_full: int = 0  # ... with ESME_RMSGQFUL
    silent_submits: set[int] = field(default_factory=set)  # 1-based submit numbers never answered
    drop_on_submit: set[int] = field(default_factory=set)  # close the socket on these submits
    receipt_before_resp: bool = False
    duplicate_receipts: bool = False
    receipts: bool = True
    receipt_stat: str = "DELIVRD"
    receipt_tlv: bool = True  # False: only the Appendix B text, with the id in decimal
    ignore_enquire: bool = False


class TestSMSC:
    """Listen on 127.0.0.1:<free port>; one thread per session."""

    def __init__(self, system_id: str = "sg", password: str = "secret1") -> None:
        self.system_id, self.password = system_id, password
        self.faults = Faults()
        self.submits: list[Submit] = []
        self.binds: list[tuple[int, bytes]] = []
        self.enquires = 0
        self.responses: list[tuple[int, int]] = []
        self.deliver_seqs: list[int] = []
        self.lock = threading.Lock()
        self._ids = itertools.count(0x1A2B0)
        self._submit_no = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._sessions: list[socket.socket] = []
        self._kinds: dict[socket.socket, int] = {}  # bind command per session
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, **query: object) -> str:
        q = "&".join(f"{k}={v}" for k, v in {"backoff": 0.01, "tick": 0.02, **query}.items())
        return f"smpp://{self.system_id}:{self.password}@127.0.0.1:{self.port}?{q}"

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        for sock in self._sessions:
            self._close(sock)

    @staticmethod
    def _close(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def request(self, command_id: int, seq: int = 0x7FFF0001) -> None:
        """Send a header-only request (enquire_link, unbind) to every bound session."""
        for sock in list(self._sessions):
            if self._kinds.get(sock):
                sock.sendall(pdu(command_id, ROK, seq))

    def send_raw(self, data: bytes) -> None:
        """Write *data* as is to every bound session (garbage, torn PDUs)."""
        for sock in list(self._sessions):
            if self._kinds.get(sock):
                sock.sendall(data)

    def drop_all(self) -> None:
        """Close every session (a network failure)."""
        for sock in list(self._sessions):
            self._close(sock)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            self._sessions.append(sock)
            threading.Thread(target=self._session, args=(sock,), daemon=True).start()

    def _read(self, sock: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def _session(self, sock: socket.socket) -> None:
        out_seq = itertools.count(1)
        self._kinds[sock] = 0
        try:
            while True:
                length, command_id, _status, seq = struct.unpack(">IIII", self._read(sock, 16))
                body = self._read(sock, length - 16)
                self._dispatch(sock, command_id, seq, body, out_seq)
        except (ConnectionError, OSError):
            pass
        finally:
            if sock in self._sessions:
                self._sessions.remove(sock)
            self._kinds.pop(sock, None)
            sock.close()

    def _dispatch(
        self,
        sock: socket.socket,
        command_id: int,
        seq: int,
        body: bytes,
        out_seq: itertools.count[int],
    ) -> None:
        if command_id in (BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER):
            reader = Reader(body)
            system_id, password = reader.cstr(), reader.cstr()
            with self.lock:
                self.binds.append((command_id, system_id))
                fail = self.faults.bind_failures > 0
                self.faults.bind_failures -= int(fail)
            ok = (
                not fail
                and system_id.decode() == self.system_id
                and password.decode() == self.password
            )
            if ok:
                self._kinds[sock] = command_id
            sock.sendall(pdu(command_id | RESP, ROK if ok else RBINDFAIL, seq, cstr("TESTSMSC")))
        elif command_id == SUBMIT_SM:
            self._submit(sock, seq, body, out_seq)
        elif command_id == ENQUIRE_LINK:
            self.enquires += 1
            if not self.faults.ignore_enquire:
                sock.sendall(pdu(ENQUIRE_LINK | RESP, ROK, seq))
        elif command_id == UNBIND:
            sock.sendall(pdu(UNBIND | RESP, ROK, seq))
            raise ConnectionError
        elif command_id & RESP:
            self.responses.append((command_id, seq))  # deliver_sm_resp, enquire_link_resp...
        else:
            sock.sendall(pdu(GENERIC_NACK, RINVCMDID, seq))

    def _submit(
        self, sock: socket.socket, seq: int, body: bytes, out_seq: itertools.count[int]
    ) -> None:
        r = Reader(body)
        r.cstr()  # service_type
        r.u8(), r.u8(), r.cstr()  # source ton, npi, addr
        dest_ton, _npi, dest = r.u8(), r.u8(), r.cstr().decode()
        esm_class, _pid, _prio = r.u8(), r.u8(), r.u8()
        r.cstr(), r.cstr()  # schedule_delivery_time, validity_period
        registered, _replace, coding, _default_id = r.u8(), r.u8(), r.u8(), r.u8()
        short_message = r.octets(r.u8())
        submit = Submit(seq, dest, dest_ton, esm_class, coding, registered, short_message, r.tlvs())
        with self.lock:
            self._submit_no += 1
            number, f = self._submit_no, self.faults
            if number in f.drop_on_submit:
                raise ConnectionError
            if number in f.silent_submits:
                return
            for attr, status in (("throttle", RTHROTTLED), ("queue_full", RMSGQFUL)):
                if getattr(f, attr) > 0:
                    setattr(f, attr, getattr(f, attr) - 1)
                    sock.sendall(pdu(SUBMIT_SM | RESP, status, seq, cstr("")))
                    return
            submit.message_id = format(next(self._ids), "X")
            self.submits.append(submit)
        resp = pdu(SUBMIT_SM | RESP, ROK, seq, cstr(submit.message_id))
        # §2.2: receipts (deliver_sm) go to a session bound as receiver or transceiver
        rx = (
            sock
            if self._kinds.get(sock) == BIND_TRANSCEIVER
            else next((s for s, kind in self._kinds.items() if kind == BIND_RECEIVER), None)
        )
        receipts = []
        if f.receipts and registered & 1 and rx is not None:
            receipts = [self._receipt(submit, next(out_seq))]
            if f.duplicate_receipts:
                receipts.append(self._receipt(submit, next(out_seq)))
        if rx is sock:
            frames = [*receipts, resp] if f.receipt_before_resp else [resp, *receipts]
            sock.sendall(b"".join(frames))
        else:
            if f.receipt_before_resp and rx is not None:
                rx.sendall(b"".join(receipts))
            sock.sendall(resp)
            if not f.receipt_before_resp and rx is not None:
                rx.sendall(b"".join(receipts))

    def _receipt(self, submit: Submit, seq: int) -> bytes:
        f = self.faults
        shown_id = submit.message_id if f.receipt_tlv else str(int(submit.message_id, 16))
        text = (
            f"id:{shown_id} sub:001 dlvrd:{'001' if f.receipt_stat == 'DELIVRD' else '000'} "
            f"submit date:2611261200 done date:2611261201 stat:{f.receipt_stat} err:000 "
            "text:"
        )
        body = (
            cstr("")
            + bytes((1, 1))
            + cstr(submit.dest)
            + bytes((5, 0))
            + cstr("SettleGuard")
            + bytes((0x04, 0, 0))
            + cstr("")
            + cstr("")
            + bytes((0, 0, 0, 0))
            + bytes((len(text),))
            + text.encode()
        )
        if f.receipt_tlv:
            states = {"DELIVRD": 2, "EXPIRED": 3, "UNDELIV": 5, "REJECTD": 8}
            rid = cstr(submit.message_id)
            body += struct.pack(">HH", TAG_RECEIPTED_ID, len(rid)) + rid
            body += struct.pack(">HHB", TAG_MESSAGE_STATE, 1, states[f.receipt_stat])
        self.deliver_seqs.append(seq)
        return pdu(DELIVER_SM, ROK, seq, body)

    # --- helpers for assertions ---------------------------------------------------------

    def messages(self) -> list[tuple[str, str, int]]:
        """Reassembled (dest, text, part_count), in completion order."""
        done, partial = [], {}
        with self.lock:
            submits = list(self.submits)
        for s in submits:
            concat = s.concat()
            if concat is None:
                done.append((s.dest, s.text(s.short_message), 1))
                continue
            ref, total, seq, payload = concat
            parts = partial.setdefault((s.dest, ref), {})
            assert seq not in parts, f"part {seq} of ref {ref} received twice"
            parts[seq] = s.text(payload)
            if len(parts) == total:
                done.append((s.dest, "".join(parts[i] for i in range(1, total + 1)), total))
                del partial[(s.dest, ref)]
        return done


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll *condition* until true or fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)
