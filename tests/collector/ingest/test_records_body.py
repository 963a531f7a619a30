"""The stored ``body`` cut out of the signed bytes equals the body encoded again."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from settleguard.collector.store.records import _body_json
from settleguard.protocol.envelope import key_id_for, verify_and_parse

from tests.helpers.records import TestAgent, batch, heartbeat

KEY = Ed25519PrivateKey.generate()
AGENT = TestAgent("agent-body", KEY, "pw")


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 999_999),
    st.integers(0, 2**40),
    st.integers(1, 2**53 - 1),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True),
)
def test_sliced_body_equals_reencoded_body(batch_no: int, amount: int, seq: int, tid: str) -> None:
    payload = AGENT.seal(batch(terminal_id=tid, batch_no=batch_no, amount=amount), seq)
    envelope = verify_and_parse(payload, KEY.public_key())
    assert _body_json(envelope, payload) == _body_json(envelope)


def test_heartbeat_body_and_mismatched_payload_fall_back() -> None:
    payload = AGENT.seal(heartbeat(), 7)
    envelope = verify_and_parse(payload, KEY.public_key())
    assert _body_json(envelope, payload) == _body_json(envelope)
    other = AGENT.seal(heartbeat(), 8)  # a different seq: suffix does not match, re-encoded
    assert _body_json(envelope, other) == _body_json(envelope)
    assert envelope.key_id == key_id_for(KEY.public_key())
