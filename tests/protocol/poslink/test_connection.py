"""Both roles joined without I/O; NAK/EOT, timers and duplicates driven by hand."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from settleguard.protocol.errors import LocalProtocolError, RemoteProtocolError
from settleguard.protocol.poslink import (
    NEED_DATA,
    Acknowledged,
    BatchCloseRequest,
    BatchCloseResponse,
    EcrConnection,
    EdcTotal,
    FrameRejected,
    LinkFailed,
    LocalTotalReportRequest,
    LocalTotalReportResponse,
    PeerGaveUp,
    PosLinkTimers,
    ResponseTimedOut,
    Retransmitted,
    State,
    TerminalConnection,
)
from settleguard.protocol.poslink.connection import TRANSITIONS
from settleguard.protocol.poslink.framing import ACK, EOT, NAK

from tests.protocol.poslink.vectors import FS, wire

TIMERS = PosLinkTimers(
    ack_timeout=1.0, inter_byte_timeout=0.5, response_timeout=5.0, batch_close_timeout=60.0
)
REPORT = LocalTotalReportResponse(totals=(EdcTotal("credit", 2, 300),))


def events(conn) -> list:
    found = []
    while (event := conn.next_event()) is not NEED_DATA:
        found.append(event)
    return found


class ConnectionPair:
    """Shuttles bytes between an ECR and a terminal connection, optionally byte by byte."""

    def __init__(self, split: list[int] | None = None) -> None:
        self.ecr = EcrConnection(TIMERS)
        self.terminal = TerminalConnection(TIMERS)
        self.split = split or []

    def deliver(self, data: bytes, to) -> None:
        cuts = sorted({c % (len(data) + 1) for c in self.split}) if data else []
        start = 0
        for cut in [*cuts, len(data)]:
            to.receive_data(data[start:cut])
            start = cut

    def exchange(self, request, response):
        self.deliver(self.ecr.send(request, now=0.0), self.terminal)
        got = events(self.terminal)
        self.deliver(self.terminal.data_to_send(), self.ecr)
        assert events(self.ecr) == [Acknowledged()]
        self.deliver(self.terminal.send(response), self.ecr)
        answer = events(self.ecr)
        self.deliver(self.ecr.data_to_send(), self.terminal)
        assert events(self.terminal) == [Acknowledged()]
        return got, answer


def test_pair_exchanges_a_report() -> None:
    pair = ConnectionPair()
    got, answer = pair.exchange(LocalTotalReportRequest(), REPORT)
    assert got == [LocalTotalReportRequest()] and answer == [REPORT]
    assert pair.ecr.state is State.IDLE and pair.terminal.state is State.IDLE


@settings(max_examples=40)
@given(st.lists(st.integers(0, 400), max_size=12))
def test_pair_works_for_any_split(split: list[int]) -> None:
    pair = ConnectionPair(split)
    for _ in range(2):  # two exchanges in a row, same link
        got, answer = pair.exchange(
            BatchCloseRequest(), BatchCloseResponse(totals=(EdcTotal("debit", 1, 5),))
        )
        assert got == [BatchCloseRequest()] and answer[0].totals[0].amount == 5


def test_nak_causes_repeat_and_third_nak_sends_eot() -> None:
    ecr = EcrConnection(TIMERS)
    frame = ecr.send(LocalTotalReportRequest(), now=0.0)
    for attempt in (2, 3):
        ecr.receive_data(bytes([NAK]))
        assert ecr.data_to_send() == frame
        assert events(ecr) == [Retransmitted(attempt, "NAK from the peer")]
    ecr.receive_data(bytes([NAK]))
    assert ecr.data_to_send() == bytes([EOT])
    [failed] = events(ecr)
    assert isinstance(failed, LinkFailed) and ecr.state is State.FAILED
    with pytest.raises(LocalProtocolError):
        ecr.send(LocalTotalReportRequest())
    ecr.reset()
    assert ecr.state is State.IDLE


def test_missing_ack_repeats_after_ack_timeout() -> None:
    ecr = EcrConnection(TIMERS)
    frame = ecr.send(LocalTotalReportRequest(), now=10.0)
    ecr.tick(10.9)
    assert ecr.data_to_send() == b""
    ecr.tick(11.0)
    assert ecr.data_to_send() == frame
    ecr.tick(12.0)
    ecr.tick(13.0)
    assert ecr.data_to_send() == frame + bytes([EOT])
    assert isinstance(events(ecr)[-1], LinkFailed)


def test_response_timeout_is_longer_for_batch_close() -> None:
    ecr = EcrConnection(TIMERS)
    ecr.send(BatchCloseRequest(), now=0.0)
    ecr.receive_data(bytes([ACK]), now=0.1)
    ecr.tick(59.0)
    assert events(ecr) == [Acknowledged()]
    ecr.tick(60.2)
    assert events(ecr) == [ResponseTimedOut(60.0)] and ecr.state is State.FAILED


def test_corrupt_response_is_naked_and_repeat_accepted() -> None:
    ecr = EcrConnection(TIMERS)
    ecr.send(LocalTotalReportRequest(), now=0.0)
    ecr.receive_data(bytes([ACK]))
    raw = wire(f"0{FS}R01{FS}1.35{FS}000000{FS}OK")
    ecr.receive_data(raw[:-1] + bytes([raw[-1] ^ 1]))
    assert ecr.data_to_send() == bytes([NAK])
    ecr.receive_data(raw)
    assert ecr.data_to_send() == bytes([ACK])
    found = events(ecr)
    assert isinstance(found[1], FrameRejected) and isinstance(found[2], LocalTotalReportResponse)


def test_stalled_frame_is_abandoned_and_naked() -> None:
    ecr = EcrConnection(TIMERS)
    ecr.send(LocalTotalReportRequest(), now=0.0)
    ecr.receive_data(bytes([ACK]), now=0.0)
    raw = wire(f"0{FS}R01{FS}1.35{FS}000000{FS}OK")
    ecr.receive_data(raw[:5], now=1.0)
    ecr.tick(1.6)
    assert ecr.data_to_send() == bytes([NAK])
    ecr.receive_data(raw[5:] + raw, now=2.0)  # tail is noise; the repeat is accepted
    assert isinstance(events(ecr)[-1], LocalTotalReportResponse)


def test_repeated_request_is_acked_but_processed_once() -> None:
    terminal = TerminalConnection(TIMERS)
    frame = EcrConnection(TIMERS).send(BatchCloseRequest())
    terminal.receive_data(frame)
    terminal.receive_data(frame)  # the ECR missed our ACK and repeated
    assert terminal.data_to_send() == bytes([ACK, ACK])
    assert events(terminal) == [BatchCloseRequest()]


def test_content_error_raises_remote_error_with_offset() -> None:
    ecr = EcrConnection(TIMERS)
    ecr.send(LocalTotalReportRequest(), now=0.0)
    ecr.receive_data(bytes([ACK]) + wire(f"0{FS}B01{FS}1.35{FS}000000{FS}OK"))
    assert ecr.next_event() == Acknowledged()
    with pytest.raises(RemoteProtocolError, match="expected R01"):
        ecr.next_event()
    assert ecr.state is State.FAILED


def test_eot_from_peer_while_waiting() -> None:
    ecr = EcrConnection(TIMERS)
    ecr.send(LocalTotalReportRequest(), now=0.0)
    ecr.receive_data(bytes([EOT]))
    assert events(ecr) == [PeerGaveUp()] and ecr.state is State.FAILED


def test_terminal_refuses_wrong_response() -> None:
    terminal = TerminalConnection(TIMERS)
    with pytest.raises(LocalProtocolError):
        terminal.send(REPORT)
    terminal.receive_data(EcrConnection(TIMERS).send(BatchCloseRequest()))
    events(terminal)
    with pytest.raises(LocalProtocolError):
        terminal.send(REPORT)


def test_transition_tables_only_name_real_states() -> None:
    for table in TRANSITIONS.values():
        for (state, _), target in table.items():
            assert isinstance(state, State) and isinstance(target, State)
