"""The POSLink client against the simulated terminal over a real pseudo-terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from settleguard.agent.errors import LinkFailure, NoAnswer, TerminalAborted
from settleguard.agent.ports import SerialSettings, open_port
from settleguard.agent.poslink_client import PosLinkClient, PosLinkTimers
from settleguard.simulator.poslink_terminal import scenario_journal, scenario_totals
from settleguard.simulator.runner import start_on_pty
from settleguard.simulator.scenario import Misbehaviour, Scenario, ScenarioBucket

FAST = PosLinkTimers(
    ack_timeout=0.3, inter_byte_timeout=0.15, response_timeout=1.5, batch_close_timeout=1.5
)


@contextmanager
def client_for(scenario: Scenario, timers: PosLinkTimers = FAST) -> Iterator[PosLinkClient]:
    messages: list[str] = []
    with start_on_pty("poslink", scenario) as sim:
        port = open_port(sim.path, SerialSettings(9600))
        try:
            client = PosLinkClient(port, progress=messages.append, timers=timers)
            client.messages = messages  # type: ignore[attr-defined]
            yield client
        finally:
            port.close()


def expected_buckets(scenario: Scenario) -> list[tuple[str, int, int, int, int]]:
    return [
        (t.edc, t.count, t.amount, t.refund_count, t.refund_amount)
        for t in scenario_totals(scenario)
    ]


def as_tuples(totals) -> list[tuple[str, int, int, int, int]]:
    return [(b.name, b.count, b.amount, b.refund_count, b.refund_amount) for b in totals.buckets]


def test_read_totals_matches_the_scenario() -> None:
    scenario = Scenario(
        buckets=[ScenarioBucket("visa", 3, 12000, 1, 1500), ScenarioBucket("debit", 2, 990)]
    )
    with client_for(scenario) as client:
        totals = client.read_totals(password="123456")
    assert (totals.protocol, totals.kind) == ("poslink", "turnover_totals")
    assert as_tuples(totals) == [("credit", 3, 12000, 1, 1500), ("debit", 2, 990, 0, 0)]
    assert scenario.buckets  # R00 does not close the batch


def test_close_batch_closes_and_reports() -> None:
    scenario = Scenario(batch_no=41)
    before = [(e, c, a) for e, c, a, _, _ in expected_buckets(scenario)]
    with client_for(scenario) as client:
        totals = client.close_batch(password=None)
        after = client.read_totals()
    assert totals.kind == "end_of_day" and totals.batch_no == 41
    assert totals.terminal_id == scenario.terminal_id
    assert [(b.name, b.count, b.amount) for b in totals.buckets] == before
    assert scenario.batch_no == 42 and after.buckets == ()


def test_journal_pages_through_every_record() -> None:
    scenario = Scenario(
        buckets=[ScenarioBucket("visa", 3, 1000, 1, 200), ScenarioBucket("cash", 2, 500)]
    )
    with client_for(scenario) as client:
        journal = client.read_journal()
    assert journal == tuple(scenario_journal(scenario))
    assert [e.record_number for e in journal] == list(range(6))
    assert sum(e.amount for e in journal if e.transaction_type == "sale") == 1500
    assert all(len(e.masked_pan) <= 4 for e in journal)


def test_probe_identifies_a_poslink_terminal() -> None:
    with client_for(Scenario()) as client:
        probe = client.probe()
    assert (probe.protocol, probe.response_code) == ("poslink", "000000")


def test_naks_are_survived() -> None:
    scenario = Scenario(misbehaviour=Misbehaviour(nak_frames=2))
    with client_for(scenario) as client:
        totals = client.read_totals()
    assert as_tuples(totals) == expected_buckets(scenario)
    assert sum("repeating R00" in m for m in client.messages) == 2  # type: ignore[attr-defined]


def test_three_naks_is_a_link_failure() -> None:
    with client_for(Scenario(misbehaviour=Misbehaviour(nak_frames=3))) as client:
        with pytest.raises(LinkFailure, match="NAK"):
            client.read_totals()


def test_dropped_ack_is_repeated_after_the_ack_timeout() -> None:
    scenario = Scenario(misbehaviour=Misbehaviour(drop_acks=1))
    with client_for(scenario) as client:
        totals = client.read_totals()
    assert as_tuples(totals) == expected_buckets(scenario)
    assert any("no ACK" in m for m in client.messages)  # type: ignore[attr-defined]


def test_silent_terminal_is_no_answer_with_cable_hint() -> None:
    with client_for(Scenario(misbehaviour=Misbehaviour(drop_acks=5))) as client:
        with pytest.raises(NoAnswer, match="baud rate"):
            client.read_totals()


def test_stall_mid_frame_is_recovered() -> None:
    scenario = Scenario(misbehaviour=Misbehaviour(stall_mid_frame_s=0.4))
    with client_for(scenario) as client:
        totals = client.read_totals()
    assert as_tuples(totals) == expected_buckets(scenario)


def test_short_stall_is_just_slow() -> None:
    scenario = Scenario(misbehaviour=Misbehaviour(stall_mid_frame_s=0.05))
    with client_for(scenario) as client:
        assert as_tuples(client.read_totals()) == expected_buckets(scenario)


def test_silence_during_batch_close_within_the_timer_is_waited_out() -> None:
    scenario = Scenario(batch_no=7, misbehaviour=Misbehaviour(eod_silence_s=2.5))
    timers = PosLinkTimers(
        ack_timeout=0.3, inter_byte_timeout=0.15, response_timeout=0.5, batch_close_timeout=5.0
    )
    with client_for(scenario, timers) as client:
        totals = client.close_batch()
    assert totals.batch_no == 7
    assert any("waiting for the terminal (B00" in m for m in client.messages)  # type: ignore[attr-defined]


def test_silence_during_batch_close_beyond_the_timer_is_no_answer() -> None:
    scenario = Scenario(misbehaviour=Misbehaviour(eod_silence_s=3.0))
    with client_for(scenario) as client:
        with pytest.raises(NoAnswer, match="acknowledged B00"):
            client.close_batch()


@pytest.mark.parametrize(("code", "expected"), [(0x77, "100006"), (100002, "100002")])
def test_error_code_becomes_terminal_aborted(code: int, expected: str) -> None:
    with client_for(Scenario(misbehaviour=Misbehaviour(abort_code=code))) as client:
        with pytest.raises(TerminalAborted) as info:
            client.close_batch()
    assert info.value.result_code == expected
    assert expected in info.value.message


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_line_noise_and_split_writes(seed: int) -> None:
    scenario = Scenario(misbehaviour=Misbehaviour(line_noise=1.0, split_writes=True, seed=seed))
    with client_for(scenario) as client:
        assert as_tuples(client.read_totals()) == expected_buckets(scenario)
        assert len(client.read_journal()) == len(scenario_journal(scenario))


def test_garbage_answer_is_a_terminal_protocol_error() -> None:
    import serial
    from settleguard.agent.errors import TerminalProtocolError

    # loop:// echoes our own R00 back: a well-framed answer that is not a valid response.
    port = serial.serial_for_url("loop://", timeout=0.05)
    try:
        with pytest.raises(TerminalProtocolError, match="invalid R00 answer"):
            PosLinkClient(port, timers=FAST).read_totals()
    finally:
        port.close()
