"""Read an explore file: strict YAML → pydantic → the bench's names, errors at file:line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.bench.definition import DeviceDefinition
from hil.errors import PlanError, did_you_mean
from hil.explore.model import SUPPORTED_SPEC, ExploreFile
from hil.explore.stimuli import ExploreRule, build_rules
from hil.plan.model import Plan
from hil.yamlio import Locations, check_spec, load_file, validate

SETTLE_STEP = "settle"


@dataclass(frozen=True)
class LoadedExplore:
    path: Path
    locations: Locations
    data: Mapping[str, Any]  # as written: the plan sections are copied into emitted plans
    file: ExploreFile

    @property
    def id(self) -> str:
        return self.file.id


EXPLORE_DIR = "explore"


def is_explore_path(path: Path) -> bool:
    """Explore files live in an ``explore`` folder of a plan root (testplans/explore/)."""
    return path.parent.name == EXPLORE_DIR and path.suffix in (".yaml", ".yml")


def load_explore(path: Path) -> LoadedExplore:
    data, locs = load_file(path, PlanError)
    return from_data(path, data, locs)


def from_data(path: Path, data: Any, locs: Locations) -> LoadedExplore:
    check_spec(data, locs, SUPPORTED_SPEC, PlanError, "explore file")
    if "steps" in data:
        raise locs.error(
            PlanError,
            ("steps",),
            "an explore file has no 'steps': exploration draws them ('explore:' section); "
            "a plan with steps is an ordinary plan",
        )
    if "parameters" in data or "matrix" in data:
        key = "parameters" if "parameters" in data else "matrix"
        raise locs.error(
            PlanError, (key,), f"an explore file has no '{key}': bounds go in 'explore:'"
        )
    file = validate(ExploreFile, data, locs, PlanError)
    # the plan sections (metadata, invariants, setup, teardown) are checked as a plan's
    as_plan = {k: v for k, v in data.items() if k != "explore"}
    validate(Plan, {**as_plan, "steps": [{"wait": {"duration": 0}}]}, locs, PlanError)
    return LoadedExplore(path, locs, data, file)


def rules_for(
    loaded: LoadedExplore, definitions: Mapping[str, DeviceDefinition]
) -> list[ExploreRule]:
    """The file's stimuli as rules, checked against ``definitions`` (the bench's)."""
    for i, device in enumerate(loaded.file.devices):
        if device not in definitions:
            raise loaded.locations.error(
                PlanError,
                ("devices", i),
                f"unknown device {device!r}: the bench does not have it; "
                + did_you_mean(device, definitions),
            )
    return build_rules(
        loaded.file.explore.stimuli, loaded.file.devices, definitions, loaded.locations
    )
