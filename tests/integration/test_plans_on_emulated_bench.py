"""Every shipped plan passes on the healthy bench and FAILS, for the right
reason, on a bench with the matching injected defect (the same plan file,
a bench override — never a second copy of the plan). The IEC 62301 energy
plans (N1–N4) have their own file, tests/integration/test_energy_plans.py:
they run 15-minute periods, on a bench with a smaller time scale."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.plan.runner import CATEGORY_DEADLINE
from hil.report.record import Status
from tests.conftest import PLANS
from tests.plan_runs import assert_failed_at, run_plan

E1 = PLANS / "safety" / "E1-speed-auto-lock.yaml"
A1 = PLANS / "safety" / "A1-plug-overcurrent.yaml"


@pytest.mark.parametrize("plan", [E1, A1], ids=["E1", "A1"])
def test_plan_passes_on_healthy_bench(plan: Path, tmp_path: Path) -> None:
    record = run_plan(plan, [], tmp_path)
    assert record.status is Status.PASSED, record.reason
    assert all(s.status is Status.PASSED for s in record.steps)
    assert record.evidence and all(Path(p).is_file() for p in record.evidence)


@pytest.mark.parametrize(
    ("plan", "defect", "step", "category", "words"),
    [
        (E1, "ev:slow_auto_lock", "locked-after-threshold", CATEGORY_DEADLINE, "within 500 ms"),
        (E1, "ev:no_auto_lock", "locked-after-threshold", CATEGORY_DEADLINE, "UNLOCKED"),
        (
            A1,
            "smart_plug:no_overcurrent_trip",
            "relay-opens",
            CATEGORY_DEADLINE,
            "smart_plug.switch.on = False",
        ),
        (
            A1,
            "smart_plug:no_overload_event",
            "overload-event",
            CATEGORY_DEADLINE,
            "switch.overload",
        ),
    ],
    ids=["E1-slow", "E1-none", "A1-no-trip", "A1-no-event"],
)
def test_plan_fails_on_matching_defect(
    plan: Path, defect: str, step: str, category: str, words: str, tmp_path: Path
) -> None:
    record = run_plan(plan, [defect], tmp_path)
    assert_failed_at(record, step, category, words)


def test_late_lock_reports_its_measured_latency(tmp_path: Path) -> None:
    record = run_plan(E1, ["ev:slow_auto_lock"], tmp_path)
    step = next(s for s in record.steps if s.id == "locked-after-threshold")
    assert step.observed["anchor"].startswith("ev.DRIVE_Status.VehicleSpeed rose through")
    # the emulator locks 1.0 s after crossing, measured on frame timestamps: never
    # sooner, later by the frame cycle and however late a loaded machine runs its timer
    latency = step.observed["latency_s"]
    assert 0.9 <= latency < 5.0
    reported_ms = float(record.reason.split("first met ")[1].split(" ms after")[0])
    assert abs(reported_ms - latency * 1000) <= 1.0  # the reason quotes the same latency
