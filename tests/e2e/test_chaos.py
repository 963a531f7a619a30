"""Bounded chaos run (``benchmarks/chaos.py``) in ``make test``: zero lost, zero duplicated.

Real Mosquitto with our configuration, two ingest worker processes on SQLite, two agent
processes committing batches continuously; agents, workers and the broker are ``kill -9``-ed
and restarted at random, the broker is taken away (outage) and frozen, and a burst overflows
the broker's queue limit while the workers are frozen. See the benchmark's docstring.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from settleguard.collector.enrollment.broker import mosquitto_binary

from tests.helpers.benchmarks import load_benchmark


def _chaos_module():  # type: ignore[no-untyped-def]
    return load_benchmark("chaos.py", "sg_chaos")


@pytest.mark.slow
@pytest.mark.mosquitto
@pytest.mark.timeout(150)
def test_chaos_nothing_lost_nothing_duplicated(tmp_path: Path) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto binary not installed (Debian: apt-get install mosquitto)")
    chaos = _chaos_module()
    options = chaos.ChaosOptions(
        duration_s=25, agents=2, workers=2, seed=20260301, mean_event_gap_s=1.2, outage_s=3
    )
    result = chaos.run_chaos(options, tmp_path, say=lambda _line: None)
    assert result.drained, "outboxes did not drain after the chaos stopped"
    assert sum(result.kills.values()) >= 10, result.kills
    assert result.kills["broker"] and result.kills["worker"] and result.kills["agent"]
    assert result.outages >= 2 and result.bursts == 1
    assert result.records > 100
    assert (result.lost, result.duplicated, result.bad_signatures) == (0, 0, 0), result.line()
    assert result.conflicts == 0 and result.rejected == 0
    # the faults really happened: records were published more than once (resends after lost
    # acks, killed workers, dropped messages) and each is still stored exactly once
    assert result.republished > 0
    assert result.broker_drops > 0, "the burst did not reach the broker's queue limit"
