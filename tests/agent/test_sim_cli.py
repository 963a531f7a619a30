"""``settleguard sim terminal`` starts a terminal the agent can read, on a pty or over TCP."""

from __future__ import annotations

import json
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SETTLEGUARD = [sys.executable, "-m", "settleguard.cli"]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SETTLEGUARD, "sim", "terminal", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _first_line(process: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The simulator's first line, waiting for it at most ``timeout`` seconds."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the simulator printed nothing in time"
    return process.stdout.readline()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.terminate()
        process.communicate(timeout=10)  # also closes the pipes


@pytest.mark.parametrize(
    ("args", "pattern", "protocol"),
    [
        (["--protocol", "zvt", "--pty"], r" on (/dev/\S+)", "zvt"),
        (["--protocol", "poslink"], r" on (/dev/\S+)", "poslink"),
        (["--protocol", "zvt", "--listen", "127.0.0.1:0"], r"on tcp (\S+)", "zvt"),
    ],
)
def test_agent_reads_a_terminal_started_from_the_cli(
    processes: list[subprocess.Popen[str]],
    tmp_path: Path,
    args: list[str],
    pattern: str,
    protocol: str,
) -> None:
    process = _start(*args)
    processes.append(process)
    match = re.search(pattern, _first_line(process))
    assert match, "the simulator prints where it listens"
    port = match.group(1) if match.group(1).startswith("/dev/") else f"socket://{match.group(1)}"
    result = subprocess.run(
        [*SETTLEGUARD, "agent", "read", "--protocol", protocol, "--port", port, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"SETTLEGUARD_AGENT_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    totals = json.loads(result.stdout)
    assert totals["protocol"] == protocol and totals["kind"] == "turnover_totals"
    assert totals["total_amount"] > 0


def test_conflicting_options_are_refused() -> None:
    result = subprocess.run(
        [*SETTLEGUARD, "sim", "terminal", "--pty", "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "exclude each other" in result.stderr


def test_mispos_terminal_from_the_cli_with_faults_is_closed_and_recovered(
    processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    scenario = tmp_path / "faults.toml"
    scenario.write_text(
        'terminal_id = "10060001"\nmerchant_id = "898310048160001"\ncurrency = "156"\n'
        'batch_no = 7\n[[buckets]]\nname = "wechat"\ncount = 3\namount = 4200\n'
        "[misbehaviour]\neod_silence_s = 0.5\nsplit_writes = true\ncorrupt_replies = 1\n",
        encoding="utf-8",
    )
    process = _start("--protocol", "mispos", "--scenario", str(scenario))
    processes.append(process)
    match = re.search(r" on (/dev/\S+)", _first_line(process))
    assert match
    result = subprocess.run(
        [*SETTLEGUARD, "agent", "close", "--protocol", "mispos", "--port", match.group(1),
         "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"SETTLEGUARD_AGENT_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    closed = json.loads(result.stdout)
    assert closed["recovered_with_reprint"] is True and "(19)" in result.stderr
    assert closed["batch_no"] == 7 and closed["buckets"] == [
        {"name": "wechat", "count": 3, "amount": 4200}
    ]


def test_two_terminals_without_a_scenario_have_distinct_ids(
    processes: list[subprocess.Popen[str]],
) -> None:
    processes += [_start("--protocol", "zvt"), _start("--protocol", "poslink")]
    ids = [re.search(r"terminal (\d{8}) on ", _first_line(p)) for p in processes]
    assert all(ids) and ids[0].group(1) != ids[1].group(1)  # type: ignore[union-attr]
