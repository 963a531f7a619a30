"""Scan artifacts for full card numbers (docs/architecture.md §6: none may ever be stored or sent).

A *hit* is a run of 13 to 19 digits (optionally grouped by single spaces or dashes, as people
type them) that is not part of a longer digit run, starts with a card scheme's issuer prefix,
and passes the Luhn check. Restricting to scheme prefixes keeps timestamps and sequence numbers
from raising false alarms; the known test numbers of a run can be added explicitly.

Used by the privacy tests after the end-to-end runs and by ``settleguard demo`` on its own
work folder.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# A whole digit run of 13-19 digits, or the grouped form people type (4-digit groups separated
# by one space or dash: "6222 0212 3456 7894", "6217-0012-3456-7890-123"). Other separators
# would turn dates and amounts next to each other into look-alikes.
_CANDIDATE = re.compile(
    r"(?<![0-9*X])(?:[0-9]{13,19}|[0-9]{4}(?:[ -][0-9]{4}){2,3}(?:[ -][0-9]{1,4})?)(?![0-9])"
)
# Issuer prefixes: Visa 4; Mastercard 51-55, 2221-2720; Amex 34, 37; UnionPay 62, 81;
# JCB 35; Discover 6011, 64, 65; Diners 30, 36, 38; Maestro 50, 56-58, 67.
_SCHEME_PREFIX = re.compile(r"4|5[0-8]|2(?:2[2-9]|[3-6][0-9]|7[01]|720)|3[0-8]|6[0-9]|81")


def luhn_ok(digits: str) -> bool:
    """True when ``digits`` passes the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/=_]")


def _inside_encoded_blob(text: str, start: int, end: int, *, min_token: int = 32) -> bool:
    """True when the digits sit inside a long hex/base64 token (a hash, key or signature).

    Such tokens hold random digit runs; a card number written by a person or a program stands
    apart from letters, or sits in a short token such as ``PAN4111…``.
    """
    left, right = start, end
    while left > 0 and _TOKEN_CHARS.match(text[left - 1]):
        left -= 1
    while right < len(text) and _TOKEN_CHARS.match(text[right]):
        right += 1
    token = text[left:right]
    return len(token) >= min_token and any(c.isalpha() for c in token)


def find_card_numbers(text: str, known: Iterable[str] = (), *, binary: bool = False) -> list[str]:
    """Card numbers in ``text``: Luhn-valid scheme-prefixed runs, plus any ``known`` number.

    :param binary: ``text`` is a binary file read as text (a database page, a WAL): fields
        are packed without separators there, so digits touching a 16+ character token with
        letters (ids, hex keys) are taken as part of it. Row-by-row scans stay strict.
    """
    hits = []
    min_token = 16 if binary else 32
    for match in _CANDIDATE.finditer(text):
        if _inside_encoded_blob(text, match.start(), match.end(), min_token=min_token):
            continue
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and _SCHEME_PREFIX.match(digits) and luhn_ok(digits):
            hits.append(digits)
    compact = re.sub(r"[ -]", "", text)
    hits.extend(number for number in known if number and number in compact)
    return hits


@dataclass(frozen=True, slots=True)
class Hit:
    """Where a card number was found (the number itself is reported masked)."""

    where: str
    masked: str


def _mask(digits: str) -> str:
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def _sqlite_texts(path: Path) -> Iterator[tuple[str, str]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for rowid, row in enumerate(connection.execute(f'SELECT * FROM "{table}"')):  # noqa: S608
                for value in row:
                    if isinstance(value, bytes):
                        value = value.decode("latin-1")
                    if isinstance(value, str):
                        yield f"{path}:{table}#{rowid}", value
    finally:
        connection.close()


def scan_texts(
    items: Iterable[tuple[str, str]], known: Iterable[str] = (), *, binary: bool = False
) -> list[Hit]:
    """Scan ``(where, text)`` pairs."""
    known = tuple(known)
    return [
        Hit(where, _mask(d))
        for where, text in items
        for d in find_card_numbers(text, known, binary=binary)
    ]


def scan_path(root: Path, known: Iterable[str] = ()) -> list[Hit]:
    """Scan every file below ``root``: SQLite databases row by row, other files as text.

    Files are also read raw, so a SQLite WAL or a binary log cannot hide a number.

    The scan runs in a child process. Reading a file opens and closes a descriptor, and closing
    any descriptor of a file drops every POSIX lock the process holds on it -- SQLite's locks
    included. Scanning a database that this process keeps open (the demo's server) would leave
    it unlocked, and the next process to close the database would take itself for the last
    user, checkpoint and delete the WAL this process still writes into (docs/security.md).
    The child holds no connection, so its reads cost nobody a lock. The known numbers travel
    on its standard input, never on its command line.
    """
    request = json.dumps({"root": str(root), "known": list(known)})
    package_parent = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-m", "settleguard.privacy"],
        input=request,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"privacy scan of {root} failed: {done.stderr.strip()[-500:]}")
    return [Hit(where, masked) for where, masked in json.loads(done.stdout)]


def _scan_here(root: Path, known: Iterable[str] = ()) -> list[Hit]:
    """:func:`scan_path`'s work, in the calling process (the child's side)."""
    known = tuple(known)
    hits: list[Hit] = []
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in paths:
        raw = path.read_bytes()
        binary = b"\x00" in raw
        texts = [(str(path), raw.decode("utf-8", errors="replace"))]
        if binary:
            texts.append((str(path), raw.decode("utf-16-le", errors="ignore")))
        hits.extend(scan_texts(texts, known, binary=binary))
        if raw.startswith(b"SQLite format 3\x00"):
            try:
                hits.extend(scan_texts(_sqlite_texts(path), known))
            except sqlite3.DatabaseError:
                pass
    return hits


def main() -> None:
    """The child of :func:`scan_path`: a JSON request on stdin, the hits as JSON on stdout."""
    request = json.load(sys.stdin)
    hits = _scan_here(Path(request["root"]), request["known"])
    json.dump([[hit.where, hit.masked] for hit in hits], sys.stdout)


if __name__ == "__main__":
    main()
