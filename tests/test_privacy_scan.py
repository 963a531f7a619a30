"""The privacy scanner finds card numbers where they hide, and ignores look-alikes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from settleguard.collector.store.sqlite import SqliteStore

from settleguard.privacy import find_card_numbers, luhn_ok, scan_path

VISA = "4111111111111111"
UNIONPAY = "6222021234567894"


@pytest.mark.parametrize(
    "text",
    [
        VISA,
        "card 4111 1111 1111 1111 ok",
        "4111-1111-1111-1111",
        f"x{UNIONPAY}y",
        f'"pan":"{UNIONPAY}"',
    ],
)
def test_finds_card_numbers_in_common_shapes(text: str) -> None:
    assert find_card_numbers(text)


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # Luhn fails
        "20261126104500123",  # a timestamp-like run: no scheme prefix
        "41111111111111110000",  # part of a longer digit run
        "411111******1111",  # masked
        "************7894",
        "123",
        "****30002024-03-04",  # a masked tail packed against a date (raw database bytes)
        "2024-03-04 4111",  # a date and a number
        "612ba812efa12a4801d784f0eaea6733172059410002868aad70b5515005c14a4162de2a89d1",  # a hash
        "k237c70baee0c378bAAAB4111111111111111ZZZZZZZZZZZZZZZZZ",  # inside base64
    ],
)
def test_ignores_look_alikes(text: str) -> None:
    assert find_card_numbers(text) == []


def test_known_numbers_are_found_even_without_scheme_prefix() -> None:
    assert find_card_numbers("acct 9558801234567", known=["9558801234567"]) == ["9558801234567"]


def test_luhn() -> None:
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")


def test_scan_path_reads_sqlite_rows_and_files(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE t (v BLOB)")
    connection.execute("INSERT INTO t VALUES (?)", (f"x{UNIONPAY}".encode(),))
    connection.commit()
    connection.close()
    (tmp_path / "log.txt").write_text(f"sent {VISA}\n", encoding="utf-8")
    (tmp_path / "clean.txt").write_text("nothing here 2026-11-26\n", encoding="utf-8")
    hits = scan_path(tmp_path)
    places = {h.where.split(":")[0].rsplit("/", 1)[-1] for h in hits}
    assert places == {"a.db", "log.txt"}
    assert all("*" in h.masked for h in hits)


def test_binary_files_still_show_a_number_between_field_separators(tmp_path: Path) -> None:
    (tmp_path / "page.bin").write_bytes(
        b"\x00\x01\x02" + UNIONPAY.encode() + b"\x00\x07ke2820c61528151"
    )
    assert [h.masked for h in scan_path(tmp_path)] == ["622202******7894"]


# The second process: write one row and read every row back, then close (as the last
# connection it then checkpoints and removes the WAL unless the server still holds its locks).
_COLLECTOR_COMMAND = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA busy_timeout = 10000")
connection.execute("INSERT INTO audit_log (actor, action) VALUES ('cli', ?)", (sys.argv[2],))
print(",".join(r[0] for r in connection.execute("SELECT action FROM audit_log ORDER BY id")))
connection.close()
"""


def _collector_command(db: Path, action: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _COLLECTOR_COMMAND, str(db), action],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.strip().split(",")


def _deleted_files_open(name: str) -> list[str]:
    """Files named like ``name`` that this process holds open although they were deleted."""
    targets = []
    for fd in Path(f"/proc/{os.getpid()}/fd").iterdir():
        try:
            targets.append(os.readlink(fd))
        except FileNotFoundError:  # the descriptor of the listing itself, already closed
            continue
    return [t for t in targets if name in t and t.endswith("(deleted)")]


def test_scanning_a_live_database_keeps_its_server_s_writes(tmp_path: Path) -> None:
    """The demo scans its folder while its server keeps the database open and writing; a
    collector command run afterwards in another process must neither lose the server's WAL
    nor miss what the server writes next."""
    db = tmp_path / "collector.db"
    server = SqliteStore(db)
    try:
        server.migrate()
        server.audit("server", "before-scan", None)
        assert scan_path(tmp_path) == []  # the demo's scan, in the server's process
        assert _collector_command(db, "cli-write") == ["before-scan", "cli-write"]
        server.audit("server", "after-cli", None)
        seen = [r["action"] for r in server.query("SELECT action FROM audit_log ORDER BY id")]
        assert seen == ["before-scan", "cli-write", "after-cli"]
        # another process sees what the server wrote after the collector command
        assert _collector_command(db, "cli-read") == [
            "before-scan",
            "cli-write",
            "after-cli",
            "cli-read",
        ]
        wal = Path(f"{db}-wal")
        assert wal.exists()
        assert not _deleted_files_open("collector.db")
    finally:
        server.close()
    reopened = sqlite3.connect(db)
    try:
        actions = [r[0] for r in reopened.execute("SELECT action FROM audit_log ORDER BY id")]
    finally:
        reopened.close()
    assert actions == ["before-scan", "cli-write", "after-cli", "cli-read"]
