"""Fuzz the import upload form: random files posted by a signed-in operator never give a 500.

A rejected file is answered with a clean 4xx (400 no file, 422 unparseable) and the page
renders; an accepted one with 200. Anything else (a 500, an exception escaping the view) fails.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from settleguard.collector.enrollment.keys import init_keys
from settleguard.collector.web.app import create_app
from settleguard.collector.web.db import close_store, get_store
from settleguard.collector.web.users import hash_password

from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import bytes_or_mutation

FIX = Path(__file__).resolve().parents[1] / "collector" / "statements" / "fixtures"
SEEDS = [p.read_bytes() for p in sorted(FIX.iterdir()) if p.is_file()]
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    tmp = tmp_path_factory.mktemp("upload-fuzz")
    application = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp / "instance"),
                              "DATABASE_URL": f"sqlite:///{tmp / 'c.db'}"})  # fmt: skip
    store = get_store(application)
    store.migrate()
    with store.transaction() as tx:
        tx.insert("users", {"username": "op", "password_hash": hash_password("pw-op-123456"),
                            "role": "operator"})  # fmt: skip
    init_keys(Path(application.config["KEYS_DIR"]))
    yield application
    close_store(application)


@pytest.fixture(scope="module")
def operator(app: Flask) -> tuple[FlaskClient, str]:
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    match = _CSRF.search(html)
    assert match
    token = match.group(1) or match.group(2)
    response = client.post("/login", data={"username": "op", "password": "pw-op-123456",
                                           "csrf_token": token})  # fmt: skip
    assert response.status_code in (302, 303), response.status_code
    html = client.get("/imports").get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, "the imports page has an upload form with a CSRF token"
    return client, match.group(1) or match.group(2)


FORMATS = st.sampled_from(["auto", "camt053", "camt054", "mt940", "csv", "payout", "nonsense"])
NAMES = st.sampled_from(["s.xml", "s.csv", "s.sta", "", "../../etc/passwd", "a\x00b.csv", "名.csv"])


@FUZZ
@given(bytes_or_mutation(SEEDS, (b"<", b",", b":61:", b"\n", b"\xff")), FORMATS, NAMES,
       st.sampled_from([None, "", "nope", "ccb"]))  # fmt: skip
def test_upload_random_files_never_500(
    operator: tuple[FlaskClient, str], data: bytes, fmt: str, name: str, profile: str | None
) -> None:
    client, token = operator
    form: dict[str, object] = {"csrf_token": token, "format": fmt,
                               "file": (io.BytesIO(data), name)}  # fmt: skip
    if profile is not None:
        form["profile"] = profile
    response = client.post("/imports", data=form, content_type="multipart/form-data")
    assert response.status_code < 500, response.get_data(as_text=True)[:2000]
    assert response.status_code in (200, 400, 409, 413, 422), response.status_code
