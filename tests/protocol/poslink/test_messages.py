"""Message codec: shared vectors both ways, round-trips, garbage, PAN masking, totals."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from settleguard.protocol.errors import LocalProtocolError, RemoteProtocolError
from settleguard.protocol.poslink import (
    BatchCloseRequest,
    BatchCloseResponse,
    EdcTotal,
    HostInformation,
    LocalDetailReportRequest,
    LocalTotalReportResponse,
    ResponseStatus,
    decode_request,
    decode_response,
    describe_response,
    encode_request,
    encode_response,
    mask_pan,
    totals_from_batch_close,
    totals_from_report,
)
from settleguard.protocol.poslink.fields import EDC_ORDER, FIELDS
from settleguard.protocol.poslink.framing import Frame, FrameDecoder

from tests.protocol.poslink.vectors import FS, US, VECTORS, wire


def frame_of(raw: bytes) -> Frame:
    decoder = FrameDecoder()
    decoder.feed(raw)
    token = decoder.next_token()
    assert isinstance(token, Frame), token
    return token


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_encoder_matches_vector(vector) -> None:
    encode = encode_request if vector.is_request else encode_response
    assert encode(vector.event) == wire(vector.payload)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_decoder_matches_vector(vector) -> None:
    decode = decode_request if vector.is_request else decode_response
    assert decode(frame_of(wire(vector.payload))) == vector.event


def test_error_response_meaning() -> None:
    status = ResponseStatus("100006", "BATCH FAILED")
    assert not status.ok and "batch close failed" in status.meaning
    assert describe_response("000000") == "OK"
    assert "unknown response code 424242" == describe_response("424242")


def test_unexpected_response_command_is_rejected_with_offset() -> None:
    raw = wire(f"0{FS}R01{FS}1.35{FS}000000{FS}OK")
    with pytest.raises(RemoteProtocolError, match="expected B01") as info:
        decode_response(frame_of(raw), "B01")
    assert info.value.offset == 3


def test_bad_amount_names_the_field_and_offset() -> None:
    raw = wire(f"0{FS}B01{FS}1.35{FS}000000{FS}OK{FS}{FS}1{FS}12x{FS}{FS}{FS}")
    with pytest.raises(RemoteProtocolError, match="credit amount") as info:
        decode_response(frame_of(raw))
    assert raw[info.value.offset : info.value.offset + 3] == b"12x"


def test_full_pan_in_journal_is_masked_and_never_kept() -> None:
    pan = "4111111111111111"
    payload = (
        f"0{FS}R03{FS}1.35{FS}000000{FS}OK{FS}{FS}1{FS}0{FS}01{FS}01{FS}{FS}500{FS}"
        + US.join([pan, "1", "1229", "", "", "", "01", "DOE/JOHN"])
        + FS
        + US.join(["7", pan, "20240501101500"])
    )
    response = decode_response(frame_of(wire(payload)))
    entry = response.entry
    assert entry is not None and entry.pan_masked_by_decoder
    assert entry.masked_pan == "411111******1111"
    everything = repr(response) + repr(dataclasses.astuple(entry))
    assert pan not in everything
    assert "DOE" not in everything and "1229" not in everything  # holder and expiry dropped


def test_journal_entry_refuses_a_full_pan_directly() -> None:
    with pytest.raises(LocalProtocolError, match="full card number"):
        dataclasses.replace(
            decode_response(frame_of(wire(VECTORS[-1].payload))).entry,  # type: ignore[type-var]
            masked_pan="5500000000000004",
        )


@given(st.text(alphabet="0123456789 -*", max_size=40))
def test_mask_pan_leaves_no_long_digit_run(text: str) -> None:
    masked, _ = mask_pan(text)
    assert not any(len(run) >= 13 for run in masked.replace("-", " ").replace("*", " ").split())


edc_totals = st.builds(
    EdcTotal,
    st.sampled_from(EDC_ORDER),
    st.integers(0, 9999),
    st.integers(0, 10**9),
    st.integers(0, 9999),
    st.integers(0, 10**9),
)


def _unique(totals: list[EdcTotal]) -> tuple[EdcTotal, ...]:
    seen: dict[str, EdcTotal] = {}
    for total in totals:
        if total.count or total.amount or total.refund_count or total.refund_amount:
            seen.setdefault(total.edc, total)
    return tuple(sorted(seen.values(), key=lambda t: EDC_ORDER.index(t.edc)))


@given(st.lists(edc_totals, max_size=7))
def test_r01_round_trip(totals: list[EdcTotal]) -> None:
    response = LocalTotalReportResponse(totals=_unique(totals))
    assert decode_response(frame_of(encode_response(response))) == response


@given(st.lists(edc_totals, max_size=7), st.integers(0, 999999))
def test_b01_round_trip_keeps_counts_and_amounts(totals: list[EdcTotal], batch: int) -> None:
    plain = tuple(
        EdcTotal(t.edc, t.count, t.amount) for t in _unique(totals) if t.count or t.amount
    )
    response = BatchCloseResponse(
        host=HostInformation(batch_number=str(batch)), totals=plain, terminal_id="T1"
    )
    decoded = decode_response(frame_of(encode_response(response)))
    assert decoded == response
    assert totals_from_batch_close(decoded).batch_no == batch


@given(st.integers(0, 9999) | st.none())
def test_r02_round_trip(record: int | None) -> None:
    request = LocalDetailReportRequest(record)
    assert decode_request(frame_of(encode_request(request))) == request


@given(st.binary(max_size=200))
def test_garbage_payload_only_raises_our_error(payload: bytes) -> None:
    raw = encode_raw(payload)
    for decode in (decode_request, decode_response):
        try:
            decode(frame_of(raw))
        except RemoteProtocolError as exc:
            assert exc.offset is not None


def encode_raw(payload: bytes) -> bytes:
    body = payload.replace(b"\x02", b"").replace(b"\x03", b"") + b"\x03"
    check = 0
    for byte in body:
        check ^= byte
    return b"\x02" + body + bytes([check])


@given(
    st.lists(st.sampled_from(["R01", "B01", "R03", "000000", "", "1", "x", "=", US]), max_size=14)
)
def test_structured_garbage_only_raises_our_error(parts: list[str]) -> None:
    raw = wire(FS.join(["0", *parts]))
    try:
        decode_response(frame_of(raw))
    except RemoteProtocolError as exc:
        assert exc.offset is not None and 0 <= exc.offset < len(raw)


def test_totals_mapping() -> None:
    report = decode_response(frame_of(wire(VECTORS[6].payload)))
    assert isinstance(report, LocalTotalReportResponse)
    totals = totals_from_report(report)
    assert (totals.protocol, totals.kind) == ("poslink", "turnover_totals")
    assert [
        (b.name, b.count, b.amount, b.refund_count, b.refund_amount) for b in totals.buckets
    ] == [
        ("credit", 12, 45678, 1, 1500),
        ("debit", 3, 2000, 0, 0),
    ]
    closed = totals_from_batch_close(decode_response(frame_of(wire(VECTORS[4].payload))))  # type: ignore[arg-type]
    assert closed.kind == "end_of_day" and closed.batch_no == 17
    assert closed.terminal_id == "52500001" and closed.terminal_time == "2024-05-01T23:59:00"
    assert closed.total_amount == 78228 + 1500 and closed.host_reconciled is None


def test_local_errors_for_bad_requests() -> None:
    with pytest.raises(LocalProtocolError):
        BatchCloseRequest("2024")
    with pytest.raises(LocalProtocolError):
        LocalDetailReportRequest(10000)
    with pytest.raises(LocalProtocolError):
        ResponseStatus("12", "x")


def test_every_table_row_names_a_source() -> None:
    assert all(spec.source for spec in FIELDS)
    assert any(not spec.confirmed for spec in FIELDS)
