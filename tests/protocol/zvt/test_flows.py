"""ECR and terminal state machines joined without I/O, plus the message codecs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st
from settleguard.protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from settleguard.protocol.zvt.apdu import Apdu, decode_apdu
from settleguard.protocol.zvt.connection import (
    Aborted,
    CommandAccepted,
    CommandReceived,
    CommandRefused,
    EcrConnection,
    EcrResponded,
    EcrState,
    PtState,
    TerminalConnection,
    TimedOut,
    Timers,
    UnexpectedCommand,
)
from settleguard.protocol.zvt.messages import (
    Abort,
    Completion,
    EndOfDay,
    IndividualTotals,
    IntermediateStatus,
    PrintLine,
    PrintTextBlock,
    Registration,
    Response,
    StatusEnquiry,
    StatusInformation,
    TurnoverTotals,
    totals_from_status,
)
from settleguard.protocol.zvt.transport import ApduReceived, SerialLink

from tests.protocol.zvt.vectors import TOTALS_STATUS_APDU, h


@dataclass
class ConnectionPair:
    """Joins an ECR and a terminal; optionally through two serial links fed byte by byte."""

    ecr: EcrConnection = field(default_factory=EcrConnection)
    pt: TerminalConnection = field(default_factory=TerminalConnection)
    serial: bool = False
    ecr_link: SerialLink = field(default_factory=SerialLink)
    pt_link: SerialLink = field(default_factory=SerialLink)

    def pump(self) -> None:
        for _ in range(50):
            moved = self._move(self.ecr, self.ecr_link, self.pt, self.pt_link)
            moved |= self._move(self.pt, self.pt_link, self.ecr, self.ecr_link)
            if not moved:
                return

    def _move(self, src, src_link, dst, dst_link) -> bool:  # type: ignore[no-untyped-def]
        apdus = src.apdus_to_send()
        if not self.serial:
            for apdu in apdus:
                dst.receive_apdu(apdu)
            return bool(apdus)
        for apdu in apdus:
            src_link.send_apdu(apdu)
        wire = src_link.data_to_send()
        for i in range(len(wire)):
            dst_link.receive_data(wire[i : i + 1])
        delivered = False
        while (event := dst_link.next_event()) is not None:
            if isinstance(event, ApduReceived):
                dst.receive_apdu(event.apdu)
                delivered = True
        return bool(wire) or delivered

    def ecr_events(self) -> list[object]:
        return list(iter(self.ecr.next_event, None))

    def pt_events(self) -> list[object]:
        return list(iter(self.pt.next_event, None))


STATUS = StatusInformation(
    result_code=0,
    amount=78228,
    totals=IndividualTotals(
        101, 116, ((12, 45678), (0, 0), (5, 20550), (0, 0), (3, 12000), (0, 0), (0, 0))
    ),
    trace=42,
    time="231509",
    date="0331",
    terminal_id="52500001",
    currency=978,
    receipt_no=17,
    turnover_no=123,
)


def test_status_information_vector_decodes_and_reencodes() -> None:
    info = StatusInformation.from_apdu(decode_apdu(TOTALS_STATUS_APDU))
    assert info == STATUS
    assert info.to_apdu().encode() == TOTALS_STATUS_APDU
    totals = totals_from_status(info, "end_of_day", year=2025, print_lines=("x",))
    assert totals.terminal_id == "52500001" and totals.currency == "978"
    assert [(b.name, b.count, b.amount) for b in totals.buckets if b.count] == [
        ("girocard", 12, 45678),
        ("eurocard", 5, 20550),
        ("visa", 3, 12000),
    ]
    assert totals.total_amount == 78228 and (totals.receipt_start, totals.receipt_end) == (101, 116)
    assert totals.terminal_time == "2025-03-31T23:15:09"


def test_bitmap_60_must_have_the_spec_layout() -> None:
    with pytest.raises(RemoteProtocolError):
        IndividualTotals.decode(bytes(52))


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (EndOfDay("123456"), "06 50 03 12 34 56"),
        (TurnoverTotals("000000"), "06 10 03 00 00 00"),
        (Registration("000000", 0x9E, 978), "06 00 06 00 00 00 9E 09 78"),
        (StatusEnquiry(), "05 01 00"),
        (Abort(0x6C), "06 1E 01 6C"),
        (Completion(), "06 0F 00"),
        (
            Completion(status_byte=0, terminal_id="65000028", currency=978),
            "06 0F 0A 19 00 29 65 00 00 28 49 09 78",
        ),
        (
            IntermediateStatus(0x17, 3, ("00 Approved",)),
            "04 FF 13 17 03 06 0F 24 0D 07 0B 30 30 20 41 70 70 72 6F 76 65 64",
        ),
        (PrintLine(0x00, "Hi"), "06 D1 03 00 48 69"),
        (Response(), "80 00 00"),
        (Response(0x77), "84 77 00"),
    ],
)
def test_message_vectors(message: object, wire: str) -> None:
    apdu = message.to_apdu()  # type: ignore[attr-defined]
    assert apdu.encode() == h(wire)
    assert type(message).from_apdu(apdu) == message  # type: ignore[attr-defined]


def test_status_enquiry_completion_is_positional() -> None:
    apdu = Apdu(0x06, 0x0F, h("F0 F0 F4 31 2E 32 33 00"))
    assert Completion.from_apdu(apdu, after_status_enquiry=True) == Completion(
        software_version="1.23", terminal_status=0
    )


def test_status_code_f0_is_not_taken_for_a_version_length() -> None:
    apdu = Apdu(0x06, 0x0F, h("F0"))  # reconciliation required, no software version
    assert Completion.from_apdu(apdu, after_status_enquiry=True) == Completion(terminal_status=0xF0)


def test_print_text_block_round_trip() -> None:
    block = PrintTextBlock(("KASSENSCHNITT", "", "SUMME 782,28"), last_block=True)
    assert PrintTextBlock.from_apdu(block.to_apdu()) == block


def _serve_totals(pair: ConnectionPair, status: StatusInformation = STATUS) -> None:
    (received,) = pair.pt_events()
    assert isinstance(received, CommandReceived)
    pair.pt.send(Response())
    for message in (IntermediateStatus(0x04), status, PrintLine(0x81, "END")):
        pair.pt.send(message)
        pair.pump()
        assert pair.pt_events() == [EcrResponded(Response())]
    pair.pt.send(Completion())
    pair.pump()
    assert pair.pt_events() == [EcrResponded(Response())]


@pytest.mark.parametrize("serial", [False, True])
def test_end_of_day_flow(serial: bool) -> None:
    pair = ConnectionPair(serial=serial)
    pair.ecr.send(EndOfDay("123456"))
    pair.pump()
    assert pair.pt.command == EndOfDay("123456")
    _serve_totals(pair)
    assert pair.ecr_events() == [
        CommandAccepted(),
        IntermediateStatus(0x04),
        STATUS,
        PrintLine(0x81, "END"),
        Completion(),
    ]
    assert pair.ecr.state is EcrState.IDLE and pair.pt.state is PtState.IDLE


def test_refused_command() -> None:
    pair = ConnectionPair()
    pair.ecr.send(TurnoverTotals("999999"))
    pair.pump()
    pair.pt_events()
    pair.pt.send(Response(0x6B))
    pair.pump()
    (event,) = pair.ecr_events()
    assert event == CommandRefused(0x6B) and "not registered" in event.meaning


@pytest.mark.parametrize("code", [0x6C, 0x77, 0xF0])
def test_abort_flow(code: int) -> None:
    pair = ConnectionPair()
    pair.ecr.send(EndOfDay("123456"))
    pair.pump()
    pair.pt_events()
    pair.pt.send(Response())
    pair.pt.send(Abort(code))
    pair.pump()
    events = pair.ecr_events()
    assert events == [CommandAccepted(), Aborted(code)]
    assert pair.pt_events() == [EcrResponded(Response())]
    assert pair.pt.state is PtState.IDLE


def test_t3_fires_without_a_response() -> None:
    ecr = EcrConnection(Timers(t3=5.0, t4=180.0))
    ecr.send(StatusEnquiry())
    ecr.tick(0.0)
    ecr.tick(4.9)
    assert ecr.next_event() is None
    ecr.tick(5.0)
    assert ecr.next_event() == TimedOut("T3", 5.0)
    assert ecr.state is EcrState.IDLE


def test_t4_not_t3_after_acceptance_and_reset_by_intermediate_status() -> None:
    ecr = EcrConnection(Timers(t3=5.0, t4=180.0))
    ecr.send(EndOfDay("123456"))
    ecr.tick(0.0)
    ecr.receive_apdu(h("80 00 00"))
    ecr.tick(1.0)
    ecr.tick(170.0)  # long past T3: still waiting
    ecr.receive_apdu(IntermediateStatus(0x04).to_apdu().encode())
    ecr.tick(171.0)
    ecr.tick(340.0)
    assert [type(e) for e in iter(ecr.next_event, None)] == [CommandAccepted, IntermediateStatus]
    ecr.tick(351.1)
    assert ecr.next_event() == TimedOut("T4", 180.0)


def test_intermediate_status_timeout_overrides_t4() -> None:
    ecr = EcrConnection(Timers(t3=5.0, t4=180.0))
    ecr.send(EndOfDay())
    ecr.receive_apdu(h("80 00 00"))
    ecr.receive_apdu(IntermediateStatus(0x04, timeout_minutes=10).to_apdu().encode())
    ecr.tick(0.0)
    ecr.tick(599.0)
    assert [type(e) for e in iter(ecr.next_event, None)] == [CommandAccepted, IntermediateStatus]
    ecr.tick(600.0)
    assert ecr.next_event() == TimedOut("T4", 600.0)


def test_ecr_answers_every_terminal_command_with_80_00() -> None:
    ecr = EcrConnection()
    ecr.send(TurnoverTotals())
    assert ecr.apdus_to_send() == [h("06 10 03 00 00 00")]
    for apdu in ("80 00 00", "04 FF 01 04", "06 D1 03 00 48 69", "06 0F 00"):
        ecr.receive_apdu(h(apdu))
    assert ecr.apdus_to_send() == [h("80 00 00")] * 3


def test_unknown_terminal_command_is_answered_84_83() -> None:
    ecr = EcrConnection()
    ecr.send(TurnoverTotals())
    ecr.receive_apdu(h("80 00 00"))
    ecr.receive_apdu(h("06 D8 00"))
    ecr.apdus_to_send()
    assert isinstance(list(iter(ecr.next_event, None))[-1], UnexpectedCommand)


def test_local_misuse_raises_local_error() -> None:
    ecr = EcrConnection()
    ecr.send(TurnoverTotals())
    with pytest.raises(LocalProtocolError):
        ecr.send(EndOfDay())
    pt = TerminalConnection()
    with pytest.raises(LocalProtocolError):
        pt.send(Completion())


@given(st.binary(max_size=120))
def test_ecr_garbage_only_raises_our_errors(data: bytes) -> None:
    ecr = EcrConnection()
    ecr.send(StatusEnquiry())
    for raw in (
        data,
        b"\x06\x0f" + bytes([len(data) % 255]) + data[:254],
        b"\x04\x0f" + bytes([min(len(data), 254)]) + data[:254],
    ):
        try:
            ecr.receive_apdu(raw)
        except ProtocolError:
            pass


@given(st.binary(max_size=60))
def test_terminal_garbage_only_raises_our_errors(data: bytes) -> None:
    pt = TerminalConnection()
    try:
        pt.receive_apdu(b"\x06\x00" + bytes([len(data)]) + data)
    except ProtocolError:
        pass
