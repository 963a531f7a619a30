"""The agent's MIS-POS client and CLI against the simulated terminal over real ptys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import serial
from click.testing import CliRunner
from settleguard.agent.errors import NoAnswer, TerminalAborted, TerminalProtocolError, UsageError
from settleguard.agent.mispos_client import MisposClient
from settleguard.agent.outbox import Outbox
from settleguard.protocol.envelope import read_header
from settleguard.protocol.mispos import (
    TYPE_REPRINT_SETTLEMENT,
    TYPE_SETTLEMENT,
    FrameDecoder,
    Request,
)
from settleguard.simulator.mispos_terminal import china_scenario
from settleguard.simulator.runner import RunningSimulator, start_on_pty
from settleguard.simulator.scenario import Misbehaviour, Scenario

from settleguard.cli import main

BUCKETS = [
    {"name": "domestic_debit", "count": 4, "amount": 152300},
    {"name": "domestic_credit", "count": 3, "amount": 98750},
    {"name": "foreign", "count": 1, "amount": 20000},
    {"name": "unionpay_qr", "count": 5, "amount": 6480},
]


def scenario(**faults: object) -> Scenario:
    made = china_scenario()
    made.misbehaviour = Misbehaviour(**faults)  # type: ignore[arg-type]
    return made


@pytest.fixture
def sims() -> Iterator[object]:
    running: list[RunningSimulator] = []
    ports: list[serial.SerialBase] = []

    def make(s: Scenario) -> tuple[RunningSimulator, serial.SerialBase]:
        sim = start_on_pty("mispos", s)
        running.append(sim)
        port = serial.serial_for_url(sim.path, baudrate=9600, timeout=0.02, exclusive=True)
        ports.append(port)
        return sim, port

    yield make
    for port in ports:
        port.close()
    for sim in running:
        sim.stop()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "agent-home"
    monkeypatch.setenv("SETTLEGUARD_AGENT_HOME", str(root))
    return root


class SteppingClock:
    """A simulated monotonic clock: every reading is ``step`` seconds after the last."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class RecordingPort:
    """A port wrapper that records the requests the client wrote (its transaction types)."""

    def __init__(self, port: serial.SerialBase) -> None:
        self._port = port
        self.types: list[int] = []
        self._decoder = FrameDecoder()

    def write(self, data: bytes) -> int | None:
        self._decoder.feed(data)
        while (frame := self._decoder.next_frame()) is not None:
            self.types.append(Request.decode_body(frame.body).trans_type)
        return self._port.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self._port, name)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def stored(home: Path) -> list[dict[str, object]]:
    with Outbox(home / "outbox.db") as outbox:
        rows = outbox.conn.execute("SELECT payload FROM outbox ORDER BY seq").fetchall()
    return [json.loads(read_header(bytes(r[0])).signed_bytes)["body"] for r in rows]


