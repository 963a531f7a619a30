from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from settleguard.collector.alerts.encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    EncodingError,
    concat_udh,
    encode_gsm7_unpacked,
    encode_part,
    segment,
    text_length,
)

from .smsc import decode_gsm_unpacked

GSM_CHARS = st.sampled_from([c for c in GSM7_BASIC if c != "\x1b"] + list(GSM7_EXTENSION))


@pytest.mark.parametrize(
    ("text", "encoding", "sizes"),
    [
        ("a" * 160, "gsm7", [160]),
        ("a" * 161, "gsm7", [153, 8]),
        ("€" * 80, "gsm7", [160]),  # 2 septets each
        ("€" * 81, "gsm7", [152, 10]),  # an escape pair never straddles parts
        ("中" * 70, "ucs2", [70]),
        ("中" * 71, "ucs2", [67, 4]),
        ("中" * 66 + "😀" + "中" * 5, "ucs2", [66, 7]),  # the pair moves to part 2 whole
        ("", "gsm7", [0]),
    ],
)
def test_segmentation_table(text, encoding, sizes):
    seg = segment(text)
    assert seg.encoding == encoding
    assert [text_length(p, encoding) for p in seg.parts] == sizes
    assert "".join(seg.parts) == text and seg.part_count == len(sizes)


@given(st.text(GSM_CHARS, max_size=700))
def test_gsm7_parts_fit_and_round_trip(text):
    seg = segment(text)
    assert seg.encoding == "gsm7" and "".join(seg.parts) == text
    limit = 160 if seg.part_count == 1 else 153
    for part in seg.parts:
        encoded = encode_gsm7_unpacked(part)
        assert len(encoded) <= limit
        assert decode_gsm_unpacked(encoded) == part


@given(st.text(max_size=400).filter(lambda t: any(ord(c) > 0x7F for c in t)))
def test_ucs2_parts_fit_and_never_split_pairs(text):
    seg = segment(text)
    assert "".join(seg.parts) == text
    if seg.encoding == "ucs2":
        limit = 70 if seg.part_count == 1 else 67
        for part in seg.parts:
            encoded = encode_part(part, "ucs2")
            assert len(encoded) <= 2 * limit
            assert encoded.decode("utf-16-be") == part


def test_gsm7_encoder_refuses_foreign_characters():
    with pytest.raises(EncodingError, match="index 2"):
        encode_gsm7_unpacked("ab中")


def test_udh_builders():
    assert concat_udh(0x42, 3, 2) == bytes.fromhex("0500034203 02".replace(" ", ""))
    assert concat_udh(0x1234, 3, 1, wide_reference=True) == bytes.fromhex("06080412340301")
    for bad in ((256, 2, 1), (1, 2, 3), (1, 0, 0)):
        with pytest.raises(EncodingError):
            concat_udh(*bad)
