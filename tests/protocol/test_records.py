"""Record types: validation on construction, strict decoding, round trips (docs/architecture.md §3.2, §6)."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from settleguard.protocol.errors import LocalProtocolError, RemoteProtocolError
from settleguard.protocol.records import (
    RECORD_TYPES,
    ZVT_BUCKETS,
    BatchSummary,
    Bucket,
    CardChange,
    Heartbeat,
    JournalEntry,
    Record,
    RecordError,
    RecordValueError,
    TerminalReplaced,
    TurnoverReading,
    contains_pan,
    record_from_body,
    redact_pans,
    sanitize_free_text,
)

SEALED = "sg1." + "A" * 80
MAX = 2**53 - 1

# --- hypothesis strategies (also used by test_envelope.py) -----------------------------------

amounts = st.integers(min_value=0, max_value=MAX)
counts = st.integers(min_value=0, max_value=10**6)
_datetimes = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 31))
utc_times = _datetimes.map(lambda d: d.isoformat(timespec="seconds") + "Z")
local_times = _datetimes.map(lambda d: d.isoformat(timespec="seconds"))
idents = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
names = st.from_regex(r"[a-z0-9_]{1,12}", fullmatch=True)
free_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), max_codepoint=0x2FFFF),
    min_size=1,
    max_size=40,
).filter(lambda t: t.strip() != "" and not contains_pan(t))


def buckets_for(protocol: str) -> st.SearchStrategy[tuple[Bucket, ...]]:
    pool = st.sampled_from(ZVT_BUCKETS) if protocol == "zvt" else names
    return st.lists(pool, unique=True, max_size=7).flatmap(
        lambda ns: st.tuples(
            *[st.builds(Bucket, st.just(n), counts, amounts, counts, amounts, counts, amounts)
              for n in ns]
        )
    )  # fmt: skip


masked_pans = st.builds(
    lambda a, n, b, m: a + m * n + b,
    st.from_regex(r"[0-9]{0,6}", fullmatch=True),
    st.integers(1, 9),
    st.from_regex(r"[0-9]{0,4}", fullmatch=True),
    st.sampled_from("*X"),
)
journal_entries = st.builds(
    JournalEntry,
    receipt_no=counts,
    kind=st.sampled_from(["sale", "refund", "void"]),
    amount=amounts,
    masked_pan=masked_pans,
    card_type=names,
    time=st.one_of(utc_times, local_times),
)
receipts = st.one_of(st.tuples(st.none(), st.none()), st.tuples(counts, counts))


def _batch(protocol: str) -> st.SearchStrategy[BatchSummary]:
    return st.builds(
        lambda r, **kw: BatchSummary(receipt_start=r[0], receipt_end=r[1], **kw),
        receipts,
        terminal_id=idents,
        merchant_id=st.none() | idents,
        batch_no=counts,
        closed_at=utc_times,
        terminal_local_time=st.none() | local_times,
        currency=st.none() | st.from_regex(r"[0-9]{3}", fullmatch=True),
        buckets=buckets_for(protocol),
        host_reconciled=st.none() | st.booleans(),
        protocol=st.just(protocol),
        journal=st.lists(journal_entries, max_size=3).map(tuple),
    )


def _reading(protocol: str) -> st.SearchStrategy[TurnoverReading]:
    return st.builds(
        lambda r, **kw: TurnoverReading(receipt_start=r[0], receipt_end=r[1], **kw),
        receipts,
        terminal_id=st.none() | idents,
        merchant_id=st.none() | idents,
        read_at=utc_times,
        terminal_local_time=st.none() | local_times,
        currency=st.none() | st.just("156"),
        buckets=buckets_for(protocol),
        protocol=st.just(protocol),
        batch_no=st.none() | counts,
        journal=st.lists(journal_entries, max_size=2).map(tuple),
    )


card_changes = st.builds(
    CardChange,
    merchant_id=st.none() | idents,
    change_id=idents,
    old_account_masked=st.none() | st.just("****1234"),
    new_account_masked=st.from_regex(r"[*X]{1,12}[0-9]{4}", fullmatch=True),
    new_account_sealed=st.just(SEALED),
    holder_name=free_text,
    bank=free_text,
    requested_at=utc_times,
    effective_at=st.none() | utc_times,
    review_status=st.none() | st.sampled_from(["requested", "under_review", "active", "rejected"]),
    acquirer_ref=st.none() | free_text,
)
replacements = st.builds(
    lambda fb, **kw: TerminalReplaced(final_batch_no=fb[0], final_batch_closed_at=fb[1], **kw),
    st.one_of(st.tuples(st.none(), st.none()), st.tuples(counts, utc_times)),
    merchant_id=st.none() | idents,
    old_terminal_id=st.just("OLD-1"),
    new_terminal_id=idents.filter(lambda t: t != "OLD-1"),
    replaced_at=utc_times,
)
heartbeats = st.builds(
    Heartbeat,
    outbox_pending=counts,
    oldest_unacked_age_s=st.none() | counts,
    link_state=names,
    agent_version=st.from_regex(r"[0-9a-z.+_-]{1,10}", fullmatch=True),
    terminal_id=st.none() | idents,
    agent_time=utc_times,
    disk_alarm=st.booleans(),
    last_error=st.none() | free_text,
)
records: st.SearchStrategy[Record] = st.one_of(
    _batch("zvt"), _batch("poslink"), _reading("zvt"), _reading("poslink"),
    card_changes, replacements, heartbeats,
)  # fmt: skip


# --- fixtures as plain values ----------------------------------------------------------------


def batch(**changes: Any) -> BatchSummary:
    fields: dict[str, Any] = {
        "terminal_id": "52500001",
        "merchant_id": "M-1001",
        "batch_no": 42,
        "closed_at": "2026-11-26T21:30:05Z",
        "terminal_local_time": "2026-11-26T22:30:05",
        "currency": "978",
        "buckets": (Bucket("girocard", 10, 12_345, 1, 500, 2, 1_000), Bucket("visa", 3, 9_999)),
        "receipt_start": 101,
        "receipt_end": 116,
        "host_reconciled": True,
        "protocol": "zvt",
    }
    fields.update(changes)
    return BatchSummary(**fields)


def test_net_amount_and_total_count_follow_the_documented_formula() -> None:
    b = batch()
    assert b.net_amount == (12_345 - 500 - 1_000) + 9_999
    assert b.total_count == (10 + 1 + 2) + 3
    assert batch(buckets=()).net_amount == 0
    assert batch(buckets=(Bucket("other", refund_count=1, refund_amount=7),)).net_amount == -7


def test_natural_key() -> None:
    assert batch().natural_key() == ("52500001", 42, "2026-11-26T21:30:05Z")


BAD_CONSTRUCTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("float amount", {"buckets": (Bucket("visa"),), "batch_no": 1.0}, "batch_no"),
    ("bool as int", {"batch_no": True}, "batch_no"),
    ("negative batch", {"batch_no": -1}, "batch_no"),
    ("huge batch", {"batch_no": 2**53}, "batch_no"),
    ("non-zvt bucket", {"buckets": (Bucket("unionpay"),)}, "buckets[0].name"),
    ("duplicate bucket", {"buckets": (Bucket("visa"), Bucket("visa"))}, "buckets"),
    ("bucket list not tuple", {"buckets": [Bucket("visa")]}, "buckets"),
    ("local closed_at", {"closed_at": "2026-11-26T21:30:05"}, "closed_at"),
    ("offset closed_at", {"closed_at": "2026-11-26T21:30:05+01:00"}, "closed_at"),
    ("impossible date", {"closed_at": "2026-02-30T21:30:05Z"}, "closed_at"),
    ("zoned local time", {"terminal_local_time": "2026-11-26T22:30:05Z"}, "terminal_local_time"),
    ("alpha currency", {"currency": "EUR"}, "currency"),
    ("bad protocol", {"protocol": "opi"}, "protocol"),
    ("half receipt range", {"receipt_end": None}, "receipt_end"),
    ("bool reconciled", {"host_reconciled": 1}, "host_reconciled"),
    ("empty terminal", {"terminal_id": ""}, "terminal_id"),
    ("newline in terminal", {"terminal_id": "52500001\n"}, "terminal_id"),
    ("journal not entries", {"journal": ({"receipt_no": 1},)}, "journal[0]"),
]


@pytest.mark.parametrize(("case", "changes", "field"), BAD_CONSTRUCTIONS, ids=lambda v: str(v))
def test_bad_values_raise_local_error_naming_the_field(
    case: str, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(RecordValueError) as info:
        batch(**changes)
    assert isinstance(info.value, LocalProtocolError)
    assert info.value.field == field, case


@pytest.mark.parametrize(
    ("bucket_kwargs", "field"),
    [
        ({"name": "Visa"}, "name"),
        ({"name": "visa", "sale_amount": -1}, "sale_amount"),
        ({"name": "visa", "void_count": 2.0}, "void_count"),
        ({"name": "visa", "refund_amount": False}, "refund_amount"),
    ],
)
def test_bucket_validation(bucket_kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(RecordValueError) as info:
        Bucket(**bucket_kwargs)
    assert info.value.field == field


def test_poslink_buckets_are_free_card_type_names() -> None:
    b = batch(protocol="poslink", buckets=(Bucket("unionpay", 1, 100), Bucket("debit_1", 1, 5)))
    assert [x.name for x in b.buckets] == ["unionpay", "debit_1"]


MASKED_PANS = [
    ("411111******1111", True),
    ("4111XXXXXXXX1111", True),
    ("************1111", True),
    ("****", True),
    ("4111111111111111", False),  # the full PAN
    ("4111111*11111111", False),  # 8 trailing digits visible
    ("4111111******111", False),  # 7 leading digits
    ("411111-******1111", False),
    ("411111*****#1111", False),
    ("411111" + "*" * 10 + "1111", False),  # 20 characters
    ("", False),
]


@pytest.mark.parametrize(("masked", "ok"), MASKED_PANS)
def test_journal_masked_pan(masked: str, ok: bool) -> None:
    args = {"receipt_no": 7, "kind": "sale", "amount": 100, "card_type": "visa"}
    if ok:
        assert JournalEntry(masked_pan=masked, time="2026-11-26T10:00:00", **args)
    else:
        with pytest.raises(RecordValueError) as info:
            JournalEntry(masked_pan=masked, time="2026-11-26T10:00:00", **args)
        assert info.value.field == "masked_pan"


def card_change(**changes: Any) -> CardChange:
    fields: dict[str, Any] = {
        "merchant_id": "M-1001",
        "change_id": "chg-1",
        "old_account_masked": "****9876",
        "new_account_masked": "***************1234",
        "new_account_sealed": SEALED,
        "holder_name": "张三",
        "bank": "中国工商银行",
        "requested_at": "2026-11-26T08:00:00Z",
        "effective_at": None,
        "review_status": "requested",
        "acquirer_ref": None,
    }
    fields.update(changes)
    return CardChange(**fields)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"new_account_masked": "6222021234561234"}, "new_account_masked"),
        ({"new_account_masked": "622202******1234"}, "new_account_masked"),  # first 6 shown
        ({"old_account_masked": "****123"}, "old_account_masked"),
        ({"new_account_sealed": "6222021234567890123"}, "new_account_sealed"),
        ({"holder_name": "Zhang 6222 0212 3456 7890 128"}, "holder_name"),  # Luhn-valid PAN
        ({"bank": "  "}, "bank"),
        ({"bank": "ICBC\r\nX"}, "bank"),
        ({"review_status": "approved"}, "review_status"),
        ({"effective_at": "tomorrow"}, "effective_at"),
        ({"acquirer_ref": "4111111111111111"}, "acquirer_ref"),
    ],
)
def test_card_change_validation(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(RecordValueError) as info:
        card_change(**changes)
    assert info.value.field == field


def test_card_change_keeps_unicode_names() -> None:
    assert card_change().holder_name == "张三"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"new_terminal_id": "T-OLD"}, "new_terminal_id"),
        ({"final_batch_no": 5, "final_batch_closed_at": None}, "final_batch_closed_at"),
        (
            {"final_batch_no": None, "final_batch_closed_at": "2026-11-26T08:00:00Z"},
            "final_batch_closed_at",
        ),
    ],
)
def test_terminal_replaced_validation(changes: dict[str, Any], field: str) -> None:
    fields: dict[str, Any] = {
        "merchant_id": None,
        "old_terminal_id": "T-OLD",
        "new_terminal_id": "T-NEW",
        "replaced_at": "2026-11-26T09:00:00Z",
        "final_batch_no": 5,
        "final_batch_closed_at": "2026-11-26T08:59:00Z",
    }
    TerminalReplaced(**fields)
    fields.update(changes)
    with pytest.raises(RecordValueError) as info:
        TerminalReplaced(**fields)
    assert info.value.field == field


def test_heartbeat_defaults_and_last_error_pan_guard() -> None:
    hb = Heartbeat(3, None, "offline", "0.1.0", None, "2026-11-26T09:00:00Z")
    assert hb.disk_alarm is False and hb.last_error is None
    with pytest.raises(RecordValueError):
        replace(hb, last_error="decline for 4111 1111 1111 1111")
    assert replace(hb, last_error=redact_pans("decline for 4111 1111 1111 1111")).last_error == (
        "decline for [PAN]"
    )


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("4111111111111111", True),
        ("4111-1111-1111-1111", True),
        ("6222021234567890128", True),  # 19 digits, Luhn-valid
        ("4111111111111112", False),  # Luhn-invalid
        ("411111111111", False),  # 12 digits
        ("10 02 06 50 03", False),
        ("no digits", False),
    ],
)
def test_contains_pan(text: str, found: bool) -> None:
    assert contains_pan(text) is found


# --- record_from_body -------------------------------------------------------------------------


def body_with(record: Record, path: list[Any], value: Any, delete: bool = False) -> dict[str, Any]:
    body = copy.deepcopy(record.to_body())
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


BAD_BODIES: list[tuple[list[Any], Any, str]] = [
    (["surprise"], 1, "surprise"),
    (["buckets", 0, "surprise"], 1, "buckets[0].surprise"),
    (["batch_no"], "42", "batch_no"),
    (["batch_no"], 42.0, "batch_no"),
    (["batch_no"], True, "batch_no"),
    (["buckets"], {"name": "visa"}, "buckets"),
    (["buckets", 1], ["visa"], "buckets[1]"),
    (["buckets", 1, "sale_amount"], 1.5, "buckets[1].sale_amount"),
    (["buckets", 0, "name"], None, "buckets[0].name"),
    (["journal"], None, "journal"),
    (["host_reconciled"], "true", "host_reconciled"),
    (["currency"], 978, "currency"),
]


@pytest.mark.parametrize(("path", "value", "field"), BAD_BODIES, ids=lambda v: str(v))
def test_record_from_body_names_the_bad_field(path: list[Any], value: Any, field: str) -> None:
    with pytest.raises(RecordError) as info:
        record_from_body("batch_summary", body_with(batch(), path, value))
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.field == field


@pytest.mark.parametrize("missing", ["journal", "merchant_id", "host_reconciled"])
def test_every_field_is_required_on_the_wire(missing: str) -> None:
    with pytest.raises(RecordError) as info:
        record_from_body("batch_summary", body_with(batch(), [missing], None, delete=True))
    assert info.value.field == missing


@pytest.mark.parametrize("record_type", ["", "Batch_Summary", "unknown", None, 5])
def test_unknown_record_type(record_type: Any) -> None:
    with pytest.raises(RecordError) as info:
        record_from_body(record_type, {})
    assert info.value.field == "type"


@pytest.mark.parametrize("body", [None, [], "x", 1])
def test_body_must_be_an_object(body: Any) -> None:
    with pytest.raises(RecordError):
        record_from_body("heartbeat", body)


def test_record_types_cover_every_class() -> None:
    assert set(RECORD_TYPES) == {
        "batch_summary", "turnover_reading", "card_change", "terminal_replaced", "heartbeat",
    }  # fmt: skip


def _json_ready(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_ready(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_ready(v) for v in value)
    return value is None or type(value) in (int, str, bool)


@given(records)
def test_round_trip_through_body(record: Record) -> None:
    body = record.to_body()
    assert _json_ready(body)
    assert record_from_body(record.RECORD_TYPE, body) == record


@given(records, st.data())
def test_garbage_bodies_only_raise_record_error(record: Record, data: st.DataObject) -> None:
    body = record.to_body()
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=5,
    )
    key = data.draw(st.sampled_from([*body, "extra"]))
    body[key] = data.draw(json_values)
    try:
        result = record_from_body(record.RECORD_TYPE, body)
    except RecordError:
        return
    assert result.to_body() == body


@given(st.text(max_size=700), st.integers(1, 500))
def test_sanitized_text_always_fits_a_free_text_field(text: str, max_len: int) -> None:
    cleaned = sanitize_free_text(text, max_len)
    hb = Heartbeat(0, None, "offline", "0.1.0", None, "2026-11-26T09:00:00Z")
    assert replace(hb, last_error=sanitize_free_text(text, 500)).last_error is not None
    assert len(cleaned) <= max(max_len, len("(blank)"))


def test_sanitize_free_text_examples() -> None:
    assert sanitize_free_text("port /dev/ttyUSB0:\n  busy\r\n", 500) == "port /dev/ttyUSB0: busy"
    assert sanitize_free_text("card 4111111111111111 declined", 500) == "card [PAN] declined"
    assert sanitize_free_text("\x00\n", 10) == "(blank)"


def test_card_change_kind_and_class_are_optional_and_left_out_when_unsaid() -> None:
    old_style = card_change().to_body()
    assert "account_kind" not in old_style and "account_class" not in old_style
    assert record_from_body("card_change", old_style) == card_change()
    corporate = card_change(
        account_kind="corporate", account_class=None, holder_declared_personal=False
    )
    body = corporate.to_body()
    assert body["account_kind"] == "corporate" and body["holder_declared_personal"] is False
    assert record_from_body("card_change", body) == corporate
    with pytest.raises(RecordValueError) as info:
        card_change(account_class="III")
    assert info.value.field == "account_class"


@pytest.mark.parametrize(
    ("closed_at", "ok"),
    [("2028-02-29T23:59:59Z", True), ("2000-02-29T00:00:00Z", True),
     ("1900-02-29T00:00:00Z", False), ("2027-02-29T12:00:00Z", False),
     ("0000-01-01T00:00:00Z", False), ("0001-01-01T00:00:00Z", True),
     ("2026-04-31T00:00:00Z", False), ("2026-12-31T23:59:59.123456Z", True),
     ("2026-12-31T24:00:00Z", False), ("2026-12-31T23:60:00Z", False)],
)  # fmt: skip
def test_utc_times_are_real_calendar_times(closed_at: str, ok: bool) -> None:
    if ok:
        assert batch(closed_at=closed_at).closed_at == closed_at
    else:
        with pytest.raises(RecordValueError) as info:
            batch(closed_at=closed_at)
        assert info.value.field == "closed_at"
