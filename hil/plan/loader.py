"""Read a plan file: strict YAML (through ``hil.plan_cache``) → parameters and matrix →
pydantic, errors at file:line."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from hil import plan_cache
from hil.errors import PlanError
from hil.gc_policy import gc_paused
from hil.plan.model import SUPPORTED_SPEC, Parameter, Plan, Step, Value
from hil.plan.parameters import Instance, expand
from hil.yamlio import Locations, check_spec, pydantic_error, read_file, validate

_PARAMETERS = pydantic.TypeAdapter(dict[str, Parameter])
_MATRIX = pydantic.TypeAdapter(dict[str, list[Value]])


@dataclass(frozen=True)
class PlanInstance:
    """One concrete plan: a matrix combination with every parameter resolved."""

    loaded: LoadedPlan
    plan: Plan
    suffix: str
    values: Mapping[str, Value]

    @property
    def id(self) -> str:
        return self.plan.id + self.suffix


@dataclass(frozen=True)
class LoadedPlan:
    path: Path
    sha256: str
    locations: Locations
    data: Mapping[str, Any]
    parameters: Mapping[str, Parameter]
    matrix: Mapping[str, list[Value]]
    plan: Plan  # with default parameter values (first matrix combination)
    defaults: tuple[tuple[Instance, Plan], ...] = ()  # validated at load, reused

    @property
    def id(self) -> str:
        return self.plan.id

    def instances(self, overrides: Mapping[str, Any] | None = None) -> list[PlanInstance]:
        """Every matrix combination, with parameter ``overrides`` applied."""
        if not overrides and self.defaults:
            return [PlanInstance(self, plan, e.suffix, e.values) for e, plan in self.defaults]
        with gc_paused():
            expanded = expand(
                self.data, self.parameters, self.matrix, overrides or {}, self.locations
            )
            return [self._instance(e) for e in expanded]

    def _instance(self, e: Instance) -> PlanInstance:
        plan = validate(Plan, e.data, self.locations, PlanError)
        return PlanInstance(self, plan, e.suffix, e.values)


def _section(
    adapter: pydantic.TypeAdapter[Any], data: Mapping[str, Any], key: str, locs: Locations
) -> Any:
    try:
        return adapter.validate_python(data.get(key, {}))
    except pydantic.ValidationError as err:
        raise pydantic_error(err, locs, PlanError, prefix=(key,)) from err


def load_plan(path: Path) -> LoadedPlan:
    """Read, check and expand the plan at ``path``; errors are ``PlanError`` at file:line."""
    with gc_paused():  # see hil.gc_policy: the collector was 25-50 % of loading
        return _load_plan(path)


def _load_plan(path: Path) -> LoadedPlan:
    raw, text = read_file(path, PlanError)  # read once: the text to parse, the bytes to hash
    sha = hashlib.sha256(raw).hexdigest()
    data, locs = plan_cache.load_text(text, str(path), sha, PlanError)
    check_spec(data, locs, SUPPORTED_SPEC, PlanError, "plan")
    parameters = _section(_PARAMETERS, data, "parameters", locs)
    matrix = _section(_MATRIX, data, "matrix", locs)
    expanded = expand(data, parameters, matrix, {}, locs)
    plans = [validate(Plan, e.data, locs, PlanError) for e in expanded]
    _check_step_ids(plans[0], locs)
    defaults = tuple(zip(expanded, plans, strict=True))
    return LoadedPlan(path, sha, locs, data, parameters, matrix, plans[0], defaults)


def _walk(
    steps: list[Step], path: tuple[str | int, ...]
) -> Iterator[tuple[Step, tuple[str | int, ...]]]:
    for i, step in enumerate(steps):
        here = (*path, i)
        yield step, here
        if step.group is not None:
            yield from _walk(step.group.steps, (*here, "group", "steps"))


def _check_step_ids(plan: Plan, locs: Locations) -> None:
    seen: set[str] = set()
    for section in ("setup", "steps", "teardown"):
        for step, path in _walk(getattr(plan, section), (section,)):
            if step.id is None:
                continue
            if step.id in seen:
                raise locs.error(PlanError, (*path, "id"), f"duplicate step id {step.id!r}")
            seen.add(step.id)
    names = [inv.id for inv in plan.invariants]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise locs.error(PlanError, ("invariants", i, "id"), f"duplicate invariant id {name!r}")
