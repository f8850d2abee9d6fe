"""The emulated catalogue serially and with pytest-xdist, in one invocation: both wall times.

Runs ``pytest <plans> --bench benches/emulated.yaml`` twice, in this order:
serially (``-n 0``), then with ``-n WORKERS --dist worksteal`` (default 2
workers, this machine's cores), each worker opening its own emulated bench. Each run writes its plan
records into its own result set; the two are checked to hold the same plans
with the same outcomes; when they do not, the figures are printed but the
command fails and names the plans that differ (a faster run that lost plans
proves nothing). The goal is parallel ≤ 0.65 × serial.

Figures: ``catalogue_serial_s``, ``catalogue_parallel_s`` (wall, s, interpreter
start and collection included), ``catalogue_parallel_ratio`` (÷ serial),
``catalogue_plans`` (plan records per run).

    .venv/bin/python benchmarks/parallel_catalogue.py                 # the whole catalogue
    .venv/bin/python benchmarks/parallel_catalogue.py testplans/safety -k "E1 or A1 or E2"

The full catalogue takes a quarter of an hour serially on two cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from figures import emit

from hil.report.record import read_records

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benches" / "emulated.yaml"
GOAL_RATIO = 0.65


def run_catalogue(
    plans: list[str], keyword: str | None, workers: int, results: Path, dist: str = "worksteal"
) -> tuple[float, int]:
    """One pytest run; its wall time and exit code."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    argv += ["-n", str(workers), "--bench", str(BENCH), "--hil-results", str(results)]
    if workers:
        argv += ["--dist", dist]
    if keyword:
        argv += ["-k", keyword]
    started = time.monotonic()
    done = subprocess.run(
        [*argv, *plans], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
    )
    wall = time.monotonic() - started
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    print(f"# -n {workers}: exit {done.returncode}, {' '.join(lines[-1:])}", flush=True)
    for line in lines:  # what went wrong, from pytest's short summary
        if line.startswith(("FAILED ", "ERROR ")):
            print(f"#   {line}", flush=True)
    return wall, done.returncode


def outcomes(results: Path) -> Counter[tuple[str, str]]:
    records = read_records(results)
    return Counter((r["plan_id"] + r.get("instance", ""), r["status"]) for r in records)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("plans", nargs="*", default=["testplans"], help="plan files or folders")
    parser.add_argument("-k", dest="keyword", default=None, help="pytest -k selection")
    parser.add_argument("--workers", type=int, default=2, help="xdist workers (default 2)")
    parser.add_argument(
        "--dist",
        default="worksteal",
        help="xdist scheduling (default worksteal: plan durations range from 1 s to minutes)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hil-parallel-") as scratch:
        serial_dir, parallel_dir = Path(scratch) / "serial", Path(scratch) / "parallel"
        plans, keyword = args.plans, args.keyword
        serial_s, serial_rc = run_catalogue(plans, keyword, 0, serial_dir)
        parallel_s, parallel_rc = run_catalogue(
            plans, keyword, args.workers, parallel_dir, args.dist
        )
        serial, parallel = outcomes(serial_dir), outcomes(parallel_dir)
    emit("catalogue_plans", sum(serial.values()), "records")
    emit("catalogue_serial_s", serial_s, "s")
    emit("catalogue_parallel_s", parallel_s, "s")
    emit("catalogue_parallel_ratio", parallel_s / serial_s, f"x (goal <= {GOAL_RATIO})")
    if not serial or serial != parallel or serial_rc != parallel_rc:
        # the figures stand as times, but the runs did not do the same work: say so, fail
        print(
            f"the two runs differ (exit {serial_rc} vs {parallel_rc}); "
            f"only serial: {sorted(serial - parallel)}; only parallel: {sorted(parallel - serial)}",
            file=sys.stderr,
        )
        return 1
    print(f"# {os.cpu_count()} cores, {args.workers} workers, --dist {args.dist}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
