"""Fuzzing settings: ``SETTLEGUARD_FUZZ_EXAMPLES`` examples per property (default 100).

``make test`` runs every module here with the default; ``make fuzz`` runs only the ``fuzz``
marker with 20,000. Every test in this folder is marked ``fuzz`` by :func:`pytest_collection_modifyitems`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("SETTLEGUARD_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 100,  # reproducible in make test; fresh inputs in make fuzz
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)  # fmt: skip
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == HERE:
            item.add_marker(pytest.mark.fuzz)
