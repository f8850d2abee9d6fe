"""Read a plan file: strict YAML → pydantic, every error at file:line."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from hil.errors import PlanError
from hil.plan.model import SUPPORTED_SPEC, Plan
from hil.yamlio import Locations, check_spec, load_file, validate


@dataclass(frozen=True)
class LoadedPlan:
    plan: Plan
    path: Path
    sha256: str
    locations: Locations

    @property
    def id(self) -> str:
        return self.plan.id


def load_plan(path: Path) -> LoadedPlan:
    data, locs = load_file(path, PlanError)
    check_spec(data, locs, SUPPORTED_SPEC, PlanError, "plan")
    plan = validate(Plan, data, locs, PlanError)
    seen: dict[str, int] = {}
    for section in ("setup", "steps", "teardown"):
        for i, step in enumerate(getattr(plan, section)):
            if step.id is None:
                continue
            if step.id in seen:
                raise locs.error(PlanError, (section, i, "id"), f"duplicate step id {step.id!r}")
            seen[step.id] = i
    return LoadedPlan(plan, path, hashlib.sha256(path.read_bytes()).hexdigest(), locs)
