"""Benchmark of the operator dashboard: p95 latency of its busiest pages through waitress.

Generates, straight into a fresh SQLite store (batched ``executemany`` inserts, the shape ingest,
imports and reconciliation leave behind): merchants with a phone and an active settlement
account, one approved agent and terminal each (a few silent), batches with their received
records, matches and credits for most of them, gaps for about 3 % (open, acknowledged or
resolved, over the last 30 days, every category), an SMS for half of the gaps (a few
escalated), and some imports. Then it serves the real app with waitress (the production
server) on a loopback port in a thread, signs in through the login form (CSRF token included)
and times, over a bounded number of requests each, with a logged-in session:

* **overview** ``/``;
* **merchant list** ``/merchants``: pages starting at a random key, searches by name part,
  id prefix and phone tail, and the ``at_risk`` filter;
* **merchant timeline** ``/merchants/<id>`` for random merchants;
* **gap queue** ``/gaps`` sorted by money or age, from the first page and from random keys
  deep in the queue, some filtered by category.

Last line: ``RESULT p95_ms=… overview_ms=… merchant_ms=… gaps_ms=… list_ms=… timeline_ms=…``
where each ``*_ms`` is a p95, ``merchant_ms`` covers list and timeline requests together and
``p95_ms`` is the worst of overview, merchant and gaps. Target in full mode: ``p95_ms <= 300``.

    .venv/bin/python benchmarks/dashboard.py --quick   # 5k merchants, 50k batches: within a minute
    .venv/bin/python benchmarks/dashboard.py           # 100k merchants, 1M batches
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from settleguard.collector.reconcile.model import GAP_CATEGORIES
from settleguard.collector.web.app import create_app
from settleguard.collector.web.db import close_store, get_store
from settleguard.collector.web.users import add_user

from settleguard.demo.services import start_web

CHUNK = 20_000
WORDS = (
    "Noodle",
    "Tea",
    "Dumpling",
    "Rice",
    "Hotpot",
    "Bakery",
    "Fruit",
    "Pharmacy",
    "Hardware",
    "Books",
    "Mobile",
    "Laundry",
    "Flower",
    "Coffee",
    "Barber",
    "Market",
)
STATUSES = ("open",) * 7 + ("acknowledged",) + ("resolved",) * 2


def _insert(
    db: sqlite3.Connection, table: str, columns: str, rows: Iterator[tuple[Any, ...]]
) -> int:
    """``executemany`` in chunks of :data:`CHUNK` rows; returns how many went in."""
    marks = ", ".join("?" * len(columns.split(",")))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
    chunk: list[tuple[Any, ...]] = []
    total = 0
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            db.executemany(sql, chunk)
            total += len(chunk)
            chunk.clear()
    if chunk:
        db.executemany(sql, chunk)
        total += len(chunk)
    return total


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(path: Path, merchants: int, batches: int, seed: int = 7) -> dict[str, int]:
    """Fill the migrated SQLite store at ``path``; returns row counts per table."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    counts: dict[str, int] = {}
    mid = [f"M{i:07d}" for i in range(merchants)]
    counts["merchants"] = _insert(
        db,
        "merchants",
        "merchant_id, name, phones",
        (
            (
                mid[i],
                f"{WORDS[i % len(WORDS)]} {WORDS[(i // 16) % len(WORDS)]} {i}",
                json.dumps([f"139{i:08d}"]),
            )
            for i in range(merchants)
        ),
    )
    counts["settlement_accounts"] = _insert(
        db,
        "settlement_accounts",
        "id, merchant_id, account_masked, account_hmac, status, effective_at",
        (
            (i + 1, mid[i], f"6222****{i % 10000:04d}", f"{i:064x}", "active", "2020-01-01")
            for i in range(merchants)
        ),
    )
    counts["agents"] = _insert(
        db,
        "agents",
        "agent_id, merchant_id, status, key_id, public_key, last_seen, outbox_depth",
        (
            (
                f"ag-{i}",
                mid[i],
                "approved",
                f"k{i}",
                b"\0" * 32,
                _iso(now - timedelta(hours=30 if i % 997 == 0 else 1)),
                i % 5,
            )
            for i in range(merchants)
        ),
    )
    counts["terminals"] = _insert(
        db,
        "terminals",
        "terminal_id, merchant_id, agent_id, protocol",
        ((f"T{i:07d}", mid[i], f"ag-{i}", "zvt") for i in range(merchants)),
    )
    per_merchant = max(1, batches // merchants)
    start = now - timedelta(days=per_merchant + 2)

    def batch_rows() -> Iterator[tuple[Any, ...]]:
        for j in range(batches):
            i, no = j % merchants, j // merchants + 1
            closed = _iso(start + timedelta(days=no, minutes=i % 600))
            yield (
                j + 1,
                j + 1,
                f"ag-{i}",
                f"T{i:07d}",
                mid[i],
                no,
                closed,
                "156",
                1000 + (j * 7919) % 500_000,
                "c",
            )

    counts["received_records"] = _insert(
        db,
        "received_records",
        "id, agent_id, seq, key_id, record_type, created_at, source, payload_sha256, envelope",
        (
            (
                j + 1,
                f"ag-{j % merchants}",
                j // merchants + 1,
                "k",
                "batch_summary",
                _iso(now),
                "bench",
                "h",
                b"",
            )
            for j in range(batches)
        ),
    )
    counts["batch_summaries"] = _insert(
        db,
        "batch_summaries",
        "id, received_record_id, agent_id, terminal_id, merchant_id, batch_no, closed_at,"
        " currency, total_amount, content_sha256",
        batch_rows(),
    )
    # every tenth batch matched to one credit (enough rows for the timeline's joins)
    matched = range(0, batches, 10)
    counts["credits"] = _insert(
        db,
        "credits",
        "id, account_hmac, account_masked, value_date, amount, currency, reference, entry_id",
        (
            (
                k + 1,
                f"{j % merchants:064x}",
                f"6222****{j % merchants % 10000:04d}",
                (start + timedelta(days=j // merchants + 2)).date().isoformat(),
                1000,
                "156",
                f"PAY{j}",
                f"e{j}",
            )
            for k, j in enumerate(matched)
        ),
    )
    counts["matches"] = _insert(
        db,
        "matches",
        "merchant_id, rule, credit_ids, batch_ids, expected_amount, credited_amount, residual,"
        " match_key, explanation",
        (
            (
                mid[j % merchants],
                "reference",
                f"[{k + 1}]",
                f"[{j + 1}]",
                1000,
                1000,
                0,
                f"m{j}",
                "reference PAY matched",
            )
            for k, j in enumerate(matched)
        ),
    )
    gap_batches = rng.sample(range(batches), max(1, batches * 3 // 100))
    counts["gaps"] = _insert(
        db,
        "gaps",
        "id, dedupe_key, merchant_id, category, amount, currency, due_at, batch_ids, status,"
        " detected_at, since, evidence, reason",
        (
            (
                k + 1,
                f"g{j}",
                mid[j % merchants],
                rng.choice(GAP_CATEGORIES),
                rng.randrange(100, 2_000_000),
                "156",
                (now - timedelta(days=rng.randrange(30))).date().isoformat(),
                f"[{j + 1}]",
                rng.choice(STATUSES),
                _iso(now - timedelta(minutes=rng.randrange(43_000))),
                (now - timedelta(days=rng.randrange(1, 40))).date().isoformat(),
                json.dumps(
                    {"expected": 1000, "rule": "due_unpaid", "account_in_force": "6222****0001"}
                ),
                "no credit on the account in force",
            )
            for k, j in enumerate(gap_batches)
        ),
    )
    counts["alerts"] = _insert(
        db,
        "alerts",
        "dedupe_key, gap_id, merchant_id, phone, locale, text, state, escalated_at,"
        " escalation_reason",
        (
            (
                f"a{k}",
                k + 1,
                mid[j % merchants],
                f"139{j % merchants:08d}",
                "zh-CN",
                "您的结算款未到账",
                "sending" if k % 97 == 0 else "delivered",
                _iso(now) if k % 97 == 0 else None,
                "interrupted while sending" if k % 97 == 0 else None,
            )
            for k, j in enumerate(gap_batches)
            if k % 2 == 0
        ),
    )
    counts["imports"] = _insert(
        db,
        "imports",
        "kind, filename, file_sha256, row_count, file_format, status",
        (("statement", f"bank-{n}.xml", f"{n:064x}", 1000, "camt053", "done") for n in range(30)),
    )
    db.commit()
    db.close()
    return counts


class Session:
    """A signed-in browser stand-in: cookies, the login form's CSRF token, timed GETs."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[int, str, float]:
        started = time.perf_counter()
        with self.opener.open(self.base + path, timeout=60) as response:
            body = response.read().decode("utf-8")
            return response.status, body, (time.perf_counter() - started) * 1000

    def sign_in(self, username: str, password: str) -> None:
        _, html, _ = self.get("/login")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
        assert token, "no csrf_token in the login form"
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrf_token": token.group(1)}
        ).encode()
        with self.opener.open(self.base + "/login", data=form, timeout=60) as response:
            assert "Sign out" in response.read().decode("utf-8"), "sign-in failed"


def p95(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]
    )


def measure(session: Session, paths: Callable[[], str], n: int) -> list[float]:
    """``n`` timed GETs of ``paths()``; every answer must be a 200 page."""
    times = []
    for _ in range(n):
        path = paths()
        status, _, ms = session.get(path)
        assert status == 200, (path, status)
        times.append(ms)
    return times


def workload(db_path: Path, merchants: int, seed: int) -> dict[str, Callable[[], str]]:
    rng = random.Random(seed)
    db = sqlite3.connect(db_path)
    cursors = [
        f"money&after={a}~{i}"
        for a, i in db.execute(
            "SELECT amount, id FROM gaps WHERE status IN ('open', 'acknowledged')"
            " ORDER BY random() LIMIT 200"
        )
    ] + [
        f"age&after={urllib.parse.quote(s)}~{i}"
        for s, i in db.execute(
            "SELECT COALESCE(since, detected_at), id FROM gaps WHERE status IN"
            " ('open', 'acknowledged') ORDER BY random() LIMIT 200"
        )
    ]
    db.close()

    def merchant_list() -> str:
        kind = rng.randrange(5)
        if kind == 0:
            return f"/merchants?after=M{rng.randrange(merchants):07d}"
        if kind == 1:
            return f"/merchants?q={rng.choice(WORDS).lower()}+{rng.choice(WORDS).lower()}"
        if kind == 2:
            return f"/merchants?q=M{rng.randrange(merchants // 100 or 1):05d}"
        if kind == 3:
            return f"/merchants?q={rng.randrange(merchants) % 10_000:04d}"  # a phone tail
        return f"/merchants?status=at_risk&after=M{rng.randrange(merchants):07d}"

    def gap_queue() -> str:
        if rng.random() < 0.3:
            return f"/gaps?sort={rng.choice(['money', 'age'])}"
        if rng.random() < 0.2:
            return f"/gaps?category={rng.choice(GAP_CATEGORIES)}&sort=age"
        return f"/gaps?sort={rng.choice(cursors)}"

    return {
        "overview": lambda: "/",
        "list": merchant_list,
        "timeline": lambda: f"/merchants/M{rng.randrange(merchants):07d}",
        "gaps": gap_queue,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5k merchants, 50k batches")
    parser.add_argument("--merchants", type=int)
    parser.add_argument("--batches", type=int)
    parser.add_argument("--requests", type=int, help="timed requests per page")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    merchants = args.merchants or (5_000 if args.quick else 100_000)
    batches = args.batches or (50_000 if args.quick else 1_000_000)
    requests = args.requests or (40 if args.quick else 200)
    with tempfile.TemporaryDirectory(prefix="sg-dash-bench-") as tmp:
        db_path = Path(tmp) / "collector.db"
        app = create_app(
            {"INSTANCE_PATH": str(Path(tmp) / "instance"), "DATABASE_URL": f"sqlite:///{db_path}"}
        )
        store = get_store(app)
        store.migrate()
        add_user(store, "bench", "viewer", "bench password 1", actor="bench")
        started = time.perf_counter()
        counts = generate(db_path, merchants, batches, args.seed)
        print(f"generated in {time.perf_counter() - started:.1f}s: {counts}", flush=True)
        web = start_web(app)
        try:
            session = Session(web.url)
            session.sign_in("bench", "bench password 1")
            pages = workload(db_path, merchants, args.seed)
            for path in (f() for f in pages.values()):  # warm caches and templates once
                session.get(path)
            times = {name: measure(session, paths, requests) for name, paths in pages.items()}
        finally:
            web.stop()
            close_store(app)
    for name, values in times.items():
        print(
            f"{name:9s} n={len(values)} median={statistics.median(values):.1f}ms"
            f" p95={p95(values):.1f}ms max={max(values):.1f}ms"
        )
    result = {
        "overview_ms": p95(times["overview"]),
        "merchant_ms": p95(times["list"] + times["timeline"]),
        "gaps_ms": p95(times["gaps"]),
        "list_ms": p95(times["list"]),
        "timeline_ms": p95(times["timeline"]),
    }
    worst = max(result["overview_ms"], result["merchant_ms"], result["gaps_ms"])
    print(f"RESULT p95_ms={worst:.0f} " + " ".join(f"{k}={v:.0f}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
