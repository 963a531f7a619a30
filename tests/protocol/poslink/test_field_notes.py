"""The field table in code and in firmware_notes/pax-poslink.md must say the same thing."""

from __future__ import annotations

from pathlib import Path

from settleguard.protocol.poslink.fields import FIELDS, RESPONSE_CODES

NOTES = Path(__file__).resolve().parents[3] / "firmware_notes" / "pax-poslink.md"


def _section(text: str, name: str) -> list[list[str]]:
    body = text.split(f"<!-- {name}:start -->")[1].split(f"<!-- {name}:end -->")[0]
    rows = [line for line in body.strip().splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_fields_table_is_mirrored() -> None:
    rows = _section(NOTES.read_text(encoding="utf-8"), "fields-table")
    assert len(rows) == len(FIELDS)
    for row, spec in zip(rows, FIELDS, strict=True):
        assert row[0] == spec.command and row[1] == str(spec.position)
        assert row[2] == f"`{spec.name}`" and row[4] == spec.source
        assert row[5] == ("yes" if spec.confirmed else "**no**")


def test_response_codes_are_mirrored() -> None:
    rows = _section(NOTES.read_text(encoding="utf-8"), "codes-table")
    assert [r[0].strip("`") for r in rows] == list(RESPONSE_CODES)
