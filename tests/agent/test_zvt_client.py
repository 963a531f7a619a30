"""The agent's ZVT client against the simulated terminal over a real pseudo-terminal."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import serial
from settleguard.agent.errors import LinkFailure, NoAnswer, TerminalAborted
from settleguard.agent.zvt_client import ZvtClient, ZvtTimers
from settleguard.protocol.zvt.messages import (
    CONFIG_ECR_PRINT_LINES,
    CONFIG_ECR_PRINTS_ADMIN,
    CONFIG_INTERMEDIATE_STATUS,
)
from settleguard.simulator.runner import RunningSimulator, start_on_pty
from settleguard.simulator.scenario import Misbehaviour, Scenario, ScenarioBucket
from settleguard.simulator.transport import PtyTransport

FAST = ZvtTimers(t1=0.2, t2=0.3, t3=0.6, t4=5.0, progress_every=0.3)
PASSWORD = "123456"


def scenario(**faults: object) -> Scenario:
    return Scenario(
        terminal_id="52500001",
        password=PASSWORD,
        receipt_start=101,
        buckets=[
            ScenarioBucket("girocard", 12, 45678),
            ScenarioBucket("visa", 3, 12000, refund_count=1, refund_amount=1500),
            ScenarioBucket("eurocard", 5, 20550),
        ],
        misbehaviour=Misbehaviour(**faults),  # type: ignore[arg-type]
    )


def open_port(path: str) -> serial.SerialBase:
    return serial.serial_for_url(path, baudrate=9600, stopbits=2, timeout=0.02, exclusive=True)


@pytest.fixture
def sim_factory() -> Iterator[object]:
    running: list[RunningSimulator] = []
    ports: list[serial.SerialBase] = []

    def make(s: Scenario) -> tuple[RunningSimulator, serial.SerialBase]:
        sim = start_on_pty("zvt", s)
        running.append(sim)
        port = open_port(sim.path)
        ports.append(port)
        return sim, port

    yield make
    for port in ports:
        port.close()
    for sim in running:
        sim.stop()


def client(port: serial.SerialBase, messages: list[str] | None = None, **kw: object) -> ZvtClient:
    return ZvtClient(
        port, progress=(messages.append if messages is not None else None), timers=FAST, **kw
    )  # type: ignore[arg-type]


def expected_buckets() -> dict[str, tuple[int, int]]:
    return {"girocard": (12, 45678), "visa": (4, 10500), "eurocard": (5, 20550)}


def nonzero(totals) -> dict[str, tuple[int, int]]:  # type: ignore[no-untyped-def]
    return {b.name: (b.count, b.amount) for b in totals.buckets if b.count}


def test_read_totals_leaves_the_batch_open(sim_factory) -> None:  # type: ignore[no-untyped-def]
    sim, port = sim_factory(scenario())
    totals = client(port).read_totals(password=PASSWORD)
    assert totals.kind == "turnover_totals" and totals.protocol == "zvt"
    assert totals.terminal_id == "52500001"
    assert nonzero(totals) == expected_buckets()
    assert totals.total_amount == 45678 + 10500 + 20550
    assert (totals.receipt_start, totals.receipt_end) == (101, 121)
    assert sim.scenario.batch_no == 1 and sim.scenario.buckets  # still open
    again = client(port).read_totals(password=PASSWORD)
    assert nonzero(again) == expected_buckets()


def test_close_batch_closes_it_and_collects_print_lines(sim_factory) -> None:  # type: ignore[no-untyped-def]
    sim, port = sim_factory(scenario())
    config = CONFIG_INTERMEDIATE_STATUS | CONFIG_ECR_PRINTS_ADMIN | CONFIG_ECR_PRINT_LINES
    messages: list[str] = []
    totals = client(port, messages, config_byte=config).close_batch(password=PASSWORD)
    assert totals.kind == "end_of_day" and nonzero(totals) == expected_buckets()
    assert totals.print_lines[0] == "KASSENSCHNITT" and len(totals.print_lines) >= 4
    assert "terminal is talking to its host (End-of-Day)…" in messages
    assert sim.scenario.batch_no == 2 and sim.scenario.buckets == []
    after = client(port).read_totals(password=PASSWORD)
    assert after.total_amount == 0


def test_status_enquiry_returns_the_terminal_id(sim_factory) -> None:  # type: ignore[no-untyped-def]
    _, port = sim_factory(scenario())
    assert client(port).status_enquiry(password=PASSWORD) == "52500001"


def test_currency_is_reported_when_requested(sim_factory) -> None:  # type: ignore[no-untyped-def]
    _, port = sim_factory(scenario())
    assert client(port, currency=978).read_totals(password=PASSWORD).currency == "978"


def test_a_terminal_that_refuses_the_currency_is_read_in_euro(
    sim_factory, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A single-currency terminal refuses a registration in another currency (result code 6F);
    the client registers again without one, and the terminal's amounts are euro."""
    from settleguard.protocol.zvt.messages import Response
    from settleguard.simulator.zvt_terminal import ZvtTerminal

    register = ZvtTerminal._registration

    def euro_only(self, command):  # type: ignore[no-untyped-def]
        if command.currency not in (None, 978):
            return Response(0x6F), [], 0.0
        return register(self, command)

    monkeypatch.setattr(ZvtTerminal, "_registration", euro_only)
    _, port = sim_factory(scenario())
    totals = client(port, currency=156).read_totals(password=PASSWORD)
    assert totals.currency == "978" and totals.total_amount > 0


