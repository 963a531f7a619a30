"""protocol/ must stay sans-I/O (docs/architecture.md §2): no serial, MQTT, database, web, socket or thread."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol"
BANNED = {
    "serial",
    "paho",
    "sqlite3",
    "sqlite_utils",
    "flask",
    "socket",
    "threading",
    "asyncio",
    "select",
    "subprocess",
    "psycopg",
    "requests",
    "urllib",
    "http",
}
# time.sleep / time.time would smuggle a clock in; time is passed in by the caller.
BANNED_CALLS = {("time", "sleep"), ("time", "time"), ("time", "monotonic"), ("datetime", "now")}


def _modules() -> list[Path]:
    return sorted(PROTOCOL.rglob("*.py"))


def _imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_there_is_protocol_code_to_check() -> None:
    assert len(_modules()) >= 3


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PROTOCOL)))
def test_module_imports_no_io_library(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert not (_imported_roots(tree) & BANNED), (
        f"{path} imports I/O: {_imported_roots(tree) & BANNED}"
    )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PROTOCOL)))
def test_module_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert (node.value.id, node.attr) not in BANNED_CALLS, (
                f"{path}:{node.lineno} uses {node.value.id}.{node.attr}; pass time in instead"
            )


def test_the_checker_catches_a_violation() -> None:
    tree = ast.parse("import serial\nfrom paho.mqtt import client\n")
    assert _imported_roots(tree) & BANNED == {"serial", "paho"}
