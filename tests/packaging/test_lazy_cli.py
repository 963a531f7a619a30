"""The ``settleguard`` command loads only the group it runs.

An agent-only install has none of the collector's libraries, so ``settleguard agent …`` must
never import them; each case runs in a fresh interpreter and lists what got imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR_LIBRARIES = (
    "flask",
    "werkzeug",
    "psycopg",
    "argon2",
    "waitress",
    "smpplib",
    "amqtt",
    "mt940",
)

PROBE = """
import json, sys
from settleguard.cli import main
try:
    main(sys.argv[1:], prog_name="settleguard")
except SystemExit as exit:
    code = exit.code
print("\\nMODULES " + json.dumps(sorted(sys.modules)))
sys.exit(code)
"""


def _imported(
    args: list[str], home: Path, blocked: tuple[str, ...] = ()
) -> tuple[int, str, set[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SETTLEGUARD_AGENT_HOME": str(home)}
    code = PROBE
    if blocked:
        # Stand-in for an agent-only install: these top-level names cannot be imported.
        code = (
            "import sys\nclass Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            f"        if name.split('.')[0] in {blocked!r}: raise ModuleNotFoundError(name=name)\n"
            "sys.meta_path.insert(0, Block())\n" + code
        )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=60
    )
    modules_line = [line for line in done.stdout.splitlines() if line.startswith("MODULES ")]
    assert modules_line, done.stderr
    return done.returncode, done.stdout + done.stderr, set(json.loads(modules_line[-1][8:]))


def _collector_side(modules: set[str]) -> list[str]:
    """The imported modules that belong to the collector or to its libraries."""
    return sorted(
        name
        for name in modules
        if name.split(".")[0] in COLLECTOR_LIBRARIES or "collector" in name.split(".")[:2]
    )


@pytest.mark.parametrize(
    "args",
    [["--help"], ["agent", "--help"], ["agent", "status", "--json"], ["sim", "--help"]],
    ids=" ".join,
)
def test_agent_side_commands_never_import_the_collector(args: list[str], tmp_path: Path) -> None:
    code, output, modules = _imported(args, tmp_path)
    assert code == 0, output
    assert not _collector_side(modules), _collector_side(modules)


def test_the_collector_group_loads_when_asked(tmp_path: Path) -> None:
    code, output, modules = _imported(["collector", "--help"], tmp_path)
    assert code == 0, output
    assert "flask" in modules
    assert any(name.endswith("settleguard.collector.cli") for name in modules)


def test_agent_commands_work_without_the_collector_libraries(tmp_path: Path) -> None:
    code, output, _ = _imported(
        ["agent", "status", "--json"], tmp_path, blocked=COLLECTOR_LIBRARIES
    )
    assert code == 0, output
    assert json.loads(output.split("\nMODULES ")[0])["outbox"]["pending"] == 0


def test_a_group_whose_extra_is_missing_says_which_to_install(tmp_path: Path) -> None:
    code, output, _ = _imported(["collector", "--help"], tmp_path, blocked=("flask",))
    assert code == 2
    assert "error: 'settleguard collector' needs the collector extra" in output
    assert "pip install 'settleguard[collector]'" in output
