"""The privacy scanner finds card numbers where they hide, and ignores look-alikes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

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
