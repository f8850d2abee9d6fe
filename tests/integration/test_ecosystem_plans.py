"""The ecosystem plans (E10 UDS security access, X4 hub lost, A2 oven remote
preheat, A6 oven mains interruption) on the emulated bench: each passes on the
healthy bench and FAILS, for the right reason, with the matching defect
injected — the same plan file and the same bench (whose short UDS lockout and
hub timeout the plans' parameter defaults match; see benches/emulated.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.plan.runner import CATEGORY_DEADLINE, CATEGORY_SAFETY
from hil.report.record import Status
from tests.conftest import PLANS
from tests.plan_runs import assert_failed_at, run_plan

E10 = PLANS / "safety" / "E10-uds-security-access.yaml"
X4 = PLANS / "interop" / "X4-hub-lost-charger-fallback.yaml"
A2 = PLANS / "safety" / "A2-oven-remote-preheat.yaml"
A6 = PLANS / "safety" / "A6-oven-mains-interruption.yaml"


@pytest.mark.parametrize(
    "plan",
    [E10, X4, A2, A6],
    ids=["E10", "X4", "A2", "A6"],
)
def test_plan_passes_on_healthy_bench(plan: Path, tmp_path: Path) -> None:
    record = run_plan(plan, [], tmp_path)
    assert record.status is Status.PASSED, record.reason
    assert all(s.status is Status.PASSED for s in record.steps)
    assert record.evidence and all(Path(p).is_file() for p in record.evidence)


@pytest.mark.parametrize(
    ("plan", "defect", "step", "category", "words"),
    [
        (
            E10,
            "ev:no_security_lockout",
            "wrong-key-3",
            CATEGORY_DEADLINE,
            "nrc-36-attempts-exceeded: expected ev.uds.last_nrc = 54",
        ),
        (E10, "ev:s3_never_expires", "back-to-default", CATEGORY_DEADLINE, "EXTENDED"),
        (
            X4,
            "charger:no_fallback",
            "falls-back-to-safe-current",
            CATEGORY_DEADLINE,
            # the live hub's limit is the household limit less the appliances' standby
            # draw, so the value kept is close to 16 A; the bound is what must fail
            "expected charger.EVSE_Status.AllowedCurrent ≤ 6.05 A within 2000 ms",
        ),
        (
            A6,
            "oven:resume_after_mains",
            "heater-off-reported",
            CATEGORY_DEADLINE,
            "oven.oven.heater = True at the deadline",
        ),
    ],
    ids=["E10-no-lockout", "E10-s3-never", "X4-no-fallback", "A6-resume"],
)
def test_plan_fails_on_matching_defect(
    plan: Path, defect: str, step: str, category: str, words: str, tmp_path: Path
) -> None:
    record = run_plan(plan, [defect], tmp_path)
    assert_failed_at(record, step, category, words)


def test_a2_fails_when_the_oven_preheats_with_nobody_home(tmp_path: Path) -> None:
    record = run_plan(A2, ["oven:preheat_when_away"], tmp_path)
    assert record.status is Status.FAILED, f"preheat_when_away was not caught: {record.reason}"
    violations = [s for s in record.steps if "invariant no-heat-when-away" in s.message]
    assert violations, "the heater that came on with nobody home was not reported"
    assert violations[0].observed["category"] == CATEGORY_SAFETY
    assert violations[0].observed["values"]["oven.oven.heater"] is True
    # the accepted command fails the call step; the invariant saw the heater
    # that came on with nobody home (on that step or the next)
    assert "step remote-preheat-away " in record.reason
    assert "was accepted; the device must refuse it" in record.reason or (
        record.category == CATEGORY_SAFETY
    )


def test_a2_healthy_refusal_is_recorded_with_the_device_answer(tmp_path: Path) -> None:
    record = run_plan(A2, [], tmp_path)
    step = next(s for s in record.steps if s.id == "remote-preheat-away")
    assert step.status is Status.PASSED
    assert step.observed["refused"]["code"] == -4004
