"""Run one shipped plan on the emulated bench, as the suite's healthy and
defect runs do: the same plan file, defects injected as a bench override."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan
from hil.plan.runner import PlanRunner
from hil.report.record import PlanRecord
from tests.conftest import EMULATED_BENCH


def run_plan(
    path: Path,
    defects: list[str],
    evidence: Path,
    *,
    params: Mapping[str, Any] | None = None,
    instance: int = 0,
    bench_path: Path = EMULATED_BENCH,
) -> PlanRecord:
    """Open the bench (with ``defects``), run instance ``instance`` of the plan, close."""
    loaded = load_bench(bench_path, defects)
    with Bench(loaded) as bench:
        plan = load_plan(path)
        overrides = {**loaded.parameter_overrides(plan.id), **(params or {})}
        resolved = resolve_plan(
            plan.instances(overrides)[instance], bench.definitions, loaded.capabilities()
        )
        return PlanRunner(bench, evidence_dir=evidence).run(resolved)
