"""The shortcuts in the envelope verifier decide exactly as the checks they replace."""

from __future__ import annotations

import base64

import pytest

from protocol.envelope import _CANONICAL_LAST, EnvelopeError, read_header

B64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
KEY_ID = b"k0123456789abcdef"


@pytest.mark.parametrize("last", list(B64URL))
def test_last_signature_character_rule_equals_reencoding(last: int) -> None:
    text = base64.urlsafe_b64encode(bytes(range(64))).rstrip(b"=")[:85] + bytes([last])
    round_trips = base64.urlsafe_b64encode(base64.urlsafe_b64decode(text + b"==")).rstrip(b"=")
    canonical = round_trips == text
    assert (last in _CANONICAL_LAST) == canonical
    payload = b"SG1 " + KEY_ID + b" " + text + b"\n{}"
    if canonical:
        assert read_header(payload).signature == base64.urlsafe_b64decode(text + b"==")
    else:
        with pytest.raises(EnvelopeError, match="not canonical"):
            read_header(payload)
