"""What an agent-only install costs a small terminal-side box: disk, start-up time and memory.

Builds a fresh virtualenv with nothing but ``settleguard[agent]`` from this checkout, then
measures:

- ``site_mb``: the size of its site-packages, without pip, setuptools and wheel;
- ``status_ms`` / ``status_rss_mb``: median wall time and the largest peak RSS of
  ``settleguard agent status --json`` (on an empty agent home) over the runs;
- ``help_ms``: median wall time of ``settleguard agent --help``;
- ``python_ms``: the baseline measured in the same run, ``python -c pass`` in that virtualenv,
  so ``ratio = status_ms / python_ms`` says how much the command adds to a bare interpreter.

It also checks that the install holds none of the collector's libraries (Flask, psycopg,
waitress, argon2, smpplib, amqtt, mt-940) and fails if one is there.

Targets: ``site_mb <= 40``, ``status_ms <= 150``, ``status_rss_mb <= 40``.
Last line: ``RESULT site_mb=… status_ms=… status_rss_mb=… help_ms=… python_ms=… ratio=…``.
Usage: ``python benchmarks/agent_footprint.py [--quick] [--runs N] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEFT_OUT = (
    "pip",
    "setuptools",
    "wheel",
    "_distutils_hack",
    "pkg_resources",
    "distutils-precedence",
)
COLLECTOR_ONLY = ("flask", "psycopg", "waitress", "argon2", "smpplib", "amqtt", "mt940")


def build_venv(where: Path) -> Path:
    """Create a virtualenv in ``where`` holding only ``settleguard[agent]``; return its bin/."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    pip = [str(where / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, f"{ROOT}[agent]"], check=True)
    return where / "bin"


def site_packages_mb(venv: Path) -> float:
    """Size of the virtualenv's site-packages in MB, packaging tools left out."""
    (site,) = (venv / "lib").glob("python3*/site-packages")
    total = 0
    for entry in site.iterdir():
        if entry.name.startswith(LEFT_OUT):
            continue
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        total += sum(p.stat().st_size for p in files)
    return total / 1e6


def timed_run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``argv`` once; return (wall milliseconds, peak RSS in MB) of that child alone."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed_ms = (time.perf_counter() - started) * 1000
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        err = child.stderr.read().decode(errors="replace") if child.stderr else ""
        raise SystemExit(f"{' '.join(argv)} exited {child.returncode}: {err[-500:]}")
    return elapsed_ms, usage.ru_maxrss / 1024


def median_of(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall time and the largest peak RSS over ``runs`` runs (after one warm-up)."""
    timed_run(argv, env)
    samples = [timed_run(argv, env) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples)


def collector_libraries_present(python: Path) -> list[str]:
    """Names from COLLECTOR_ONLY that the agent-only virtualenv can import."""
    probe = "import importlib.util,sys;print(' '.join(n for n in sys.argv[1:] if importlib.util.find_spec(n)))"
    out = subprocess.run(
        [str(python), "-c", probe, *COLLECTOR_ONLY], capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted for run_all; same runs")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command")
    parser.add_argument("--keep", type=Path, help="build the virtualenv here and keep it")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="sg-footprint-"))
    venv = args.keep or scratch / "venv"
    try:
        bindir = build_venv(venv)
        present = collector_libraries_present(bindir / "python")
        if present:
            print(f"agent-only install holds collector libraries: {', '.join(present)}")
            return 1
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["SETTLEGUARD_AGENT_HOME"] = str(scratch / "home")
        # Run from the scratch folder, so the checkout's folders cannot shadow the install.
        os.chdir(scratch)
        python_ms, _ = median_of([str(bindir / "python"), "-c", "pass"], env, args.runs)
        command = str(bindir / "settleguard")
        status_ms, status_rss = median_of([command, "agent", "status", "--json"], env, args.runs)
        help_ms, _ = median_of([command, "agent", "--help"], env, args.runs)
        site_mb = site_packages_mb(venv)
    finally:
        os.chdir(ROOT)
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"RESULT site_mb={site_mb:.1f} status_ms={status_ms:.0f} status_rss_mb={status_rss:.1f} "
        f"help_ms={help_ms:.0f} python_ms={python_ms:.0f} ratio={status_ms / python_ms:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
