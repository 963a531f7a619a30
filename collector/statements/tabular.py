"""Shared reading of CSV exports: encoding, physical lines, cells, header and profile choice.

Chinese banks export in GBK/GB18030 from older systems and UTF-8 (often with a BOM, for
Excel) from newer ones; both come with CRLF, preamble lines above the header (bank
name, account, period) and summary lines below the data (合计 …). Each physical line is
read on its own so every row keeps its exact line number for error messages.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass
from datetime import date, datetime

from settleguard.collector.statements.errors import StatementError, mask_digit_runs
from settleguard.collector.statements.profiles import Profile, ProfileKind


@dataclass(frozen=True, slots=True)
class Row:
    """One physical line split into cleaned cells; ``line`` is 1-based."""

    line: int
    cells: list[str]


@dataclass(frozen=True, slots=True)
class Header:
    """The chosen profile, where its header row is, and field → column index."""

    profile: Profile
    index: int
    mapping: dict[str, int]
    names: list[str]


# File signatures: .xlsx is a ZIP container; .xls is an OLE2 compound document.
_SPREADSHEET_MAGIC = {b"PK\x03\x04": ".xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": ".xls"}


def spreadsheet_kind(data: bytes) -> str | None:
    """``".xlsx"`` or ``".xls"`` when ``data`` starts like an Excel workbook, else None."""
    for magic, kind in _SPREADSHEET_MAGIC.items():
        if data.startswith(magic):
            return kind
    return None


def decode(data: bytes, filename: str) -> str:
    """Decode with BOM detection, then UTF-8, then GB18030 (a superset of GBK).

    :raises StatementError: when the bytes are neither, naming the line of the first bad byte;
        an Excel workbook (.xlsx or .xls) is named as one
    """
    kind = spreadsheet_kind(data)
    if kind is not None:
        raise StatementError(
            f"Excel file: {kind} workbook, not CSV text; save the sheet as CSV (UTF-8) and "
            "import that",
            filename=filename,
        )
    if data.startswith(codecs.BOM_UTF8):
        encodings: tuple[str, ...] = ("utf-8-sig",)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ("utf-16",)
    else:
        encodings = ("utf-8", "gb18030")
    error: UnicodeDecodeError | None = None
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            error = error or exc
            continue
        if "\x00" in text:
            raise StatementError(
                "binary data (NUL characters) in a text file",
                filename=filename,
                line=text[: text.index("\x00")].count("\n") + 1,
            )
        return text
    assert error is not None
    line = data[: error.start].count(b"\n") + 1
    raise StatementError("text is neither UTF-8 nor GBK/GB18030", filename=filename, line=line)


def clean_cell(cell: str) -> str:
    """Trim the padding banks put round cells (spaces, TABs) and Excel's ``="…"`` wrapper."""
    cell = cell.strip().strip("\t").strip()
    if cell.startswith('="') and cell.endswith('"'):
        cell = cell[2:-1].strip()  # Excel "keep as text" wrapper some banks emit
    return cell


def split_rows(text: str) -> list[Row]:
    """Split text into rows of cleaned cells, comma- or tab-separated per line."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        cells = next(csv.reader([line], delimiter=_delimiter(line)), [])
        rows.append(Row(number, [clean_cell(c) for c in cells]))
    return rows


_QUOTED = re.compile(r'"[^"]*"')


def _delimiter(line: str) -> str:
    """Comma unless TABs outnumber commas outside quoted cells.

    招商银行 and 工商银行 pad quoted cells with TABs (``"\t2024-03-01"``); only separators
    outside quotes say how the line is split.
    """
    bare = _QUOTED.sub("", line)
    return "\t" if bare.count("\t") > bare.count(",") else ","


def excerpt(raw: str, limit: int = 20) -> str:
    """A cell quoted for an error message: long digit runs masked first (they may be card
    numbers), then cut short so no message repeats a long cell."""
    shown = mask_digit_runs(raw)
    if len(shown) <= limit:
        return repr(shown)
    return repr(shown[:limit] + "…") + f" ({len(raw)} characters)"


def find_header(
    rows: list[Row],
    profiles: dict[str, Profile],
    kind: ProfileKind | None,
    wanted: str | None,
    filename: str,
) -> Header:
    """Pick the profile and its header row.

    With ``wanted`` given, only that profile is tried. Otherwise every profile (of
    ``kind``) is tried against the first rows; the profile that recognises the header by
    the most ``detect`` cells wins, and a tie is an error listing the candidates.

    :raises StatementError: unknown profile, no header found, or an ambiguous header
    """
    if wanted is not None:
        if wanted not in profiles:
            raise StatementError(
                f"unknown profile {wanted!r}; known: {', '.join(sorted(profiles))}",
                filename=filename,
            )
        candidates = [profiles[wanted]]
    else:
        candidates = [p for p in profiles.values() if kind is None or p.kind == kind]
    found: list[Header] = []
    for profile in candidates:
        for i, row in enumerate(rows[: profile.max_preamble + 1]):
            mapping = profile.match_header(row.cells)
            if mapping is not None:
                found.append(Header(profile, i, mapping, row.cells))
                break
    if not found:
        what = f"profile {wanted!r}" if wanted else "any known profile"
        raise StatementError(
            f"no header row for {what} in the first lines; use --profile with one of: "
            + ", ".join(sorted(p.name for p in candidates)),
            filename=filename,
        )
    best = max(len(h.profile.detect) for h in found)
    top = [h for h in found if len(h.profile.detect) == best]
    if len(top) > 1:
        raise StatementError(
            "the header fits several profiles; choose one with --profile: "
            + ", ".join(sorted(h.profile.name for h in top)),
            filename=filename,
        )
    return top[0]


def parse_date(raw: str, formats: tuple[str, ...]) -> date | None:
    """Return the date in ``raw`` by the first matching format, or None."""
    for fmt in formats:
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    return None


def strip_money(raw: str) -> str:
    """Drop currency symbols and spaces around an amount; ``(1.00)`` becomes ``-1.00``."""
    s = raw.replace("¥", "").replace("￥", "").replace("RMB", "").replace(" ", "").strip()
    if s.startswith("(") and s.endswith(")"):
        s = "-" + s[1:-1]
    return s
