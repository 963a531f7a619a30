"""Input generators shared by the fuzz modules: random bytes, random splits, mutations."""

from __future__ import annotations

from hypothesis import strategies as st


@st.composite
def mutated(draw: st.DrawFn, base: bytes, tokens: tuple[bytes, ...] = (b"\x00",)) -> bytes:
    """``base`` with a few bytes flipped, cut, inserted (from ``tokens``) or deleted."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete", "dup"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(tokens)) if draw(st.booleans()) else draw(
                st.binary(min_size=1, max_size=8))  # fmt: skip
        elif op == "dup" and data:
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
        elif data:
            del data[pos : pos + draw(st.integers(1, 40))]
    return bytes(data)


def splits(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """``data`` cut into chunks at random points (a serial line delivers any split)."""
    return st.lists(st.integers(0, len(data)), max_size=12).map(
        lambda cuts: [
            data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)], strict=True)
        ]
    )


def bytes_or_mutation(
    seeds: list[bytes], tokens: tuple[bytes, ...] = (b"\x00",)
) -> st.SearchStrategy[bytes]:
    """Pure random bytes, or a mutation of one of ``seeds``."""
    return st.one_of(
        st.binary(max_size=600),
        st.sampled_from(seeds).flatmap(lambda seed: mutated(seed, tokens)),
    )
