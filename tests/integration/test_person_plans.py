"""The person's plans on the emulated bench (X1 phone as key, X6 morning scene from
the phone, A3 fridge door alarm on the phone): each passes on the healthy bench and
FAILS, for the right reason, with the matching defect injected — in the car's
digital key, in the appliance, or in the hub between it and the phone."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.plan.runner import CATEGORY_CONDITION, CATEGORY_DEADLINE, CATEGORY_LIMIT
from hil.report.record import Status
from tests.conftest import PLANS
from tests.plan_runs import assert_failed_at, run_plan

A3 = PLANS / "safety" / "A3-fridge-door-alarm.yaml"
X1 = PLANS / "interop" / "X1-phone-as-key.yaml"
X6 = PLANS / "interop" / "X6-morning-scene.yaml"


@pytest.mark.parametrize("plan", [X1, X6, A3], ids=["X1", "X6", "A3"])
def test_plan_passes_on_healthy_bench(plan: Path, tmp_path: Path) -> None:
    record = run_plan(plan, [], tmp_path)
    assert record.status is Status.PASSED, record.reason
    assert all(s.status is Status.PASSED for s in record.steps)
    assert record.evidence and all(Path(p).is_file() for p in record.evidence)


@pytest.mark.parametrize(
    ("plan", "defect", "step", "category", "words"),
    [
        (
            X1,
            "ev:key_accepts_unpaired",
            "unpaired-stays-locked",
            CATEGORY_CONDITION,
            "observed ev.BODY_Status.LockFL = UNLOCKED",
        ),
        (
            X1,
            "ev:key_relay_attack",
            "relayed-stays-locked",
            CATEGORY_CONDITION,
            "observed ev.BODY_Status.LockFL = UNLOCKED",
        ),
        (
            X1,
            "ev:key_slow_unlock",
            "driver-door-unlocks",
            CATEGORY_DEADLINE,
            "expected ev.BODY_Status.LockFL = UNLOCKED within 500 ms",
        ),
        (
            X6,
            "hub:morning_scene_incomplete",
            "scene-reported",
            CATEGORY_DEADLINE,
            "coffee_maker.coffee-maker.status = idle",
        ),
        (
            A3,
            "fridge:no_door_alarm",
            "alarm-raised",
            CATEGORY_DEADLINE,
            "fridge.fridge.door-alarm = not seen at the deadline",
        ),
        (
            A3,
            "fridge:alarm_late",
            "alarm-on-time",
            CATEGORY_LIMIT,
            "fridge.fridge.door-open-time last = 150 s, outside 115 s ≤ x ≤ 125 s",
        ),
        (
            A3,
            "hub:drops_door_alarm",
            "phone-notified",
            CATEGORY_DEADLINE,
            "expected phone.notifications.count = 1 within 10000 ms",
        ),
    ],
    ids=[
        "X1-unpaired",
        "X1-relay",
        "X1-slow",
        "X6-incomplete",
        "A3-no-alarm",
        "A3-late",
        "A3-hub-drops",
    ],
)
def test_plan_fails_on_matching_defect(
    plan: Path, defect: str, step: str, category: str, words: str, tmp_path: Path
) -> None:
    record = run_plan(plan, [defect], tmp_path)
    assert_failed_at(record, step, category, words)
