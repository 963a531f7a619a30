"""The loader's fast paths build exactly what the plain constructors and parsers would."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from settleguard.collector.reconcile import (
    AccountChange,
    Batch,
    Bucket,
    Credit,
    Match,
    PayoutRecord,
    ReconcileInputError,
    batch_key,
)
from settleguard.collector.reconcile.build import new_account_change as _new_account_change
from settleguard.collector.reconcile.build import new_batch as _new_batch
from settleguard.collector.reconcile.build import new_bucket as _new_bucket
from settleguard.collector.reconcile.build import new_credit as _new_credit
from settleguard.collector.reconcile.build import new_payout as _new_payout
from settleguard.collector.reconcile.store import _closed, _json_tuple
from settleguard.collector.reconcile.writer import json_list as _json_list
from settleguard.collector.reconcile.writer import match_key

amounts = st.integers(min_value=-(10**12), max_value=10**12)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)


@given(
    tid=st.text(min_size=1, max_size=12),
    no=st.integers(min_value=0, max_value=10**6),
    at=times,
    offset=st.integers(min_value=-14 * 60, max_value=14 * 60),
    spelling=st.sampled_from(["z", "iso", "local", "naive"]),
    net=amounts,
)
def test_fast_batch_equals_constructed_batch(
    tid: str, no: int, at: datetime, offset: int, spelling: str, net: int
) -> None:
    at = at.replace(microsecond=0)
    text = {
        "z": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "iso": at.isoformat(),
        "local": at.astimezone(timezone(timedelta(minutes=offset))).isoformat(),
        "naive": at.replace(tzinfo=None).isoformat(),
    }[spelling]
    closed = _closed(text)
    buckets = (Bucket("UPI", 100, 1, 2, 3, 4, 5),)
    fast = _new_batch("M1", tid, no, closed, "CNY", buckets, net, text)
    plain = Batch("M1", tid, no, closed, "CNY", buckets, net)
    assert fast == plain
    assert hash(fast) == hash(plain)
    assert fast.key == plain.key == batch_key(tid, no, at)
    assert fast.reference is None


@given(st.text(max_size=8), amounts, amounts, amounts, st.integers(0, 9), st.integers(0, 9))
def test_fast_bucket_equals_constructed_bucket(
    name: str, sale: int, refund: int, void: int, sales: int, refunds: int
) -> None:
    fast = _new_bucket(name, sale, refund, void, sales, refunds, 0)
    plain = Bucket(name, sale, refund, void, sales, refunds, 0)
    assert fast == plain
    assert hash(fast) == hash(plain)
    assert fast.net_amount == plain.net_amount


def test_fast_credit_equals_constructed_credit() -> None:
    day = date(2025, 3, 4)
    plain = Credit("E1", "key", "****1234", day, None, 1200, "CNY", "REF", "", "booked", True)
    fast = _new_credit("E1", "key", "****1234", day, None, 1200, "CNY", "REF", "", "booked", True)
    assert fast == plain
    assert hash(fast) == hash(plain)
    assert fast.import_id == ""


def test_fast_payout_equals_constructed_payout() -> None:
    args = ("M1", date(2025, 3, 4), 1000, 6, 994, "****1", "returned", "closed", "R", ("T#1",))
    assert _new_payout(*args) == PayoutRecord(*args)  # type: ignore[arg-type]
    assert hash(_new_payout(*args)) == hash(PayoutRecord(*args))  # type: ignore[arg-type]


AWARE = datetime(2025, 3, 4, 1, 2, tzinfo=UTC)
NAIVE = datetime(2025, 3, 4, 1, 2)


@given(
    status=st.sampled_from(["active", "retired", "under_review", "rejected", "pending"]),
    requested=st.sampled_from([AWARE, NAIVE]),
    effective=st.sampled_from([None, AWARE, NAIVE]),
    changed=st.sampled_from([None, AWARE, NAIVE]),
)
def test_fast_account_change_equals_constructed_one(
    status: str, requested: datetime, effective: datetime | None, changed: datetime | None
) -> None:
    args = (requested, "C1", "M1", "key", "****1", status, effective, changed)
    try:
        plain = AccountChange(*args)  # type: ignore[arg-type]
    except ReconcileInputError as exc:
        with pytest.raises(ReconcileInputError, match=re.escape(str(exc))):
            _new_account_change(*args)
        return
    fast = _new_account_change(*args)
    assert fast == plain
    assert hash(fast) == hash(plain)


@given(
    st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=10), max_size=5),
    st.booleans(),
    st.sampled_from([(",", ":"), (", ", ": ")]),
)
def test_json_tuple_matches_json_loads(
    items: list[str], ascii_only: bool, seps: tuple[str, str]
) -> None:
    text = json.dumps(items, ensure_ascii=ascii_only, separators=seps)
    assert _json_tuple(text) == tuple(json.loads(text))


def test_json_tuple_of_nothing() -> None:
    assert _json_tuple(None) == ()
    assert _json_tuple("") == ()
    assert _json_tuple("[]") == ()


@given(st.lists(st.text(max_size=10), max_size=5))
def test_json_list_matches_json_dumps(items: list[str]) -> None:
    assert _json_list(tuple(items)) == json.dumps(items)


@given(
    keys=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3),
    numbers=st.lists(amounts, min_size=4, max_size=4),
    account=st.one_of(st.none(), st.text(max_size=10)),
    rule=st.sampled_from(["reference", "one_to_one", "aggregated", "subset_sum", "tolerance"]),
)
def test_match_key_is_the_digest_of_the_joined_fields(
    keys: list[str], numbers: list[int], account: str | None, rule: str
) -> None:
    """Stored match keys must not change across versions: the definition, spelled out."""
    expected, actual, residual, covered = numbers
    match = Match(rule, tuple(keys), ("C1",), expected, actual, residual, covered, account)  # type: ignore[arg-type]
    batch_json, credit_json = _json_list(match.batch_keys), _json_list(match.credit_ids)
    fields = ("M1", rule, batch_json, credit_json, *map(str, numbers), account or "")
    digest = hashlib.sha256("\x1f".join(fields).encode()).hexdigest()[:32]
    assert match_key("M1", match, batch_json, credit_json) == f"M1:{digest}"
