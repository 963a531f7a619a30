"""The valid-case shortcuts in :mod:`protocol.records` decide exactly as the checks they skip.

Two shortcuts, each with its own proof obligation:

* every record class's ``_plainly_valid()`` may only say True where ``_check()`` (the original
  ``__post_init__`` checks, which word the errors) passes; the fast predicates in
  :mod:`protocol.record_fields` may only accept what their ``check_*`` accepts;
* ``_build_valid(cls, body)`` returns a record only when ``_build(cls, body, "")`` returns an
  equal one, and for decoded JSON it returns ``None`` only when ``_build`` raises.
"""

from __future__ import annotations

import copy
import json
from dataclasses import fields
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import record_fields as _f
from protocol import records as R
from protocol.records import (
    BatchSummary,
    Bucket,
    CardChange,
    Heartbeat,
    JournalEntry,
    Record,
    RecordError,
    TerminalReplaced,
    TurnoverReading,
)
from tests.protocol.test_records import _batch, _reading, batch, heartbeats, records

MAX = 2**53 - 1
FAST_CLASSES = (Bucket, JournalEntry, BatchSummary, TurnoverReading, Heartbeat)
RECORDS_OF: dict[type[Any], st.SearchStrategy[Any]] = {
    BatchSummary: _batch("zvt") | _batch("poslink"),
    TurnoverReading: _reading("zvt") | _reading("poslink"),
    Heartbeat: heartbeats,
}


# --- date and time predicates ----------------------------------------------------------------


def _slow_accepts(check: Any, text: str) -> bool:
    try:
        check("f", text)
    except _f.RecordValueError:
        return False
    return True


@pytest.mark.parametrize("year", ["0000", "0001", "1900", "2000", "2024", "2026", "9999"])
def test_date_predicate_is_the_calendar_except_february_29(year: str) -> None:
    for month in range(0, 14):
        for day in range(0, 33):
            utc = f"{year}-{month:02d}-{day:02d}T12:34:56Z"
            local = utc[:-1]
            valid = _slow_accepts(_f.check_utc_time, utc)
            assert valid == _slow_accepts(_f.check_local_time, local)
            fast = _f.is_utc_time(utc) is not None
            assert (_f.is_local_time(local) is not None) == fast
            assert not fast or valid, utc  # fast => valid
            assert fast or not valid or (month, day) == (2, 29), utc  # valid => fast, but Feb 29


def test_time_predicate_is_the_clock() -> None:
    for hour in range(0, 26):
        for minute in range(0, 62):
            for second in (0, 9, 10, 59, 60, 61, 99):
                utc = f"2026-11-26T{hour:02d}:{minute:02d}:{second:02d}Z"
                assert (_f.is_utc_time(utc) is not None) == _slow_accepts(_f.check_utc_time, utc)
                local = utc[:-1]
                fast = _f.is_local_time(local) is not None
                assert fast == _slow_accepts(_f.check_local_time, local)


near_times = st.from_regex(
    r"[0-9０-９]{1,5}-[0-9]{1,3}-[0-9]{1,3}[T ][0-9]{1,3}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,8})?Z?\n?",
    fullmatch=True,
)


@settings(max_examples=500)
@given(near_times | st.text(max_size=30))
def test_time_predicates_accept_only_what_the_checks_accept(text: str) -> None:
    if _f.is_utc_time(text) is not None:
        assert _slow_accepts(_f.check_utc_time, text)
        assert _slow_accepts(_f.check_any_time, text)
    if _f.is_local_time(text) is not None:
        assert _slow_accepts(_f.check_local_time, text)
        assert _slow_accepts(_f.check_any_time, text)


@given(st.datetimes(min_value=datetime(1, 1, 1)), st.sampled_from(["seconds", "microseconds"]))
def test_time_predicates_accept_real_times(moment: datetime, spec: str) -> None:
    if (moment.month, moment.day) == (2, 29):
        return
    text = moment.isoformat(timespec=spec)
    assert _f.is_local_time(text) is not None or spec != "seconds"
    assert _f.is_utc_time(text + "Z") is not None


# --- _plainly_valid() => _check() ---------------------------------------------------------------

junk = st.one_of(
    st.sampled_from([None, True, False, -1, 0, MAX, MAX + 1, 2**64]),
    st.integers(-3, 3), st.integers(MAX - 1, MAX + 2),
    st.integers(-(2**60), 2**60), st.just(1.0), st.text(max_size=8),
    st.sampled_from(["", "zvt", "poslink", "girocard", "visa", "sale", "void", "978", "97",
                     "2026-02-29T00:00:00Z", "2026-11-26T12:00:00Z", "2026-11-26T12:00:00",
                     "2026-11-26T24:00:00Z", "1.0", "T1", "-T1", "x" * 65, "12**34", "*" * 20,
                     "2026-11-26T12:00:00.1234567Z", "T1\n", "ünï", "M 1"]),
    st.lists(st.integers(0, 3), max_size=2),
)  # fmt: skip


