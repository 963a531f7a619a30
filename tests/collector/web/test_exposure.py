"""What a signed-in viewer or an export can learn: phone search, spreadsheet formulas, and
statement errors."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from settleguard.collector.store import Store
from settleguard.collector.web.export import escape_formula
from settleguard.collector.web.tokens import create_token

from tests.collector.web.conftest import csrf_token

PHONE = "13912345678"
ICBC = (Path(__file__).parents[1] / "statements/fixtures/icbc_bom.csv").read_bytes()
CARD = "4111-1111-1111-1111"


def _merchant_ids(client: FlaskClient, headers: dict[str, str], q: str) -> list[str]:
    answer = client.get("/api/v1/merchants", query_string={"q": q}, headers=headers).get_json()
    return [m["merchant_id"] for m in answer["items"]]


def test_phone_search_reveals_no_more_than_the_shown_tail(web_app: Flask, db: Store) -> None:
    with db.transaction() as tx:
        tx.insert("merchants", {"merchant_id": "M7", "name": "Dumplings",
                                "phones": json.dumps([PHONE])}, returning="merchant_id")  # fmt: skip
    client = web_app.test_client()
    viewer = {"Authorization": "Bearer " + create_token(db, "viewer", actor="t")}
    shown = client.get("/api/v1/merchants/M7", headers=viewer).get_json()["phone_tail"]
    assert shown == [PHONE[-4:]]
    assert _merchant_ids(client, viewer, PHONE[-4:]) == ["M7"]
    assert _merchant_ids(client, viewer, PHONE[-3:]) == ["M7"]
    # A longer suffix (or the whole number) would confirm digits the viewer never sees.
    for hidden in (PHONE[-5:], PHONE[-8:], PHONE, "9" + PHONE[-4:]):
        assert _merchant_ids(client, viewer, hidden) == [], hidden


def test_recovering_a_number_digit_by_digit_fails(web_app: Flask, db: Store) -> None:
    """The attack: extend a known tail one digit at a time until the search stops matching."""
    with db.transaction() as tx:
        tx.insert("merchants", {"merchant_id": "M7", "name": "Dumplings",
                                "phones": json.dumps([PHONE])}, returning="merchant_id")  # fmt: skip
    client = web_app.test_client()
    viewer = {"Authorization": "Bearer " + create_token(db, "viewer", actor="t")}
    known = PHONE[-4:]
    while len(known) < len(PHONE):
        hits = [d for d in "0123456789" if _merchant_ids(client, viewer, d + known) == ["M7"]]
        if len(hits) != 1:
            break
        known = hits[0] + known
    assert known == PHONE[-4:]


@pytest.mark.parametrize(
    "cell",
    ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\n=1", " =HYPERLINK(\"x\")", "  +1",
     "\u3000=1", "\u00a0=1", "\uff1d1+1", "\uff0b1", "\uff0d1", "\uff20SUM(A1)", " \uff1d1",
     "\u200b=1", "\tplain", "\rplain", "\ufe661"],
)  # fmt: skip
def test_formula_cells_are_escaped(cell: str) -> None:
    assert escape_formula(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Noodle House", "面馆", " plain", "6222****1234", "", "a=b"])
def test_plain_cells_are_kept(cell: str) -> None:
    assert escape_formula(cell) == cell


@pytest.mark.parametrize("value", [None, 0, -5, 123456])
def test_non_text_cells_are_kept(value: object) -> None:
    assert escape_formula(value) == value


def test_exported_merchant_name_cannot_run_as_a_formula(
    db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    evil = ' \uff1dHYPERLINK("http://evil.example","x")'
    with db.transaction() as tx:
        tx.insert("merchants", {"merchant_id": "M9", "name": evil}, returning="merchant_id")
    text = as_role("viewer").get("/export/merchants.csv").get_data(as_text=True)
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["name"] == "'" + evil


def test_rejected_upload_shows_no_card_number_anywhere(
    db: Store, as_role: Callable[[str | None], FlaskClient]
) -> None:
    """The error lands in imports.error, the pages, the API, the CSV export and the audit log."""
    client = as_role("admin")
    response = client.post(
        "/imports",
        data={"csrf_token": csrf_token(client), "format": "csv",
              "file": (io.BytesIO(ICBC.replace(b'"6,430.50"', CARD.encode(), 1)), "icbc.csv")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert response.status_code == 422
    [row] = db.query("SELECT error FROM imports")
    assert "line 6 column 收入" in row["error"]
    seen = {
        "imports.error": row["error"],
        "upload answer": response.get_data(as_text=True),
        "imports page": client.get("/imports").get_data(as_text=True),
        "api": client.get("/api/v1/imports").get_data(as_text=True),
        "csv export": client.get("/export/imports.csv").get_data(as_text=True),
        "audit export": client.get("/export/audit.csv").get_data(as_text=True),
        "audit page": client.get("/audit").get_data(as_text=True),
        "audit table": repr(db.query("SELECT * FROM audit_log")),
    }
    for where, text in seen.items():
        assert "****-****-****-1111" in text, where  # the located error is there, masked
        assert CARD not in text and "4111111111111111" not in text, where
        assert not re.search(r"4111\D{0,3}1111\D{0,3}1111", text), where