@pytest.mark.parametrize(
    "faults",
    [
        {"nak_frames": 1},
        {"nak_frames": 2},
        {"drop_acks": 1},
        {"drop_acks": 2},
        {"stall_mid_frame_s": 0.5},
        {"line_noise": 1.0, "seed": 3},
        {"split_writes": True, "seed": 7},
        {"split_writes": True, "line_noise": 0.5, "seed": 11},
    ],
    ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()),
)
def test_read_survives_line_faults(sim_factory, faults: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    _, port = sim_factory(scenario(**faults))
    messages: list[str] = []
    totals = client(port, messages).read_totals(password=PASSWORD)
    assert nonzero(totals) == expected_buckets()
    if faults.get("nak_frames") or faults.get("drop_acks"):
        assert any(m.startswith("link: repeating a frame") for m in messages)


def test_nak_storm_is_a_link_failure(sim_factory) -> None:  # type: ignore[no-untyped-def]
    _, port = sim_factory(scenario(nak_frames=100))
    with pytest.raises(LinkFailure, match="not delivered after 3 attempts"):
        client(port).read_totals(password=PASSWORD)


def test_end_of_day_silence_longer_than_t3_waits_on_t4(sim_factory) -> None:  # type: ignore[no-untyped-def]
    sim, port = sim_factory(scenario(eod_silence_s=1.5))  # 2.5 x T3
    messages: list[str] = []
    started = time.monotonic()
    totals = client(port, messages).close_batch(password=PASSWORD)
    assert time.monotonic() - started >= 1.5
    assert nonzero(totals) == expected_buckets()
    assert any(m.startswith("still waiting for the terminal (End-of-Day") for m in messages)
    assert sim.scenario.batch_no == 2


def test_silence_beyond_t4_is_reported(sim_factory) -> None:  # type: ignore[no-untyped-def]
    _, port = sim_factory(scenario(eod_silence_s=3.0))
    short = ZvtTimers(t1=0.2, t2=0.3, t3=0.6, t4=1.0, progress_every=0.3)
    with pytest.raises(NoAnswer, match="went silent for 1 s during End-of-Day"):
        ZvtClient(port, timers=short).close_batch(password=PASSWORD)


@pytest.mark.parametrize(
    ("code", "meaning"),
    [(0x6C, "aborted"), (0x77, "end-of-day not possible"), (0xF0, "open end-of-day batch")],
)
def test_abort_codes_are_reported_with_their_meaning(sim_factory, code: int, meaning: str) -> None:  # type: ignore[no-untyped-def]
    sim, port = sim_factory(scenario(abort_code=code))
    with pytest.raises(TerminalAborted) as info:
        client(port).close_batch(password=PASSWORD)
    assert info.value.result_code == code and meaning in info.value.message
    assert sim.scenario.batch_no == 1  # an aborted End-of-Day closes nothing


def test_wrong_password_is_refused(sim_factory) -> None:  # type: ignore[no-untyped-def]
    sim, port = sim_factory(scenario())
    with pytest.raises(TerminalAborted, match="function not possible"):
        client(port).close_batch(password="000000")
    assert sim.scenario.batch_no == 1


def test_no_terminal_at_all_is_no_answer() -> None:
    silent = PtyTransport()  # nobody serves the master side
    port = open_port(silent.path)
    try:
        with pytest.raises(
            NoAnswer,
            match=r"no answer from the terminal on /dev/pts/\d+ within \d+ s: check cable, baud rate \(9600 8N2\)",
        ):
            client(port).read_totals(password=PASSWORD)
    finally:
        port.close()
        silent.close()


def test_read_and_close_over_tcp_with_bare_apdus() -> None:
    """ZVT over TCP/IP (PA00P016 §4): the agent opens socket:// and speaks without DLE framing."""
    import socket
    import threading

    from settleguard.agent.terminal_link import close_batch, read_totals
    from settleguard.simulator.zvt_terminal import serve_zvt_tcp

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    scenario = Scenario()
    stop = threading.Event()
    thread = threading.Thread(target=serve_zvt_tcp, args=(listener, scenario, stop), daemon=True)
    thread.start()
    try:
        url = f"socket://127.0.0.1:{port}"
        read = read_totals(url, "zvt", password=scenario.password)
        assert read.kind == "turnover_totals" and read.terminal_id == scenario.terminal_id
        assert read.total_amount == sum(b.amount - b.refund_amount for b in Scenario().buckets)
        closed = close_batch(url, "zvt", password=scenario.password)
        assert closed.kind == "end_of_day" and closed.total_amount == read.total_amount
        assert scenario.buckets == []
    finally:
        stop.set()
        thread.join(5)
        listener.close()
