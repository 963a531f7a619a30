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


def test_two_terminals_without_a_scenario_have_distinct_ids(
    processes: list[subprocess.Popen[str]],
) -> None:
    processes += [_start("--protocol", "zvt"), _start("--protocol", "poslink")]
    ids = [re.search(r"terminal (\d{8}) on ", _first_line(p)) for p in processes]
    assert all(ids) and ids[0].group(1) != ids[1].group(1)  # type: ignore[union-attr]
