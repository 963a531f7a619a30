"""What a simulated terminal holds and how it misbehaves, loaded from a TOML or JSON file.

Example ``scenario.toml``::

    terminal_id = "52500001"
    merchant_id = "M0001"
    currency = "978"
    batch_no = 17
    receipt_start = 101
    password = "123456"

    [[buckets]]
    name = "girocard"
    count = 12
    amount = 45678

    [misbehaviour]
    nak_frames = 1        # NAK the next N frames from the ECR
    drop_acks = 0         # ignore (do not ACK) the next N frames; the ECR repeats after T2
    stall_mid_frame_s = 0 # pause this long in the middle of the next frame we send
    eod_silence_s = 0     # stay silent this long after acknowledging End-of-Day
    abort_code = 0x77     # abort the next command with this result code
    line_noise = 0.0      # probability of a garbage byte before each frame we send
    split_writes = false  # write frames in random-size pieces
    corrupt_replies = 0   # MIS-POS: damage the next N replies (only a reprint, 19, recovers)
    result_code = "97"    # MIS-POS: refuse the next request with this 9F14 code …
    result_text = "终端未登记"  # … and this 9F19 text
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class ScenarioBucket:
    """One card-type bucket of the open batch."""

    name: str
    count: int
    amount: int
    refund_count: int = 0
    refund_amount: int = 0


@dataclass(slots=True)
class Misbehaviour:
    """Faults to inject; counters are consumed as the faults fire."""

    nak_frames: int = 0
    drop_acks: int = 0
    stall_mid_frame_s: float = 0.0
    eod_silence_s: float = 0.0
    abort_code: int | None = None
    line_noise: float = 0.0
    split_writes: bool = False
    seed: int = 0
    corrupt_replies: int = 0
    result_code: str | None = None
    result_text: str | None = None


@dataclass(slots=True)
class Scenario:
    """The simulated terminal's state: identity, the open batch, and faults."""

    terminal_id: str = "52500001"
    merchant_id: str = "M0001"
    currency: str = "978"
    batch_no: int = 1
    receipt_start: int = 1
    password: str = "123456"
    buckets: list[ScenarioBucket] = field(
        default_factory=lambda: [
            ScenarioBucket("girocard", 12, 45678),
            ScenarioBucket("visa", 3, 12000, refund_count=1, refund_amount=1500),
            ScenarioBucket("eurocard", 5, 20550),
        ]
    )
    misbehaviour: Misbehaviour = field(default_factory=Misbehaviour)

    @property
    def receipt_end(self) -> int:
        """Last receipt number of the open batch (start + transactions - 1)."""
        count = sum(b.count + b.refund_count for b in self.buckets)
        return self.receipt_start + max(count, 1) - 1

    def close_batch(self) -> None:
        """Start a new, empty batch after End-of-Day (numbers move on, totals reset)."""
        self.receipt_start = self.receipt_end + 1
        self.batch_no += 1
        self.buckets = []

    def add_sale(self, bucket: str, amount: int) -> None:
        """Book one sale into ``bucket`` (creating it), as if a card was paid at the till."""
        for index, existing in enumerate(self.buckets):
            if existing.name == bucket:
                self.buckets[index] = replace(
                    existing, count=existing.count + 1, amount=existing.amount + amount
                )
                return
        self.buckets.append(ScenarioBucket(bucket, 1, amount))


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the file and the key."""


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario from ``.toml`` or ``.json``.

    :raises ScenarioError: unreadable file, unknown keys or wrong types
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    return scenario_from_dict(data, source=str(path))


def scenario_from_dict(data: dict[str, Any], *, source: str = "<scenario>") -> Scenario:
    """Build a :class:`Scenario` from plain data, rejecting unknown keys."""
    data = dict(data)
    try:
        buckets = (
            [ScenarioBucket(**b) for b in data.pop("buckets", [])] if "buckets" in data else None
        )
        misbehaviour = Misbehaviour(**data.pop("misbehaviour", {}))
        scenario = Scenario(**data, misbehaviour=misbehaviour)
    except TypeError as exc:
        raise ScenarioError(f"{source}: {exc}") from exc
    if buckets is not None:
        scenario.buckets = buckets
    for bucket in scenario.buckets:
        if type(bucket.amount) is not int or type(bucket.count) is not int or bucket.amount < 0:
            raise ScenarioError(
                f"{source}: bucket {bucket.name!r}: amounts are integer minor units"
            )
    return scenario
