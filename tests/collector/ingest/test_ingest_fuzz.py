"""Garbage on the ingest path: every message is decided, none stops the worker."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from settleguard.collector.ingest.bundles import import_bundle
from settleguard.collector.ingest.verify import (
    IncomingMessage,
    Keyring,
    ingest_batch,
    verify_message,
)
from settleguard.collector.store import Store, open_store
from settleguard.protocol.envelope import BundleError, encode_bundle

from tests.helpers.records import TestAgent, batch, make_agent


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, TestAgent, TestAgent, bytes]:
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'c.db'}")
    store.migrate()
    a, b = make_agent(store, "agent-a"), make_agent(store, "agent-b")
    return store, a, b, a.seal(batch(), seq=1)


def _mutations(good: bytes) -> st.SearchStrategy[bytes]:
    header, _, _body = good.partition(b"\n")
    return st.one_of(
        st.binary(max_size=300),
        st.integers(0, len(good)).map(lambda n: good[:n]),  # truncated
        st.tuples(st.integers(0, len(good) - 1), st.integers(0, 7)).map(
            lambda t: good[: t[0]] + bytes([good[t[0]] ^ (1 << t[1])]) + good[t[0] + 1 :]
        ),  # one bit flipped
        st.just(good + b" " * 70_000),  # oversized
        st.sampled_from([
            b'{"seq":1,"seq":2}', b'{"seq":1.5}', b'{"seq":NaN}', b"[" * 5000, b"\xff\xfe\xfd",
            b'{"v":1,"type":"batch_summary","body":{"x":1e309}}',
        ]).map(lambda body_: header + b"\n" + body_),  # duplicate keys, floats, nesting, bad UTF-8
    )  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_garbage_is_always_decided(world, data) -> None:  # type: ignore[no-untyped-def]
    store, a, _b, good = world
    payload = data.draw(_mutations(good))
    topic = data.draw(st.sampled_from([a.topic, "sg/v1/a/agent-b/rec", "x/y", "sg/v1/a/A!/rec"]))
    decided = verify_message(IncomingMessage(topic, payload), Keyring(store))
    assert decided is not None
    if payload != good or topic != a.topic:
        assert getattr(decided, "reason", None), "anything but the original must be refused"


@pytest.fixture(scope="module")
def own_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, TestAgent]:
    """A store of its own: the mutated envelopes take arbitrary seqs and batch numbers."""
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('digits') / 'c.db'}")
    store.migrate()
    return store, make_agent(store, "agent-a")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_signed_envelopes_with_any_digits_are_decided_and_stored_or_refused(
    own_world, data
) -> None:  # type: ignore[no-untyped-def]
    # Digits changed inside a correctly signed envelope keep its shape but reach every value
    # check: impossible dates and times (created_at, closed_at), seq and amounts at the edges,
    # currencies. Whatever the parser admits, the store must take: a value that passed the
    # checks and then broke the transaction would make the worker retry that batch for ever.
    store, a = own_world
    signed = a.seal(batch(batch_no=900), seq=900).partition(b"\n")[2]
    digits = [i for i, byte in enumerate(signed) if 0x30 <= byte <= 0x39]
    changes = data.draw(st.lists(st.tuples(st.sampled_from(digits), st.integers(0, 9)),
                                 min_size=1, max_size=6))  # fmt: skip
    mutated = bytearray(signed)
    for at, digit in changes:
        mutated[at] = 0x30 + digit
    acks = ingest_batch(
        store, Keyring(store), [IncomingMessage(a.topic, a.sign_raw(bytes(mutated)))]
    )
    assert len(acks) <= 1 and all(ack.status in ("accepted", "duplicate", "conflict", "rejected")
                                  for _, ack in acks)  # fmt: skip


def test_replays_and_reorders_are_idempotent(world) -> None:  # type: ignore[no-untyped-def]
    store, a, b, _ = world
    base = 100
    payloads = [IncomingMessage(a.topic, a.seal(batch(batch_no=base + i), seq=base + i))
                for i in range(20)]  # fmt: skip
    stream = payloads * 3 + [IncomingMessage(b.topic, payloads[0].payload)]  # + another's topic
    random.Random(4).shuffle(stream)
    before = store.count("received_records")
    acks = ingest_batch(store, Keyring(store), stream)
    assert store.count("received_records") - before == 20
    statuses = [ack.status for _, ack in acks]
    assert statuses.count("accepted") == 20 and statuses.count("duplicate") == 40
    assert statuses.count("rejected") == 1


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400))
def test_bundle_garbage_raises_only_bundle_error(world, data: bytes) -> None:  # type: ignore[no-untyped-def]
    store = world[0]
    try:
        import_bundle(store, b"SGBUNDLE1 " + data, source="fuzz")
    except BundleError:
        pass


def test_bundle_import_twice_is_a_noop(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, a, _, _ = world
    bundle = encode_bundle([a.seal(batch(batch_no=500 + i), seq=500 + i) for i in range(5)]
                           + [b"SG1 garbage"])  # fmt: skip
    first = import_bundle(store, bundle, source="bundle:x")
    second = import_bundle(store, bundle, source="bundle:x")
    assert first.by_status == {"accepted": 5, "rejected": 1}
    assert second.by_status == {"duplicate": 5, "rejected": 1}
