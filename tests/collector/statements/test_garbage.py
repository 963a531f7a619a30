"""Garbage in, only StatementError out: random and mutated bytes into every parser."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from settleguard.collector.statements import StatementError, parse_statement

FIX = Path(__file__).parent / "fixtures"
CASES = [
    ("camt053_v02.xml", "camt053"),
    ("camt053_v08.xml", "camt053"),
    ("camt054_v06.xml", "camt054"),
    ("mt940_rdrc.sta", "mt940"),
    ("ccb_gbk.csv", "csv"),
    ("icbc_bom.csv", "csv"),
    ("payout.csv", "payout"),
]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_our_error(data: bytes, fmt: str) -> None:
    try:
        parse_statement(data, filename="fuzz", fmt=fmt)
    except StatementError:
        pass


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from([b",", b":61:", b"<", b"\n", b'"', b"\xff", b"-"]))
        elif data:
            del data[pos : pos + draw(st.integers(1, 40))]
    return bytes(data)


@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_mutations_raise_only_statement_error(name: str, fmt: str) -> None:
    base = (FIX / name).read_bytes()

    @FAST
    @given(mutated(base))
    def run(data: bytes) -> None:
        _only_our_error(data, fmt)

    run()


@pytest.mark.parametrize("fmt", ["auto", "camt053", "camt054", "mt940", "csv", "payout"])
@FAST
@given(data=st.binary(max_size=400))
def test_random_bytes_raise_only_statement_error(fmt: str, data: bytes) -> None:
    _only_our_error(data, fmt)


@FAST
@given(text=st.text(alphabet=st.sampled_from(list(":0123456789CDRNTF,/\n -{}")), max_size=300))
def test_mt940_like_text(text: str) -> None:
    _only_our_error(b":20:X\n" + text.encode(), "mt940")
