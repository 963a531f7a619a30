"""The gap queue pages by key (no OFFSET): walking the pages yields every gap once, in order."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from settleguard.collector.store import Store
from settleguard.collector.web.read_models import gap_cursor, gap_queue


def _many_gaps(db: Store, n: int = 37) -> None:
    rng = random.Random(5)
    with db.transaction() as tx:
        for i in range(n):
            # few distinct amounts and days: ties must be broken by id, not lost or repeated
            tx.insert(
                "gaps",
                {"dedupe_key": f"g{i}", "merchant_id": f"M{i % 4}", "category": "MISSING",
                 "amount": rng.choice([100, 2500, 2500, 99000]), "currency": "156",
                 "status": rng.choice(["open", "acknowledged", "resolved"]),
                 "since": rng.choice([None, "2024-05-01", "2024-05-03"]),
                 "detected_at": rng.choice(["2024-05-02T10:00:00Z", "2024-05-01T09:00:00Z"])},
            )  # fmt: skip


def _walk(db: Store, sort: str, status: str, limit: int) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    after = ""
    for _ in range(100):
        page = gap_queue(db, sort=sort, status=status, after=after, limit=limit)
        seen += page
        if len(page) < limit:
            return seen
        after = gap_cursor(page[-1], sort)
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("sort", ["money", "age"])
@pytest.mark.parametrize("status", ["open", "resolved", ""])
def test_pages_cover_every_gap_once_in_order(db: Store, sort: str, status: str) -> None:
    _many_gaps(db)
    everything = gap_queue(db, sort=sort, status=status, limit=1000)
    for limit in (1, 4, 10):
        walked = _walk(db, sort, status, limit)
        assert [g["id"] for g in walked] == [g["id"] for g in everything]
    key = (lambda g: (-g["amount"], g["id"])) if sort == "money" else (
        lambda g: (g["since"] if g["since"] is not None else g["detected_at"], g["id"])
    )  # fmt: skip
    assert everything == sorted(everything, key=key)


def test_garbage_cursor_starts_at_the_first_page(db: Store) -> None:
    _many_gaps(db)
    first = gap_queue(db, limit=5)
    for junk in (
        "x",
        "~",
        "12~",
        "abc~3",
        "9" * 40 + "~1",
        "1~" + "9" * 40,
        "'; DROP TABLE gaps;--~1",
    ):
        assert gap_queue(db, after=junk, limit=5) == first


def test_page_and_api_follow_the_cursor(
    as_role: Callable[[str | None], FlaskClient], db: Store
) -> None:
    _many_gaps(db, 120)
    client = as_role("viewer")
    api = client.get("/api/v1/gaps?limit=50&sort=age").get_json()
    second = client.get(f"/api/v1/gaps?limit=50&sort=age&after={api['next_after']}").get_json()
    ids = [g["id"] for g in api["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 50 + len(second["items"])
    html = client.get("/gaps?status=").get_data(as_text=True)
    assert "after=" in html  # a next-page link carrying the key
