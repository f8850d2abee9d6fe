"""The home hub's plans on the emulated bench (X2 welcome home, X3 household current
limit, X5 leaving home, X7 vacuum and occupancy): each passes with the live hub and
FAILS, for the right reason, with the matching hub defect injected."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.plan.runner import CATEGORY_DEADLINE, CATEGORY_SAFETY
from hil.report.record import Status
from tests.conftest import PLANS
from tests.plan_runs import assert_failed_at, run_plan

X2 = PLANS / "interop" / "X2-welcome-home.yaml"
X3 = PLANS / "interop" / "X3-household-current-limit.yaml"
X5 = PLANS / "interop" / "X5-leaving-home.yaml"
X7 = PLANS / "interop" / "X7-vacuum-and-occupancy.yaml"


@pytest.mark.parametrize("plan", [X2, X3, X5, X7], ids=["X2", "X3", "X5", "X7"])
def test_plan_passes_with_the_live_hub(plan: Path, tmp_path: Path) -> None:
    record = run_plan(plan, [], tmp_path)
    assert record.status is Status.PASSED, record.reason
    assert all(s.status is Status.PASSED for s in record.steps)


@pytest.mark.parametrize(
    ("plan", "defect", "step", "category", "words"),
    [
        (
            X2,
            "hub:no_welcome_scene",
            "lights-and-ac-on",
            CATEGORY_DEADLINE,
            "expected lights.light.on = True and air_conditioner.air-conditioner.on = True",
        ),
        (
            X3,
            "hub:ignores_household_limit",
            "back-under-limit",
            CATEGORY_DEADLINE,
            "observed charger.EVSE_Status.MeasuredCurrent = 32 A at the deadline",
        ),
        (
            X5,
            "hub:no_leaving_notice",
            "phone-notified",
            CATEGORY_DEADLINE,
            "observed phone.notifications.count = 0 at the deadline",
        ),
        (
            X7,
            "hub:vacuum_not_docked",
            "heads-for-dock",
            CATEGORY_DEADLINE,
            "observed robot_vacuum.vacuum.status = paused at the deadline",
        ),
    ],
    ids=["X2-no-welcome", "X3-ignores-limit", "X5-no-notice", "X7-not-docked"],
)
def test_plan_fails_on_hub_defect(
    plan: Path, defect: str, step: str, category: str, words: str, tmp_path: Path
) -> None:
    record = run_plan(plan, [defect], tmp_path)
    assert_failed_at(record, step, category, words)


def test_x3_fails_when_the_hub_sends_a_limit_below_6_a(tmp_path: Path) -> None:
    record = run_plan(X3, ["hub:sheds_below_minimum"], tmp_path)
    assert record.status is Status.FAILED, f"sheds_below_minimum was not caught: {record.reason}"
    # the invariant, watched while the step waits for the pause, sees the forbidden
    # limit on the wire and fails the step with it
    assert record.category == CATEGORY_SAFETY
    assert "step pauses " in record.reason
    assert "invariant never-below-minimum" in record.reason
    assert "charger.HUB_ChargeLimit.CurrentLimit = 4.1" in record.reason
