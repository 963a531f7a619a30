"""Fuzz the PAX POSLink parsers: frame decoder, response codec, both connection roles."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from settleguard.protocol.errors import ProtocolError
from settleguard.protocol.poslink.connection import EcrConnection, TerminalConnection
from settleguard.protocol.poslink.framing import Frame, FrameDecoder, encode_frame
from settleguard.protocol.poslink.messages import BatchCloseRequest
from settleguard.protocol.poslink.response_codec import decode_response

from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import bytes_or_mutation, splits
from tests.protocol.poslink.vectors import VECTORS, wire

SEEDS = [wire(v.payload) for v in VECTORS]
TOKENS = (b"\x02", b"\x03", b"\x04", b"\x06", b"\x15", b"\x1c", b"\x1f", b"B01", b"R03")
FIELD = st.one_of(
    st.binary(max_size=24).map(lambda b: bytes(x for x in b if x not in (2, 3, 0x1C))),
    st.sampled_from([b"B01", b"R01", b"R03", b"1.35", b"000000", b"OK", b"12\x1f34\x1f", b""]),
)


@FUZZ
@given(bytes_or_mutation(SEEDS, TOKENS).flatmap(splits))
def test_frame_decoder_any_bytes(chunks: list[bytes]) -> None:
    decoder = FrameDecoder()
    for chunk in chunks:
        try:
            decoder.feed(chunk)
            while decoder.next_token() is not None:
                pass
        except ProtocolError:
            pass


@FUZZ
@given(st.lists(FIELD, max_size=40), st.sampled_from([None, "B01", "R01", "R03"]))
def test_response_codec_any_fields(fields: list[bytes], expected: str | None) -> None:
    raw = encode_frame(fields)
    frame = Frame(raw[1:-2], raw, 0)
    try:
        decode_response(frame, expected)
    except ProtocolError:
        pass


@FUZZ
@given(bytes_or_mutation(SEEDS, TOKENS).flatmap(splits), st.floats(0, 5))
def test_both_roles_any_bytes(chunks: list[bytes], step: float) -> None:
    ecr, terminal = EcrConnection(), TerminalConnection()
    ecr.send(BatchCloseRequest())
    now = 0.0
    for chunk in chunks:
        now += step
        for side in (ecr, terminal):
            try:
                side.receive_data(chunk, now)
                side.tick(now)
                for _ in range(50):
                    if not _is_event(side.next_event()):
                        break
                side.data_to_send()
            except ProtocolError:
                pass


def _is_event(event: object) -> bool:
    from settleguard.protocol.poslink.connection import NeedData

    return not isinstance(event, NeedData)
