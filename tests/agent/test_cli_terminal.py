"""The technician's terminal commands, end to end against simulated terminals on real ptys."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from settleguard.agent.outbox import Outbox
from settleguard.protocol.envelope import read_header
from settleguard.protocol.sealed import card_change_context, generate_keypair, open_sealed
from settleguard.simulator.runner import RunningSimulator, start_on_pty
from settleguard.simulator.scenario import Scenario

from settleguard.cli import main

CARD = "6222021234567894"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "agent-home"
    monkeypatch.setenv("SETTLEGUARD_AGENT_HOME", str(root))
    return root


@pytest.fixture
def poslink() -> Iterator[RunningSimulator]:
    with start_on_pty("poslink", Scenario(terminal_id="P0000001")) as sim:
        yield sim


def _invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _stored(home: Path) -> list[dict[str, object]]:
    with Outbox(home / "outbox.db") as outbox:
        rows = outbox.conn.execute("SELECT payload FROM outbox ORDER BY seq").fetchall()
    return [json.loads(read_header(bytes(r[0])).signed_bytes) for r in rows]


def test_close_stores_the_signed_batch_before_reporting(
    home: Path, poslink: RunningSimulator
) -> None:
    code, out, _ = _invoke(
        "agent",
        "close",
        "--protocol",
        "poslink",
        "--port",
        poslink.path,
        "--merchant",
        "M1",
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["kind"] == "end_of_day" and result["stored_seq"] == 1
    (envelope,) = _stored(home)
    assert envelope["type"] == "batch_summary"
    body = envelope["body"]
    assert body["merchant_id"] == "M1"
    assert sum(b["sale_amount"] for b in body["buckets"]) == result["total_amount"] > 0
    # POSLink's card groups are foreign cards in China's buckets; the record keeps the group
    assert {b["name"] for b in result["buckets"]} == {"foreign"}
    assert {(b["name"], b["scheme"]) for b in body["buckets"]} == {("foreign", "credit")}
    assert poslink.scenario.buckets == []  # the simulator's batch really closed


def test_close_on_a_missing_port_fails_cleanly(home: Path) -> None:
    code, out, err = _invoke("agent", "close", "--port", "/dev/does-not-exist", "--json")
    assert code == 3
    assert json.loads(out)["exit_code"] == 3
    assert "no such port" in err


def test_replace_with_two_terminals(home: Path, poslink: RunningSimulator) -> None:
    with start_on_pty("poslink", Scenario(terminal_id="P0000002", buckets=[])) as new:
        code, out, err = _invoke(
            "agent",
            "replace",
            "--protocol",
            "poslink",
            "--old-port",
            poslink.path,
            "--new-port",
            new.path,
            "--old-terminal-id",
            "P0000001",
            "--new-terminal-id",
            "P0000002",
            "--merchant",
            "M1",
            "--yes",
            "--json",
        )
    assert code == 0, err
    state = json.loads(out)
    assert state["step"] == "done" and state["new_terminal_id"] == "P0000002"
    types = [e["type"] for e in _stored(home)]
    assert types == ["batch_summary", "terminal_replaced"]
    replaced = _stored(home)[1]["body"]
    assert replaced["old_terminal_id"] == _stored(home)[0]["body"]["terminal_id"]
    assert not (home / "replace.json").exists()  # finished: a new replacement may start


def test_replace_resumes_after_the_new_terminal_was_missing(
    home: Path, poslink: RunningSimulator
) -> None:
    args = [
        "agent",
        "replace",
        "--protocol",
        "poslink",
        "--old-port",
        poslink.path,
        "--old-terminal-id",
        "P0000001",
        "--new-terminal-id",
        "P0000002",
        "--merchant",
        "M1",
        "--yes",
    ]
    code, _, err = _invoke(*args, "--new-port", "/dev/not-plugged-in")
    assert code == 3 and "no such port" in err
    assert json.loads((home / "replace.json").read_text())["step"] == "swapped"
    with start_on_pty("poslink", Scenario(terminal_id="P0000002", buckets=[])) as new:
        code, out, err = _invoke(*args, "--new-port", new.path, "--json")
    assert json.loads(out)["new_port"] == new.path
    assert code == 0, err
    assert [e["type"] for e in _stored(home)] == ["batch_summary", "terminal_replaced"]


def test_card_change_seals_the_number_and_stores_only_the_tail(home: Path, tmp_path: Path) -> None:
    private, public = generate_keypair()
    key_file = tmp_path / "collector.pub"
    key_file.write_text(base64.b64encode(public).decode())
    code, out, err = _invoke(
        "agent",
        "card-change",
        "--merchant",
        "M1",
        "--holder",
        "张三",
        "--bank",
        "ICBC",
        "--old-tail",
        "1111",
        "--collector-key",
        str(key_file),
        "--card-stdin",
        "--json",
        input=f"{CARD}\n",
    )
    assert code == 0, err
    assert json.loads(out)["new_account_masked"].endswith("7894")
    raw = (home / "outbox.db").read_bytes()
    assert CARD.encode() not in raw and CARD not in out + err
    (envelope,) = _stored(home)
    body = envelope["body"]
    context = card_change_context(str(body["change_id"]))
    assert open_sealed(private, str(body["new_account_sealed"]), context=context) == CARD.encode()


def test_corporate_account_with_a_different_holder_is_recorded_with_a_warning(
    home: Path, tmp_path: Path
) -> None:
    _, public = generate_keypair()
    key_file = tmp_path / "collector.pub"
    key_file.write_text(base64.b64encode(public).decode())
    corporate = "1100012345678901234568"  # 22 digits, no check digit
    args = ["agent", "card-change", "--merchant", "M1", "--holder", "某某贸易有限公司",
            "--bank", "ICBC", "--kind", "corporate", "--registered-name", "张三面馆",
            "--collector-key", str(key_file), "--card-stdin"]  # fmt: skip
    code, out, err = _invoke(*args, "--json", input=f"{corporate}\n")
    assert code == 0, err
    result = json.loads(out)
    assert result["account_kind"] == "corporate"
    assert any("户名不符" in w for w in result["warnings"])
    (envelope,) = _stored(home)
    assert envelope["body"]["account_kind"] == "corporate"
    assert corporate not in out + err
    code, _, err = _invoke(*args, input=f"{corporate}\n")
    assert code == 0 and "warning:" in err and "户名不符" in err


def test_card_change_typed_twice_must_match(home: Path, tmp_path: Path) -> None:
    _, public = generate_keypair()
    key_file = tmp_path / "collector.pub"
    key_file.write_text(base64.b64encode(public).decode())
    code, _, err = _invoke(
        "agent",
        "card-change",
        "--merchant",
        "M1",
        "--holder",
        "张三",
        "--bank",
        "ICBC",
        "--collector-key",
        str(key_file),
        input=f"{CARD}\n6222021234567895\n",
    )
    assert code == 2 and "differ" in err
    assert not (home / "outbox.db").exists() or _stored(home) == []


def test_probe_names_the_protocol(home: Path, poslink: RunningSimulator) -> None:
    code, out, _ = _invoke("agent", "probe", "--port", poslink.path, "--json")
    assert code == 0
    (result,) = json.loads(out)
    assert result["found"] and result["protocol"] == "poslink"


def test_probe_reports_why_nothing_answered(home: Path) -> None:
    code, out, _ = _invoke("agent", "probe", "--port", "/dev/does-not-exist", "--json")
    assert code == 6
    (result,) = json.loads(out)
    assert not result["found"] and "no such port" in result["attempts"][0]["detail"]


@pytest.fixture
def dead_ports() -> Iterator[list[str]]:
    """Four serial ports with nothing behind them (ptys whose other end never answers)."""
    import os
    import pty

    pairs = [pty.openpty() for _ in range(4)]
    yield [os.ttyname(follower) for _, follower in pairs]
    for pair in pairs:
        for fd in pair:
            os.close(fd)


def test_probe_of_dead_ports_ends_with_one_short_verdict_each(dead_ports: list[str]) -> None:
    args = [arg for port in dead_ports for arg in ("--port", port)]
    code, out, err = _invoke("agent", "probe", *args)
    assert code == 6
    lines = out.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == dead_ports  # one verdict per port
    for line in lines:
        assert (
            "nothing answered (mispos, zvt, poslink, 9 line settings)" in line and len(line) < 160
        )
        assert line.count("check") == 1  # the hint once, not once per try
    assert all(f"... {port}: trying zvt at 9600 8N2" in err for port in dead_ports)  # progress


def test_probe_waits_briefly_per_try(dead_ports: list[str]) -> None:
    code, out, _ = _invoke("agent", "probe", "--port", dead_ports[0], "--json")
    assert code == 6
    (result,) = json.loads(out)
    zvt = [a["detail"] for a in result["attempts"] if a["protocol"] == "zvt"]
    # one short wait for an acknowledgement, no frame repeats (the full link timers wait 15 s)
    assert len(zvt) == 4 and all(" within 1 s:" in detail for detail in zvt), zvt
    assert result["verdict"].startswith("nothing answered")


def test_probe_tries_all_ports_at_once() -> None:
    import threading

    from settleguard.agent.errors import NoAnswer
    from settleguard.agent.probe import probe

    # Each port's first try waits until all four ports are being tried: only passes when
    # the ports are probed concurrently (one after another, the barrier would time out).
    barrier = threading.Barrier(4, timeout=10)

    def identify(protocol: str, port: object, network: bool) -> str | None:
        barrier.wait()
        raise NoAnswer("silent")

    ports = [f"loop://#{n}" for n in range(4)]
    results = probe(ports, attempts=[("zvt", 9600)], identify=identify)
    assert [r.port.device for r in results] == ports
    assert all(not r.found and r.attempts[0].silent for r in results)


@pytest.mark.parametrize(
    ("protocol", "scenario_currency", "option", "reported"),
    [
        ("zvt", "156", [], "156"),  # the terminal confirms the currency the agent registers
        ("zvt", "978", [], "978"),  # and names its own when that differs
        ("poslink", "978", [], "156"),  # POSLink carries none: the agent's setting, CNY
        ("poslink", "978", ["--currency", "EUR"], "978"),
    ],
)
def test_read_json_gives_an_iso_4217_currency(
    home: Path, protocol: str, scenario_currency: str, option: list[str], reported: str
) -> None:
    scenario = Scenario(terminal_id="52500042", currency=scenario_currency)
    with start_on_pty(protocol, scenario) as sim:
        code, out, err = _invoke(
            "agent", "read", "--protocol", protocol, "--port", sim.path, *option, "--json"
        )
    assert code == 0, err
    assert json.loads(out)["currency"] == reported


def test_wrong_zvt_password_suggests_checking_it(home: Path) -> None:
    with start_on_pty("zvt", Scenario(password="123456")) as sim:
        code, _, err = _invoke("agent", "read", "--port", sim.path, "--password", "000000")
    assert code == 8
    assert "function not possible (result code 83); check --password" in err


def test_simulated_terminals_get_distinct_ids() -> None:
    from settleguard.simulator.cli import terminal_id_for

    ids = {terminal_id_for(w) for w in ("/dev/pts/3", "/dev/pts/4", "127.0.0.1:20007",
                                        "127.0.0.1:20008", "/dev/ttyS0", "/dev/ttyS1")}  # fmt: skip
    assert len(ids) == 6 and all(len(i) == 8 and i.isdigit() for i in ids)
