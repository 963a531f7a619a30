"""Application acks: canonical encoding, strict decoding, garbage handling."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from settleguard.protocol.acks import (
    MAX_ACKS,
    Ack,
    AckError,
    decode_acks,
    encode_acks,
)
from settleguard.protocol.canonical import canonical_dumps
from settleguard.protocol.errors import LocalProtocolError, RemoteProtocolError

acks = st.builds(
    Ack,
    seq=st.integers(1, 2**53 - 1),
    status=st.sampled_from(["accepted", "duplicate", "rejected", "conflict"]),
    reason=st.none()
    | st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=50),
)
agent_ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{2,20}", fullmatch=True)


def test_encoding_is_canonical_json() -> None:
    payload = encode_acks("shop-0001", [Ack(1, "accepted"), Ack(2, "rejected", "bad_signature")])
    assert payload == (
        b'{"acks":[{"reason":null,"seq":1,"status":"accepted"},'
        b'{"reason":"bad_signature","seq":2,"status":"rejected"}],"agent_id":"shop-0001"}'
    )


@given(agent_ids, st.lists(acks, min_size=1, max_size=20))
def test_encoding_equals_rfc8785(agent_id: str, items: list[Ack]) -> None:
    expected = canonical_dumps({"agent_id": agent_id, "acks": [a.to_json() for a in items]})
    assert encode_acks(agent_id, items) == expected


@given(agent_ids, st.lists(acks, min_size=1, max_size=20))
def test_round_trip(agent_id: str, items: list[Ack]) -> None:
    assert decode_acks(encode_acks(agent_id, items)) == (agent_id, items)


def test_non_canonical_but_strict_json_is_accepted() -> None:
    payload = b'{ "agent_id": "shop-0001", "acks": [ {"status": "duplicate", "seq": 7, "reason": null} ] }'
    assert decode_acks(payload) == ("shop-0001", [Ack(7, "duplicate")])


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[]",
        b'{"agent_id":"shop-0001"}',
        b'{"agent_id":"shop-0001","acks":[],"x":1}',
        b'{"agent_id":"shop-0001","acks":[]}',
        b'{"agent_id":"Shop 1","acks":[{"seq":1,"status":"accepted","reason":null}]}',
        b'{"agent_id":"shop-0001","acks":[{"seq":1,"status":"accepted"}]}',
        b'{"agent_id":"shop-0001","acks":[{"seq":1.0,"status":"accepted","reason":null}]}',
        b'{"agent_id":"shop-0001","acks":[{"seq":true,"status":"accepted","reason":null}]}',
        b'{"agent_id":"shop-0001","acks":[{"seq":0,"status":"accepted","reason":null}]}',
        b'{"agent_id":"shop-0001","acks":[{"seq":1,"status":"ok","reason":null}]}',
        b'{"agent_id":"shop-0001","acks":[{"seq":1,"status":"rejected","reason":""}]}',
        b'{"agent_id":"shop-0001","agent_id":"shop-0002","acks":[]}',
        b'{"agent_id":"shop-0001","acks":[[[[1]]]]}',
        b'{"agent_id":"shop-0001","acks":NaN}',
        b"\xff\xfe",
    ],
)
def test_malformed_payloads_raise_ack_error(payload: bytes) -> None:
    with pytest.raises(AckError) as info:
        decode_acks(payload)
    assert isinstance(info.value, RemoteProtocolError)


def test_too_many_acks() -> None:
    many = [Ack(i, "accepted") for i in range(1, MAX_ACKS + 2)]
    with pytest.raises(LocalProtocolError):
        encode_acks("shop-0001", many)


@pytest.mark.parametrize(
    ("args", "agent_id"),
    [
        ({"seq": 0, "status": "accepted"}, "shop-0001"),
        ({"seq": True, "status": "accepted"}, "shop-0001"),
        ({"seq": 1, "status": "maybe"}, "shop-0001"),
        ({"seq": 1, "status": "rejected", "reason": "a\nb"}, "shop-0001"),
        ({"seq": 1, "status": "rejected", "reason": "x" * 201}, "shop-0001"),
        ({"seq": 1, "status": "rejected", "reason": "\ud800"}, "shop-0001"),
    ],
)
def test_bad_acks_are_local_errors(args: dict[str, Any], agent_id: str) -> None:
    with pytest.raises(LocalProtocolError):
        Ack(**args)


@pytest.mark.parametrize("agent_id", ["", "ab", "UPPER", "shop-0001\n"])
def test_encode_refuses_bad_agent_id(agent_id: str) -> None:
    with pytest.raises(LocalProtocolError):
        encode_acks(agent_id, [Ack(1, "accepted")])


@given(st.binary(max_size=300))
def test_garbage_only_raises_ack_error(payload: bytes) -> None:
    try:
        decode_acks(payload)
    except AckError:
        pass


@given(st.data())
def test_mutated_acks_only_raise_ack_error(data: st.DataObject) -> None:
    good = encode_acks("shop-0001", [Ack(1, "accepted"), Ack(2, "conflict", "differs")])
    index = data.draw(st.integers(0, len(good) - 1))
    mutated = good[:index] + data.draw(st.binary(max_size=3)) + good[index + 1 :]
    try:
        agent_id, items = decode_acks(mutated)
    except AckError:
        return
    assert all(isinstance(item, Ack) for item in items) and isinstance(agent_id, str)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"acks":[{"reason":null,"seq":1,"seq":2,"status":"accepted"}],"agent_id":"shop-0001"}',
        b'{"acks":[{"seq":1,"status":"accepted"}],"agent_id":"shop-0001"}',
        b'{"acks":[{"reason":null,"seq":1,"status":"accepted","x":1}],"agent_id":"shop-0001"}',
        b'{"acks":[{"reason":null,"seq":1,"status":"accepted"}],"agent_id":"shop-0001","x":1}',
        b'{"acks":[{"reason":null,"seq":1,"status":"accepted"}],"agent_id":"shop-0001","agent_id":"shop-0001"}',
        b'{"acks":[{"reason":null,"seq":1.0,"status":"accepted"}],"agent_id":"shop-0001"}',
    ],
)
def test_near_canonical_payloads_with_a_broken_rule_are_refused(payload: bytes) -> None:
    with pytest.raises(AckError):
        decode_acks(payload)


def test_errors_carry_the_byte_offset() -> None:
    with pytest.raises(AckError) as info:
        decode_acks(
            b'{"acks":[{"reason":null,"seq":1,"status":"accepted"}],"agent_id":"shop-0001",}'
        )
    assert info.value.offset == 77


@pytest.mark.parametrize("reason", ["\u2028", "\u2029", "/", "é", "\U0001f600", "<>&", 'a"b\\c'])
def test_encoding_of_characters_json_encoders_disagree_on_is_rfc8785(reason: str) -> None:
    items = [Ack(1, "rejected", reason)]
    expected = canonical_dumps({"agent_id": "shop-0001", "acks": [a.to_json() for a in items]})
    assert encode_acks("shop-0001", items) == expected
    assert decode_acks(expected) == ("shop-0001", items)
