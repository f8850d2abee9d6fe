"""Canary runs: known-bad emulators the tool must report as FAIL (confidence in the tool).

``testplans/canaries.yaml`` names, for each injected defect, the plan that
must catch it and the step that must fail. ``run_canaries`` opens the bench
with that defect, runs the plan exactly as a certification run would, and
writes the plan record into the canary directory, where the certificate
finds it. A canary that PASSES is the tool failing, and it is reported so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from hil.errors import ConfigError, HilError
from hil.plan.loader import load_plan
from hil.plan.prompts import AnswersFile
from hil.plan.resolve import resolve_plan
from hil.plan.runner import PlanRunner
from hil.plan.tools import plan_files
from hil.report.certificate import CanaryExpectation
from hil.report.record import StepRecord, write_record
from hil.yamlio import check_spec, load_file, validate

log = logging.getLogger(__name__)
SUPPORTED_SPEC = 1


class CanaryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    plan: str = Field(description="plan id, e.g. E1")
    defect: str | list[str] = Field(description="DEVICE:DEFECT injected into the emulated bench")
    step: str = Field(description="the step that must fail")
    status: Literal["failed", "invalid"] = Field(
        default="failed", description="what the run must report (invalid: a validity gate)"
    )
    time_scale: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="run this canary at another time scale than the bench's (recorded); for "
        "long measurements whose defect shows at any scale",
    )

    @property
    def defects(self) -> tuple[str, ...]:
        return (self.defect,) if isinstance(self.defect, str) else tuple(self.defect)


class CanaryFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    spec: int
    canaries: list[CanaryEntry]


def load_canaries(path: Path) -> list[CanaryExpectation]:
    data, locs = load_file(path, ConfigError)
    check_spec(data, locs, SUPPORTED_SPEC, ConfigError, "canary file")
    parsed = validate(CanaryFile, data, locs, ConfigError)
    return [
        CanaryExpectation(c.plan, c.defects, c.step, c.status, c.time_scale)
        for c in parsed.canaries
    ]


def plan_paths(roots: Sequence[Path]) -> dict[str, Path]:
    """Plan id → file, for every plan under ``roots``."""
    out: dict[str, Path] = {}
    for path in plan_files(roots):
        if path.suffix not in (".yaml", ".yml"):
            continue
        try:
            out[load_plan(path).id] = path
        except HilError:
            continue  # a broken plan is reported by the certification run itself
    return out


def run_canaries(
    bench_path: Path,
    canaries: Sequence[CanaryExpectation],
    plan_roots: Sequence[Path],
    out_dir: Path,
    progress: Callable[[str], None] = print,
) -> int:
    """Run every canary; returns how many were caught (the certificate says which)."""
    paths = plan_paths(plan_roots)
    evidence = out_dir / "evidence"
    caught = 0
    for index, canary in enumerate(canaries, 1):
        label = f"canary {index}/{len(canaries)}: {canary.plan_id} with {', '.join(canary.defects)}"
        path = paths.get(canary.plan_id)
        if path is None:
            progress(f"{label}: no plan {canary.plan_id!r} under {', '.join(map(str, plan_roots))}")
            continue
        try:
            loaded = load_bench(bench_path, canary.defects)
            if canary.time_scale is not None:
                config = loaded.config.model_copy(update={"time_scale": canary.time_scale})
                loaded = replace(loaded, config=config)
            plan = load_plan(path)
            instance = plan.instances(loaded.parameter_overrides(plan.id))[0]
            with Bench(loaded) as bench:
                resolved = resolve_plan(instance, bench.definitions, loaded.capabilities())
                # unattended: operator prompts are answered from the bench's answers file
                answers = loaded.config.answers
                prompter = AnswersFile(bench_path.parent / answers) if answers else None
                runner = PlanRunner(
                    bench,
                    evidence_dir=evidence,
                    prompter=prompter,
                    timeout_s=loaded.config.plan_timeout,
                )
                record = runner.run(resolved)
        except HilError as err:
            progress(f"{label}: could not run ({err})")
            continue
        write_record(record, out_dir)
        failed = [s.id for s in _all_steps(record.steps) if s.status.value == canary.status]
        ok = record.status.value == canary.status and canary.step in failed
        caught += ok
        progress(f"{label}: {'caught' if ok else 'NOT CAUGHT'} ({record.status.value})")
    return caught


def _all_steps(steps: Sequence[StepRecord]) -> list[StepRecord]:
    out: list[StepRecord] = []
    for step in steps:
        out.append(step)
        out.extend(_all_steps(step.children))
    return out
