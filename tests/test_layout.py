"""The parts keep to their places: no import cycles inside the collector, agent and collector
never import each other, and protocol/ imports only its own modules and the libraries it may.

Imports inside functions count too: a cycle broken only by a late import is still a cycle.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path, folder: str) -> str:
    parts = [folder, *path.relative_to(ROOT / folder).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every absolute module name ``path`` imports, at any depth of the file.

    ``from package import submodule`` imports the submodule (and runs the package's
    ``__init__`` first, which is not an edge of its own): with ``modules`` known, such a name
    counts as the submodule only.
    """
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            inner = [f"{node.module}.{alias.name}" for alias in node.names]
            named = [m for m in inner if m.removeprefix("settleguard.") in modules]
            yield from named if len(named) == len(inner) else [node.module, *named]
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _graph(folder: str) -> dict[str, set[str]]:
    files = {_module_name(p, folder): p for p in (ROOT / folder).rglob("*.py")}
    prefix = "settleguard."
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = {i.removeprefix(prefix) for i in _imports(path, frozenset(files))}
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("folder", ["collector", "agent", "protocol", "simulator"])
def test_no_import_cycles(folder: str) -> None:
    assert _cycles(_graph(folder)) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(("folder", "forbidden"), [("agent", "collector"), ("collector", "agent")])
def test_agent_and_collector_never_import_each_other(folder: str, forbidden: str) -> None:
    offenders = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / folder).rglob("*.py")
        if any(i.removeprefix("settleguard.").split(".")[0] == forbidden for i in _imports(path))
    )
    assert offenders == []


BARE = re.compile(r"^\s*(?:from|import) (?:protocol|agent|collector|simulator)\b", re.M)
BARE_STRING = re.compile(r"[\"'](?:protocol|agent|collector|simulator)(?:\.\w+)+\.\w+[\"']")


def test_nothing_imports_a_folder_by_its_bare_name() -> None:
    """Run from the checkout, ``collector`` would import a second copy of
    ``settleguard.collector``: a monkeypatch or isinstance check on it would miss the real one."""
    offenders = []
    for folder in (
        "protocol",
        "agent",
        "collector",
        "simulator",
        "settleguard",
        "tests",
        "benchmarks",
    ):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if BARE.search(text) or any(
                (ROOT / m.group(0)[1:-1].rsplit(".", 1)[0].replace(".", "/"))
                .with_suffix(".py")
                .exists()
                for m in BARE_STRING.finditer(text)
            ):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
