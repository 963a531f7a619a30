"""Both MIS-POS roles joined without I/O, and the register's overall timeout."""

from __future__ import annotations

import pytest
from settleguard.protocol.errors import LocalProtocolError, RemoteProtocolError
from settleguard.protocol.mispos.connection import (
    EcrConnection,
    EcrState,
    ReplyReceived,
    RequestReceived,
    TerminalConnection,
    TerminalState,
    TimedOut,
)
from settleguard.protocol.mispos.messages import (
    TYPE_REPRINT_SETTLEMENT,
    TYPE_SETTLEMENT,
    Reply,
    Request,
)
from settleguard.protocol.mispos.settlement import error_reply


class ConnectionPair:
    """The register and the terminal, wired back to back."""

    def __init__(self) -> None:
        self.ecr = EcrConnection(timeout=60.0)
        self.terminal = TerminalConnection()

    def request(self, request: Request) -> Request:
        wire = self.ecr.send(request)
        for i in range(len(wire)):  # one byte at a time
            self.terminal.receive_data(wire[i : i + 1])
        event = self.terminal.next_event()
        assert isinstance(event, RequestReceived)
        return event.request

    def reply(self, reply: Reply) -> ReplyReceived:
        wire = self.terminal.send(reply)
        for i in range(len(wire)):
            assert self.ecr.next_event() is None
            self.ecr.receive_data(wire[i : i + 1])
        event = self.ecr.next_event()
        assert isinstance(event, ReplyReceived)
        return event


def test_one_request_one_reply() -> None:
    pair = ConnectionPair()
    received = pair.request(Request(TYPE_SETTLEMENT))
    assert received.trans_type == TYPE_SETTLEMENT and received.app == "APP01"
    assert pair.terminal.state is TerminalState.MUST_REPLY
    event = pair.reply(error_reply("X3"))
    assert event.reply.result_code == "X3"
    assert pair.ecr.state is EcrState.IDLE and pair.terminal.state is TerminalState.IDLE
    pair.request(Request(TYPE_REPRINT_SETTLEMENT))


def test_second_request_while_waiting_is_our_mistake() -> None:
    ecr = EcrConnection()
    ecr.send(Request(TYPE_SETTLEMENT))
    with pytest.raises(LocalProtocolError):
        ecr.send(Request(TYPE_SETTLEMENT))


def test_terminal_cannot_reply_unasked() -> None:
    with pytest.raises(LocalProtocolError):
        TerminalConnection().send(error_reply("00"))


def test_timeout_is_overall_and_only_after_sixty_seconds() -> None:
    ecr = EcrConnection()
    ecr.send(Request(TYPE_SETTLEMENT))
    ecr.tick(1000.0)  # arms
    ecr.receive_data(b"\x02\x01")  # a piece, then silence
    ecr.tick(1059.9)
    assert ecr.next_event() is None and ecr.state is EcrState.AWAIT_REPLY
    ecr.tick(1060.0)
    event = ecr.next_event()
    assert event == TimedOut(60.0, 2)
    assert ecr.state is EcrState.IDLE


def test_corrupted_reply_ends_the_exchange() -> None:
    pair = ConnectionPair()
    pair.request(Request(TYPE_SETTLEMENT))
    wire = bytearray(pair.terminal.send(error_reply("00")))
    wire[-1] ^= 0xFF
    pair.ecr.receive_data(bytes(wire))
    with pytest.raises(RemoteProtocolError, match="LRC"):
        pair.ecr.next_event()
    assert pair.ecr.state is EcrState.IDLE
    pair.ecr.send(Request(TYPE_REPRINT_SETTLEMENT))  # the caller may now ask for 19


def test_bytes_outside_an_exchange_are_dropped() -> None:
    ecr = EcrConnection()
    ecr.receive_data(b"\x02\x00\x05garbage")
    ecr.send(Request(TYPE_SETTLEMENT))
    assert ecr.next_event() is None


def test_request_without_type_is_a_remote_error() -> None:
    from settleguard.protocol.mispos.framing import encode_frame
    from settleguard.protocol.mispos.tlv import encode_tlvs

    terminal = TerminalConnection()
    terminal.receive_data(encode_frame(encode_tlvs([(0x9F00, b"APP01")])))
    with pytest.raises(RemoteProtocolError, match="9F01"):
        terminal.next_event()
    assert terminal.state is TerminalState.IDLE
