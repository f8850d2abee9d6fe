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
from hil.report.record import PlanRecord, Status
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


def assert_passed(record: PlanRecord) -> None:
    assert record.status is Status.PASSED, record.reason
    assert all(s.status in (Status.PASSED, Status.SKIPPED) for s in record.steps)
    assert not [s for s in record.steps if s.status is Status.SKIPPED]
    assert record.evidence and all(Path(p).is_file() for p in record.evidence)


def assert_failed_at(record: PlanRecord, step: str, category: str, words: str) -> None:
    assert record.status is Status.FAILED, f"the defect was not caught: {record.reason}"
    assert record.category == category, record.reason
    assert f"step {step} " in record.reason, record.reason
    assert words in record.reason, record.reason
    assert [s.id for s in record.steps if s.status is Status.FAILED] == [step]
    # teardown still ran, and left the device as the next plan expects it
    teardown = [s for s in record.steps if s.section == "teardown"]
    assert teardown and all(s.status is Status.PASSED for s in teardown)
