"""What ``hil plans`` does: validate many plans, show one as a dry run, export the schema."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hil.bench.loader import LoadedBench
from hil.errors import HilError
from hil.explore.loader import is_explore_path, load_explore, rules_for
from hil.plan.loader import load_plan
from hil.plan.model import Plan
from hil.plan.resolve import resolve_plan
from hil.plan.resolved import ResolvedPlan, ResolvedStep

SCHEMA_ID = "https://hil.invalid/schema/plan-1.json"


# files that live among the plans but are not plans
NOT_PLANS = frozenset({"requirements.yaml", "canaries.yaml"})


def catalogue_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Plan and explore files under ``paths`` (files as given; folders searched for *.yaml)."""
    for path in paths:
        if path.is_dir():
            for found in sorted(path.rglob("*.y*ml")):
                if not found.name.startswith(("_", ".")) and found.name not in NOT_PLANS:
                    yield found
        else:
            yield path


def plan_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The plans among ``catalogue_files``: what runs as a plan and leaves a plan record."""
    return (path for path in catalogue_files(paths) if not is_explore_path(path))


def explore_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The explore files among ``catalogue_files`` (hil.explore): searches, not plans."""
    return (path for path in catalogue_files(paths) if is_explore_path(path))


def validate_plans(paths: Iterable[Path], bench: LoadedBench) -> tuple[int, list[str]]:
    """Load and resolve every plan (every matrix instance); all problems, one line each."""
    definitions = bench.definitions()
    capabilities = bench.capabilities()
    problems: list[str] = []
    paths = list(paths)
    count = 0
    for path in plan_files(paths):
        count += 1
        try:
            loaded = load_plan(path)
            for instance in loaded.instances(bench.parameter_overrides(loaded.id)):
                resolve_plan(instance, definitions, capabilities)
        except HilError as err:
            problems.append(str(err))
    for path in explore_files(paths):
        count += 1
        try:
            rules_for(load_explore(path), definitions)
        except HilError as err:
            problems.append(str(err))
    return count, problems


def resolve_for_show(path: Path, bench: LoadedBench, params: dict[str, Any]) -> list[ResolvedPlan]:
    loaded = load_plan(path)
    overrides = {**bench.parameter_overrides(loaded.id), **params}
    return [
        resolve_plan(i, bench.definitions(), bench.capabilities())
        for i in loaded.instances(overrides)
    ]


def show(plans: list[ResolvedPlan]) -> str:
    """The dry run: what would run, with parameters resolved and gated steps marked."""
    out: list[str] = []
    for plan in plans:
        meta = plan.instance.plan
        out.append(f"{plan.id}: {meta.title}  (severity {meta.severity}, version {meta.version})")
        if meta.requirements:
            reqs = ", ".join(
                r.id + (f" [ASIL {r.asil}]" if r.asil else "") for r in meta.requirements
            )
            out.append(f"  requirements: {reqs}")
        if plan.instance.values:
            vals = ", ".join(f"{k}={_fmt(v)}" for k, v in plan.instance.values.items())
            out.append(f"  parameters: {vals}")
        out.append(f"  devices: {', '.join(meta.devices)}")
        if plan.skip:
            out.append(f"  SKIPPED on this bench: {plan.skip}")
        for inv in plan.invariants:
            out.append(f"  invariant {inv.id}: always {inv.expr.source}")
        for section in ("setup", "steps", "teardown"):
            steps: tuple[ResolvedStep, ...] = getattr(plan, section)
            if steps:
                out.append(f"  {section}:")
                out.extend(_step_lines(steps, 4))
        out.append("")
    return "\n".join(out)


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _step_lines(steps: Iterable[ResolvedStep], indent: int) -> Iterator[str]:
    for step in steps:
        gate = f"   [skipped: {step.skip}]" if step.skip else ""
        save = f"  → {step.save_as}" if step.save_as else ""
        yield f"{' ' * indent}{step.id}: {step.title}{save}{gate}"
        yield from _step_lines(step.children, indent + 2)


def schema() -> dict[str, Any]:
    """The JSON Schema of plan files, for editors (yaml-language-server) and CI."""
    body = Plan.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "hil test plan (spec 1)",
        **{k: v for k, v in body.items() if k != "title"},
    }


def schema_text() -> str:
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"
