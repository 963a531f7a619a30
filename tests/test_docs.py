"""The docs match the code: every command is documented, every gap category explained."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from settleguard.collector.reconcile.model import GapCategory

from settleguard.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "firmware_notes").glob("*.md")),
]


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(group)
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = (*prefix, name)
        yield path, command
        if isinstance(command, click.Group):
            yield from _commands(command, path)


COMMANDS = list(_commands(main))
DOCS = "\n".join(path.read_text(encoding="utf-8") for path in DOC_FILES)


def test_the_tree_is_walked() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"agent read", "collector import", "sim terminal", "demo"} <= names


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_command_has_help(path: tuple[str, ...], command: click.Command) -> None:
    text = command.get_short_help_str(200)
    assert text and text.strip(), f"settleguard {' '.join(path)} has no help text"


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_command_appears_in_the_docs(path: tuple[str, ...], command: click.Command) -> None:
    spelled = "settleguard " + " ".join(path)
    # A group is documented when its name appears as a command; a leaf must appear itself.
    pattern = re.escape(spelled) + r"(?![\w-])"
    assert re.search(pattern, DOCS), (
        f"`{spelled}` is not mentioned in README.md, docs/ or firmware_notes/"
    )


@pytest.mark.parametrize("category", GapCategory.__args__)  # type: ignore[attr-defined]
def test_every_gap_category_has_operator_and_merchant_guidance(category: str) -> None:
    operator_guide = (ROOT / "docs" / "operator.md").read_text(encoding="utf-8")
    rows = [line for line in operator_guide.splitlines() if line.startswith(f"| `{category}` |")]
    assert len(rows) == 1, f"{category} needs one row in the operator guide's category table"
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert len(cells) == 4 and all(cells), f"{category}: what happened, what to do, what to tell"


GUIDES = {"agent": ROOT / "docs" / "technician.md", "collector": ROOT / "docs" / "operator.md"}
SCRIPT_OPTIONS = [
    (group, " ".join(path), option)
    for group in GUIDES
    for path, command in COMMANDS
    if path[0] == group and not isinstance(command, click.Group)
    for param in command.params
    if isinstance(param, click.Option)
    for option in param.opts
    if option.startswith("--") and option != "--help"
]


def test_the_guides_are_checked_for_options() -> None:
    assert ("agent", "agent card-change", "--card-stdin") in SCRIPT_OPTIONS
    assert ("collector", "collector users add", "--password-stdin") in SCRIPT_OPTIONS


@pytest.mark.parametrize(("group", "command", "option"), SCRIPT_OPTIONS)
def test_every_option_is_in_the_technician_or_operator_guide(
    group: str, command: str, option: str
) -> None:
    guide = GUIDES[group]
    text = guide.read_text(encoding="utf-8")
    assert re.search(re.escape(option) + r"(?![\w-])", text), (
        f"`settleguard {command} {option}` is not in {guide.relative_to(ROOT)}"
    )
