"""The ingest benchmark's CPU accounting (``benchmarks/ingest.py``): the per-thread split it
prints for the worker processes must put a thread's CPU on the right side."""

from __future__ import annotations

import os
import threading
import time

from tests.helpers.benchmarks import load_benchmark


def _bench_module():  # type: ignore[no-untyped-def]
    return load_benchmark("ingest.py", "sg_bench_ingest")


def test_thread_split_counts_another_threads_cpu_as_others() -> None:
    bench = _bench_module()
    main0, others0 = bench.thread_split_seconds(os.getpid())

    burnt, release = threading.Event(), threading.Event()

    def burn() -> None:  # 0.2 s of this thread's own CPU, however long the machine takes
        start = time.thread_time()
        while time.thread_time() - start < 0.2:
            sum(range(1000))
        burnt.set()
        release.wait(60)  # a thread's CPU leaves /proc with it: stay until we have read it

    worker = threading.Thread(target=burn)
    worker.start()
    try:
        assert burnt.wait(60)
        main1, others1 = bench.thread_split_seconds(os.getpid())
    finally:
        release.set()
        worker.join(60)
    # /proc counts in clock ticks (10 ms here); the waiting main thread spends next to nothing
    assert others1 - others0 >= 0.15
    assert main1 - main0 < others1 - others0


def test_finishing_reports_each_workers_share_and_the_idle_tail() -> None:
    bench = _bench_module()
    assert bench.finishing([(6000, 2.0)]) == ""  # one worker: no tail to speak of
    line = bench.finishing([(3000, 2.0), (2990, 1.8)])
    assert "3000 records by 2.00 s" in line and "2990 records by 1.80 s" in line
    assert "tail 10% of the round" in line
