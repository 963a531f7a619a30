"""Run every benchmark in quick mode, one after another, and collect their RESULT lines.

Each benchmark measures its own baseline in the same run and prints a last line starting with
``RESULT``. The machine is shared and noisy: compare ratios, and rerun before quoting figures.
Usage: ``python benchmarks/run_all.py [--quick] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# In the order of the pipeline: agent install -> agent -> ingest -> reconciliation -> dashboard -> whole system.
ORDER = (
    "agent_footprint",
    "agent_backlog",
    "agent_idle",
    "envelope_parse",
    "ingest_stages",
    "ingest",
    "reconcile_engine",
    "reconcile",
    "dashboard",
    "chaos",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="quick mode (the default here)")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names to run")
    args = parser.parse_args()
    names = [n for n in ORDER if (HERE / f"{n}.py").exists() and (not args.only or n in args.only)]
    results: list[tuple[str, str, float]] = []
    failed = 0
    for name in names:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(HERE / f"{name}.py"), "--quick"],
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.monotonic() - started
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
        if done.returncode != 0 or not lines:
            failed += 1
            print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")
            results.append((name, f"FAILED (exit {done.returncode})", elapsed))
        else:
            results.append((name, lines[-1], elapsed))
        print(f"   {results[-1][1]}  ({elapsed:.0f} s)", flush=True)
    print("\nsummary")
    for name, line, elapsed in results:
        print(f"  {name:<18} {line}  [{elapsed:.0f} s]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
