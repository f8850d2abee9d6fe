"""hil plans schema/validate/show, and the committed schema kept in sync."""

from __future__ import annotations

import json
import subprocess
import sys

from hil.plan.tools import explore_files, plan_files, schema, schema_text
from tests.conftest import PLANS, ROOT

SCHEMA = PLANS / "plan.schema.json"


def test_committed_schema_is_in_sync() -> None:
    assert SCHEMA.read_text() == schema_text(), (
        "run: hil plans schema -o testplans/plan.schema.json"
    )


def test_every_shipped_plan_points_editors_at_the_schema() -> None:
    for plan in plan_files([PLANS]):  # not explore files: the plan schema would misguide
        first = plan.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), plan
        target = (plan.parent / first.split("=", 1)[1]).resolve()
        assert target == SCHEMA.resolve(), plan


def test_schema_accepts_durations_as_text_and_knows_every_step_kind() -> None:
    body = schema()
    assert body["$schema"].startswith("https://json-schema.org/")
    step = body["$defs"]["Step"]["properties"]
    assert {"send", "set", "call", "expect", "measure", "wait", "prompt", "group"} <= set(step)
    wait = body["$defs"]["Wait"]["properties"]["duration"]
    assert {"type": "string"}.items() <= wait["anyOf"][1].items()
    assert json.loads(json.dumps(body)) == body


def hil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hil", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_validate_passes_the_shipped_plans() -> None:
    proc = hil("plans", "validate", "testplans")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all valid" in proc.stdout


def test_show_is_a_dry_run_with_parameters_resolved() -> None:
    proc = hil(
        "plans", "show", "testplans/safety/E1-speed-auto-lock.yaml", "--param", "target_kmh=50"
    )
    assert proc.returncode == 0, proc.stderr
    assert "parameters: threshold_kmh=20, lock_bound=0.5, target_kmh=50, accel=5" in proc.stdout
    assert "drive-off: send ev.HIL_VehicleSim (TargetSpeed=50 km/h, Gear=D" in proc.stdout
    assert "after ev.DRIVE_Status.VehicleSpeed rose through 20 km/h" in proc.stdout


def test_the_catalogue_splits_into_plans_and_explore_files() -> None:
    plans, explores = set(plan_files([PLANS])), set(explore_files([PLANS]))
    assert not plans & explores
    assert {p.stem.split("-")[0] for p in explores} == {"XE1", "XE2", "XE3"}
    assert all(p.parent.name != "explore" for p in plans)
    assert {p.name for p in plans} >= {"E1-speed-auto-lock.yaml"}
