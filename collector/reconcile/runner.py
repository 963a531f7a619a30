"""Run reconciliation chunks in worker processes, one store connection each.

Theory of operation (docs/architecture.md §8 "Reconciliation is partitioned by merchant"): a merchant's
reconciliation reads only that merchant's rows and writes only that merchant's results, so
chunks of merchants are independent and can run on every core. :func:`run_chunks` starts a
pool of processes; each opens its own store from the URL (never a connection of the parent),
and takes chunks one at a time from a shared queue (``imap_unordered``): a process that drew
cheap merchants simply takes the next chunk. A chunk reads its inputs in a read transaction
(on SQLite a deferred one: WAL readers do not block each other or the writer), runs the engine
and prepares its rows without any lock, then writes in one write transaction. On SQLite only
one connection can write at a time; the workers take a shared lock around their write
transactions so that they queue in order instead of polling the busy timeout (ingest and
other writers still meet the busy timeout as usual). PostgreSQL writers of distinct merchants
do not conflict and need no lock.

Results do not depend on the number of processes or on which process ran which chunk: every
stored row is keyed by its content (see :mod:`collector.reconcile.writer`); only the order of new
rows' ids may differ. ``tests/collector/reconcile/test_recon_parallel.py`` checks this.

Start method: ``fork`` when the calling process runs a single thread (cheap: nothing is
imported again), else ``spawn`` (a process with threads -- a web server, a connection pool --
must not fork; a spawned worker costs one interpreter start and the imports, ~0.2 s).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from multiprocessing.context import BaseContext
from multiprocessing.util import Finalize
from typing import Any, TypeVar

from settleguard.collector.store import Store, open_store

#: Environment variable overriding the default number of reconciliation processes.
PROCESSES_ENV = "SETTLEGUARD_RECON_PROCESSES"

R = TypeVar("R")
Work = Callable[[Store, Sequence[str], Any, AbstractContextManager[Any] | None], R]


def default_processes() -> int:
    """``$SETTLEGUARD_RECON_PROCESSES`` if set, else the number of CPUs this process may use.

    :raises ValueError: the variable is set but not a positive integer
    """
    text = os.environ.get(PROCESSES_ENV, "").strip()
    if not text:
        if hasattr(os, "sched_getaffinity"):  # CPUs we may run on, not the machine's count
            return len(os.sched_getaffinity(0)) or 1
        return os.cpu_count() or 1
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{PROCESSES_ENV}={text!r}: expected a positive integer")
    return int(text)


def start_context() -> BaseContext:
    """``fork`` in a single-threaded process where available, else ``spawn``."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


# -- in the worker --------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _start_worker(url: str, work: Work[Any], job: Any, lock: Any) -> None:
    store = open_store(url)
    Finalize(store, store.close, exitpriority=10)  # on the pool's orderly close
    _worker.update(store=store, work=work, job=job, lock=lock)


def _run_chunk(ids: Sequence[str]) -> Any:
    w = _worker
    return w["work"](w["store"], ids, w["job"], w["lock"])


# -- in the parent --------------------------------------------------------------------------


def run_chunks(
    url: str,
    chunks: Sequence[Sequence[str]],
    work: Work[R],
    job: Any,
    *,
    processes: int,
    write_lock: bool,
) -> Iterator[R]:
    """Run ``work(store, ids, job, lock)`` for every chunk in ``processes`` worker processes.

    Yields each chunk's result as it finishes (in no particular order). ``work`` and ``job``
    must be picklable (a module-level function; plain data) for the ``spawn`` start method.

    :param url: the store's URL; each worker opens its own store
    :param write_lock: hand ``work`` a lock shared by all workers (SQLite's single writer),
        else ``None``
    """
    context = start_context()
    lock = context.Lock() if write_lock else None
    pool = context.Pool(processes, initializer=_start_worker, initargs=(url, work, job, lock))
    try:
        yield from pool.imap_unordered(_run_chunk, chunks)
        pool.close()  # orderly: workers run their finalizers (close their stores)
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
