"""hil's plan engine, measured the way the peer kit measures OpenHTF and pytest.

Run by the peer kit (``HIL_BENCH=... ./run.sh 3`` in ``shared/peer-bench``, which
puts its ``_pb`` on ``PYTHONPATH``) so the figures sit beside the peers' of the
same pass. Same N (``PB_N``, 1000), same method: ``(wall(N) − wall(1)) / (N − 1)``,
median of ``PB_RUNS`` (5).

In-process (like OpenHTF's ``Test.execute()``): ``PlanRunner.run()`` of a resolved
plan on an open bench (one emulated car on a virtual CAN channel; a fresh bench
per run, so every run's evidence covers the same amount of capture).

  hil_plan_per_step         each step measures ev.DRIVE_Status.VehicleSpeed
                            (0 km/h) against [0, 10]; no report files     [us]
  hil_plan_json_per_step    same, with the evidence folder and the JSON plan
                            record written (what a certification run writes) [us]
  hil_plan_nomeas_per_step  each step a zero wait                          [us]
  hil_plan_fixed            wall of a 1-step plan (measurement), in-process [ms]

The same plans as a ``pytest`` subprocess: ``hil_cli.py``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchplan
from _pb import env_int, note, now  # type: ignore[import-not-found]
from benchplan import write_bench, write_plan
from per_step import emit_per_step, work_folder

from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan
from hil.plan.runner import PlanRunner
from hil.report.record import Status, write_record

N = env_int("PB_N", 1000)
RUNS = env_int("PB_RUNS", 5)


def run_once(bench_path: Path, plan_path: Path, out: Path | None) -> float:
    """Wall time of one ``PlanRunner.run()`` (plus its record, when ``out``)."""
    loaded = load_bench(bench_path)
    with Bench(loaded) as bench:
        plan = load_plan(plan_path).instances()[0]
        resolved = resolve_plan(plan, bench.definitions, loaded.capabilities())
        bench.get("ev").read("DRIVE_Status.VehicleSpeed")  # the car is up and reporting
        t0 = now()
        record = PlanRunner(bench, evidence_dir=out).run(resolved)
        if out is not None:
            write_record(record, out)
        dt: float = now() - t0
    if record.status is not Status.PASSED:
        raise SystemExit(f"{plan_path.name}: {record.status.value}: {record.reason}")
    if len(record.steps) != len(resolved.steps):
        raise SystemExit(f"{plan_path.name}: {len(record.steps)} step records")
    return dt


def in_process(work: Path, bench_path: Path) -> None:
    plans = {
        (v, n): write_plan(work, n, measure=v != "nomeas")
        for v in ("meas", "nomeas")
        for n in (1, N)
    }
    variants = {"meas": ("meas", False), "json": ("meas", True), "nomeas": ("nomeas", False)}
    run_once(bench_path, plans["meas", 1], None)  # warm-up: imports, caches
    wall: dict[str, list[float]] = {v: [] for v in variants}
    fixed: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(RUNS):  # interleaved, so noise spreads over the variants evenly
        for v, (kind, files) in variants.items():
            out = work / f"out-{v}-{r}" if files else None
            wall[v].append(run_once(bench_path, plans[kind, N], out))
            fixed[v].append(run_once(bench_path, plans[kind, 1], out))
            if out is not None:
                records = list(out.glob("*.json"))
                if len(records) != 2:
                    raise SystemExit(f"{out}: {len(records)} plan records, expected 2")
                shutil.rmtree(out)
    names = {"meas": "hil_plan", "json": "hil_plan_json", "nomeas": "hil_plan_nomeas"}
    for v, name in names.items():
        emit_per_step(name, wall[v], fixed[v], N, fixed=v == "meas")


def main() -> None:
    with work_folder("hil-plan-") as work:
        in_process(work, write_bench(work))
    note(f"hil plan N={N} runs={RUNS}")


if __name__ == "__main__":
    main()