def test_close_json_is_the_common_object_and_is_stored(home: Path, sims) -> None:  # type: ignore[no-untyped-def]
    sim, port = sims(scenario(split_writes=True, eod_silence_s=0.3))
    port.close()
    code, out, _ = invoke("agent", "close", "--protocol", "mispos", "--port", sim.path, "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["protocol"] == "mispos" and result["kind"] == "end_of_day"
    assert result["terminal_id"] == "10060001" and result["merchant_no"] == "898310048160001"
    assert result["batch_no"] == 123 and result["currency"] == "156"
    assert result["total_amount"] == 277530 and result["buckets"] == BUCKETS
    assert result["closed_at"].endswith("Z") and result["recovered_with_reprint"] is False
    (body,) = stored(home)
    assert body["protocol"] == "mispos" and body["source"] == "terminal"
    assert body["merchant_id"] == "898310048160001" and body["batch_no"] == 123
    assert [(b["name"], b["sale_amount"]) for b in body["buckets"]] == [
        (b["name"], b["amount"]) for b in BUCKETS
    ]
    assert sim.scenario.batch_no == 124 and sim.scenario.buckets == []


def test_corrupted_reply_is_recovered_with_19_never_14(sims) -> None:  # type: ignore[no-untyped-def]
    sim, port = sims(scenario(corrupt_replies=1))
    messages: list[str] = []
    recording = RecordingPort(port)
    client = MisposClient(recording, progress=messages.append, timeout=5.0)  # type: ignore[arg-type]
    totals = client.close_batch()
    assert recording.types == [TYPE_SETTLEMENT, TYPE_REPRINT_SETTLEMENT]
    assert client.recovered and totals.batch_no == 123 and totals.total_amount == 277530
    assert any("NOT settling again" in m and "(19)" in m for m in messages)
    assert sim.scenario.batch_no == 124  # exactly one batch was closed


def test_cli_says_the_figures_came_from_the_reprint(home: Path, sims) -> None:  # type: ignore[no-untyped-def]
    sim, port = sims(scenario(corrupt_replies=1))
    port.close()
    code, out, err = invoke("agent", "close", "--protocol", "mispos", "--port", sim.path)
    assert code == 0, err
    assert "reprint (19)" in out and "NOT settling again" in err
    assert "¥2,775.30" in out
    (body,) = stored(home)
    assert body["batch_no"] == 123


def test_silence_past_60_s_on_a_simulated_clock(sims) -> None:  # type: ignore[no-untyped-def]
    _sim, port = sims(scenario(eod_silence_s=3600.0))
    clock = SteppingClock(5.0)
    recording = RecordingPort(port)
    client = MisposClient(recording, clock=clock)  # type: ignore[arg-type]
    with pytest.raises(NoAnswer) as info:
        client.close_batch()
    # settlement once, then one reprint; both waited the full 60 s of simulated time
    assert recording.types == [TYPE_SETTLEMENT, TYPE_REPRINT_SETTLEMENT]
    assert "did not come within 60 s" in info.value.message
    assert "Do not close again" in info.value.message and clock.now >= 120.0


def test_error_code_is_shown_with_its_9f19_text(home: Path, sims) -> None:  # type: ignore[no-untyped-def]
    sim, port = sims(scenario(result_code="97", result_text="终端未登记，请联系通联"))
    port.close()
    code, _out, err = invoke("agent", "close", "--protocol", "mispos", "--port", sim.path)
    assert code == TerminalAborted.exit_code
    assert "97 终端未登记，请联系通联" in err
    assert stored(home) == [] and sim.scenario.batch_no == 123


def test_read_explains_there_is_no_totals_query() -> None:
    code, _, err = invoke("agent", "read", "--protocol", "mispos", "--port", "/dev/null")
    assert code == UsageError.exit_code
    assert "no totals query" in err and "--last" in err


def test_read_last_reprints_and_closes_nothing(sims, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim, port = sims(scenario())
    MisposClient(port).close_batch()
    port.close()
    raw = tmp_path / "reply.bin"
    args = ("agent", "read", "--protocol", "mispos", "--last", "--port", sim.path)
    code, out, _ = invoke(*args, "--json", "--save-raw", str(raw))
    assert code == 0
    result = json.loads(out)
    assert result["batch_no"] == 123 and result["buckets"] == BUCKETS
    assert sim.scenario.batch_no == 124
    decoder = FrameDecoder()
    decoder.feed(raw.read_bytes())
    assert decoder.next_frame() is not None  # the saved bytes are the reply frame


def test_read_last_before_any_settlement_shows_the_code() -> None:
    with start_on_pty("mispos", scenario()) as sim:
        code, _, err = invoke("agent", "read", "--protocol", "mispos", "--last", "--port", sim.path)
    assert code == TerminalAborted.exit_code and "X2" in err


def test_lost_reply_whose_reprint_is_an_already_stored_batch_is_refused(
    home: Path,
    sims,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from settleguard.agent import terminal_link

    sim, port = sims(scenario())
    port.close()
    assert invoke("agent", "close", "--protocol", "mispos", "--port", sim.path)[0] == 0
    # The terminal ignores the next settlement (it never closes), then reprints batch 123.
    sim.scenario.misbehaviour.drop_acks = 1
    monkeypatch.setattr(
        terminal_link,
        "make_client",
        lambda protocol, port, network, progress, currency: MisposClient(
            port, clock=SteppingClock(5.0)
        ),
    )
    code, _, err = invoke("agent", "close", "--protocol", "mispos", "--port", sim.path)
    assert code == TerminalProtocolError.exit_code
    assert "already stored: the batch was NOT closed" in err
    assert [b["batch_no"] for b in stored(home)] == [123]
    assert sim.scenario.batch_no == 124  # nothing more was closed


def test_probe_finds_the_mispos_terminal(home: Path) -> None:
    with start_on_pty("mispos", scenario()) as sim:
        code, out, _ = invoke("agent", "probe", "--port", sim.path, "--json")
    assert code == 0
    (result,) = json.loads(out)
    assert result["protocol"] == "mispos" and result["terminal_id"] == "10060001"


def test_damaged_slip_tells_the_technician_to_save_the_raw_reply(
    sims, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from settleguard.simulator import mispos_terminal

    def bad_rows(s: Scenario):  # type: ignore[no-untyped-def]
        from settleguard.protocol.mispos import SlipRow

        return (SlipRow("storedvalue", 1, 100),)

    monkeypatch.setattr(mispos_terminal, "scenario_rows", bad_rows)
    _sim, port = sims(scenario())
    with pytest.raises(TerminalProtocolError) as info:
        MisposClient(port).close_batch()
    assert "CLOSED on the terminal" in info.value.message and "--save-raw" in info.value.message


def _replacement(home: Path, old: RunningSimulator, new: RunningSimulator):  # type: ignore[no-untyped-def]
    from settleguard.agent.home import agent_home
    from settleguard.agent.replace import Replacement
    from settleguard.agent.technician import LinkTerminals, OutboxAdapter

    agent = agent_home(home)
    return Replacement(
        home=agent.root,
        terminals=LinkTerminals(None, None, {}),
        outbox=OutboxAdapter(agent),
        now=lambda: "2026-11-26T13:30:05Z",
        say=lambda message: None,
        confirm_swap=lambda state: new.path,
    )


def _interrupted_close(merchant: str, port: str) -> object:
    from settleguard.agent.replace import ReplaceState

    return ReplaceState(
        merchant_id=merchant, old_port=port, old_protocol="mispos", step="closing",
        old_terminal_id="10060001", close_attempted_at="2026-11-26T13:30:00Z",
    )  # fmt: skip


def test_replace_resumed_after_an_interrupted_settlement_uses_the_reprint(home: Path) -> None:
    with (
        start_on_pty("mispos", scenario()) as old,
        start_on_pty("mispos", Scenario(terminal_id="10060009", buckets=[])) as new,
    ):
        with serial.serial_for_url(old.path, timeout=0.02) as port:
            MisposClient(port).close_batch()  # the terminal settled; the agent died before storing
        state = _replacement(home, old, new).run(_interrupted_close("M1", old.path))  # type: ignore[arg-type]
        assert old.scenario.batch_no == 124  # settled once: the resume did not send 14 again
    assert (state.final_batch_no, state.new_terminal_id) == (123, "10060009")
    assert [b.get("batch_no") for b in stored(home) if "batch_no" in b] == [123]


def test_replace_resumed_before_the_settlement_happened_settles_once(home: Path) -> None:
    with (
        start_on_pty("mispos", scenario()) as old,
        start_on_pty("mispos", Scenario(terminal_id="10060009", buckets=[])) as new,
    ):
        assert invoke("agent", "close", "--protocol", "mispos", "--port", old.path)[0] == 0
        old.scenario.add_sale("wechat", 1500)  # batch 124 is open; its close never started
        state = _replacement(home, old, new).run(_interrupted_close("M1", old.path))  # type: ignore[arg-type]
        assert old.scenario.batch_no == 125  # the reprint showed 123 (stored): 124 closed now
    assert state.final_batch_no == 124
    assert [b.get("batch_no") for b in stored(home) if "batch_no" in b] == [123, 124]


def test_tail_of_a_reply_damaged_at_its_start_does_not_spoil_the_reprint() -> None:
    import threading

    from settleguard.protocol.mispos import Reply, TerminalConnection, settlement_reply
    from settleguard.protocol.mispos.slip import SlipRow
    from settleguard.simulator.transport import PtyTransport

    pty = PtyTransport()
    made = settlement_reply(
        merchant_no="898310048160001", terminal_id="10060001", batch_no=123,
        rows=(SlipRow("wechat", 2, 3000),), when=datetime(2026, 11, 26, 21, 30, 5),
    )  # fmt: skip
    # an unknown tag near the end whose value looks like the start of a frame (STX, LEN 0030)
    good = Reply((*made.items, (0xDF01, b"\x02\x00\x30")))
    stop = threading.Event()

    def terminal() -> None:
        conn, answered = TerminalConnection(), 0
        while not stop.is_set():
            conn.receive_data(pty.read(0.02))
            event = conn.next_event()
            if event is None:
                continue
            frame = conn.send(good)
            if answered == 0:  # LEN is not BCD; the body (with STX bytes in it) still follows
                damaged = frame[:1] + b"\x0a" + frame[2:]
                for i in range(0, len(damaged), 40):
                    pty.write(damaged[i : i + 40])
                    stop.wait(0.05)
            else:
                pty.write(frame)
            answered += 1

    thread = threading.Thread(target=terminal, daemon=True)
    thread.start()
    try:
        with serial.serial_for_url(pty.path, timeout=0.02) as port:
            client = MisposClient(port, timeout=5.0)
            totals = client.close_batch()
    finally:
        stop.set()
        thread.join(5)
        pty.close()
    assert client.recovered and totals.batch_no == 123 and totals.total_amount == 3000


def test_empty_batch_answered_x3_closes_and_stores_nothing(home: Path) -> None:
    with start_on_pty("mispos", scenario(result_code="X3", result_text="无交易")) as sim:
        code, _, err = invoke("agent", "close", "--protocol", "mispos", "--port", sim.path)
    assert code == TerminalAborted.exit_code
    assert "X3 无交易" in err and "nothing was closed" in err
    assert not (home / "outbox.db").exists() or stored(home) == []


def test_both_replies_lost_then_close_recover_stores_the_batch_once(home: Path) -> None:
    with start_on_pty("mispos", scenario(corrupt_replies=2)) as sim:
        args = ("agent", "close", "--protocol", "mispos", "--port", sim.path)
        code, _, err = invoke(*args)
        assert code == NoAnswer.exit_code and "--recover" in err and "Do not close again" in err
        assert stored(home) == [] and sim.scenario.batch_no == 124  # settled, nothing stored
        code, out, err = invoke(*args, "--recover", "--json")
        assert code == 0, err
        assert json.loads(out)["batch_no"] == 123 and json.loads(out)["recovered_with_reprint"]
        code, _, err = invoke(*args, "--recover")
        assert code == TerminalProtocolError.exit_code and "already stored" in err
        assert sim.scenario.batch_no == 124  # --recover never settled
    assert [b["batch_no"] for b in stored(home)] == [123]


def test_recover_is_only_for_mispos(home: Path) -> None:
    code, _, err = invoke("agent", "close", "--protocol", "zvt", "--port", "/dev/null", "--recover")
    assert code == UsageError.exit_code and "MIS-POS" in err