def _raw(cls: type[Any], values: dict[str, Any]) -> Any:
    """An instance whose fields hold ``values`` without running ``__post_init__``."""
    obj = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    return obj


@st.composite
def field_values(draw: st.DrawFn, cls: type[Any]) -> dict[str, Any]:
    """A valid record's fields with some replaced by junk (or by nested junk)."""
    if cls is Bucket:
        base = R.Bucket("girocard", 1, 2, 3, 4, 5, 6)
    elif cls is JournalEntry:
        base = JournalEntry(1, "sale", 100, "123456******1234", "visa", "2026-11-26T12:00:00Z")
    else:
        base = draw(RECORDS_OF[cls])
    values = {f.name: getattr(base, f.name) for f in fields(cls)}
    for name in [n for n in sorted(values) if draw(st.integers(0, 5)) == 0]:
        if name in ("buckets", "journal") and draw(st.booleans()):
            items = list(values[name]) if isinstance(values[name], tuple | list) else []
            pool = [Bucket("visa"), Bucket("girocard"), Bucket("own_brand"), "x", None]
            items.insert(draw(st.integers(0, len(items))), draw(st.sampled_from(pool)))
            values[name] = draw(st.sampled_from([tuple(items), items]))
        else:
            values[name] = draw(junk)
    return values


@pytest.mark.parametrize("cls", FAST_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_plainly_valid_only_where_the_checks_pass(cls: type[Any], data: st.DataObject) -> None:
    obj = _raw(cls, data.draw(field_values(cls)))
    if obj._plainly_valid():
        obj._check()  # must not raise


@pytest.mark.parametrize("cls", FAST_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_plainly_valid_covers_typical_records(cls: type[Any], data: st.DataObject) -> None:
    if cls is Bucket:
        record: Any = data.draw(st.builds(Bucket, st.sampled_from(["girocard", "visa"])))
    elif cls is JournalEntry:
        record = JournalEntry(7, "refund", 5, "******", "girocard", "2026-11-26T13:00:00")
    else:
        record = data.draw(RECORDS_OF[cls])
    blocked = [  # the only valid values the shortcut leaves to the full checks
        getattr(record, name, None) for name in ("closed_at", "read_at", "agent_time")
    ] + [getattr(record, "terminal_local_time", None)]
    if any(isinstance(t, str) and t[5:10] == "02-29" for t in blocked):
        return
    if isinstance(record, Heartbeat) and record.last_error is not None:
        return
    if any(t.time[5:10] == "02-29" for t in getattr(record, "journal", ())):
        return
    assert record._plainly_valid()


def test_classes_without_shortcut_keep_full_checks() -> None:
    for cls in (CardChange, TerminalReplaced):
        assert not hasattr(cls, "_plainly_valid")


# --- _build_valid() against _build() ------------------------------------------------------------


def _mutated_body(draw: st.DrawFn, record: Record) -> Any:
    body: Any = json.loads(json.dumps(record.to_body()))
    for _ in range(draw(st.integers(0, 3))):
        target = body
        nested = [k for k in ("buckets", "journal") if isinstance(body.get(k), list) and body[k]]
        if nested and draw(st.booleans()):
            items = body[draw(st.sampled_from(nested))]
            target = items[draw(st.integers(0, len(items) - 1))]
            if not isinstance(target, dict):
                continue
        action = draw(st.sampled_from(["set", "drop", "add", "list", "item"]))
        keys = sorted(target)
        if action == "set" and keys:
            target[draw(st.sampled_from(keys))] = draw(
                junk.filter(lambda v: not isinstance(v, float))
            )
        elif action == "drop" and keys:
            del target[draw(st.sampled_from(keys))]
        elif action == "add":
            target[draw(st.sampled_from(["extra", "Name", "v"]))] = 1
        elif action == "list" and "buckets" in body:
            body["buckets"] = draw(st.sampled_from([{}, "x", None, [[]], [1]]))
        elif action == "item" and isinstance(body.get("buckets"), list):
            body["buckets"].append(draw(st.sampled_from([{}, {"name": "visa"}, "x"])))
    return body


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_build_valid_agrees_with_build(data: st.DataObject) -> None:
    record = data.draw(records)
    body = _mutated_body(data.draw, record)
    before = copy.deepcopy(body)
    cls = type(record)
    fast = R._build_valid(cls, body)
    assert body == before  # never mutates its input
    try:
        slow = R._build(cls, body, "")
    except RecordError:
        assert fast is None
        return
    assert fast is not None and fast == slow and repr(fast) == repr(slow)


def test_nested_items_have_no_nested_lists() -> None:
    for item_cls in R._NESTED_TYPES.values():
        assert R._SHAPES[item_cls][1] == ()


def test_benchmark_batch_takes_the_shortcuts() -> None:
    record = batch()
    assert record._plainly_valid()
    assert R._build_valid(BatchSummary, json.loads(json.dumps(record.to_body()))) == record
