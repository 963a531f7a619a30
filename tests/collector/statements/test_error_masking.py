"""Statement errors and rejected-row reasons never carry a card or account number."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from settleguard.collector.statements import StatementError, parse_statement
from settleguard.collector.statements.errors import MAX_REASON, mask_digit_runs
from settleguard.collector.statements.model import Reject

ICBC = (Path(__file__).parent / "fixtures" / "icbc_bom.csv").read_bytes()
CARD = "4111-1111-1111-1111"
# Twelve digits in a row once separators are dropped: what must never appear anywhere.
LONG_RUN = re.compile(r"\d(?:[\s\-_./]{0,3}\d){11,}")


def icbc_with(old: str, new: str) -> bytes:
    text = ICBC.decode("utf-8-sig")
    assert old in text
    return text.replace(old, new, 1).encode("utf-8-sig")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"amount '{CARD}' is not a decimal", "amount '****-****-****-1111' is not a decimal"),
        ("4111111111111111", "************1111"),
        ("6222 0210 0112 3456 789", "**** **** **** ***6 789"),
        ("4111 - 1111 - 1111 - 1111", "**** - **** - **** - 1111"),
        ("4111.1111.1111.1111", "****.****.****.1111"),
        ("4111/1111_1111\u30001111", "****/****_****\u30001111"),
        ("\uff14\uff11\uff11\uff11" * 4, "*" * 12 + "\uff14\uff11\uff11\uff11"),
        ("123456789012", "********9012"),
        ("card 1234567890123 and 9876543210987", "card *********0123 and *********0987"),
    ],
)
def test_runs_of_twelve_or_more_digits_are_masked(text: str, masked: str) -> None:
    assert mask_digit_runs(text) == masked
    assert mask_digit_runs(masked) == masked  # masking twice changes nothing


@pytest.mark.parametrize(
    "text", ["12345678901", "line 12 column 3", "2024-03-02 09:10:11", "1,234,567.89", ""]
)
def test_shorter_runs_and_dates_are_kept(text: str) -> None:
    assert mask_digit_runs(text) == text


def test_a_card_number_in_an_amount_cell_is_located_not_echoed() -> None:
    with pytest.raises(StatementError) as info:
        parse_statement(icbc_with('"6,430.50"', CARD), filename="icbc.csv")
    message = str(info.value)
    assert message.startswith("icbc.csv line 6 column 收入: ")
    assert CARD not in message and not LONG_RUN.search(message), message
    assert not LONG_RUN.search(info.value.reason)


def test_every_part_of_the_error_is_masked() -> None:
    error = StatementError(
        f"bad {CARD}", filename=f"{CARD}.csv", line=3, column=CARD, element=f"Ntry/{CARD}"
    )
    for text in (str(error), error.reason, error.filename, error.column, error.element):
        assert text is not None and not LONG_RUN.search(text), text
    assert not LONG_RUN.search(str(error.in_file(f"again {CARD}")))


def test_a_long_quoted_cell_is_cut() -> None:
    error = StatementError("amount '" + "x" * 5000 + "' is not a decimal")
    assert len(error.reason) == MAX_REASON and error.reason.endswith("…")


def test_rejected_row_reasons_are_masked() -> None:
    parsed = parse_statement(icbc_with("0.87,", "1111111111111.875,"))
    [reject] = parsed.rejects
    assert "more decimals" in reject.reason and not LONG_RUN.search(reject.reason)
    assert Reject("line 1", f"x {CARD}").reason == "x ****-****-****-1111"
