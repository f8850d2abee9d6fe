"""The car's battery, charging and communication plans (E3–E9, E11, E12) on the
emulated bench: each passes on the healthy bench and FAILS, at the right step
and for the right reason, with the matching defect injected. The car's inlet
is wired to the wallbox on that bench (``ev: wiring: {inlet: charger}``), so
the charging plans run the real control-pilot physics between the two."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.plan.verdicts import CATEGORY_CONDITION, CATEGORY_DEADLINE, CATEGORY_SAFETY
from hil.report.record import Status
from tests.conftest import PLANS
from tests.plan_runs import run_plan

SAFETY = PLANS / "safety"
E3 = SAFETY / "E3-isolation-fault.yaml"
E4 = SAFETY / "E4-follow-pilot-current.yaml"
E5 = SAFETY / "E5-pilot-error.yaml"
E6 = SAFETY / "E6-vehicle-overdraw.yaml"
E7 = SAFETY / "E7-cell-over-temperature.yaml"
E8 = SAFETY / "E8-cell-over-voltage.yaml"
E9 = SAFETY / "E9-precharge.yaml"
E11 = SAFETY / "E11-message-timeout.yaml"
E12 = SAFETY / "E12-counter-checksum.yaml"
INVARIANT_CAUGHT = {"ev:closes_without_precharge": "closes-only-when-precharged"}
HEALTHY = {
    "E3": E3,
    "E4": E4,
    "E5": E5,
    "E6": E6,
    "E7": E7,
    "E8": E8,
    "E9": E9,
    "E11": E11,
    "E12": E12,
}


@pytest.mark.parametrize("plan", list(HEALTHY.values()), ids=list(HEALTHY))
def test_plan_passes_on_healthy_bench(plan: Path, tmp_path: Path) -> None:
    record = run_plan(plan, [], tmp_path)
    assert record.status is Status.PASSED, record.reason
    assert all(s.status is Status.PASSED for s in record.steps)


DEFECTS = [
    pytest.param(
        E3,
        "ev:no_isolation_monitor",
        "fault-flagged",
        CATEGORY_DEADLINE,
        "ev.BMS_Safety.IsolationFault",
        id="E3-no-isolation-monitor",
    ),
    pytest.param(
        E4,
        "ev:ignores_pilot_drop",
        "follows-pilot",
        CATEGORY_DEADLINE,
        "ev.OBC_Status.ChargeLineCurrent",
        id="E4-ignores-pilot-drop",
    ),
    pytest.param(
        E4,
        "ev:overdraw",
        "draws-within-pilot",
        CATEGORY_DEADLINE,
        "ev.OBC_Status.ChargeLineCurrent",
        id="E4-overdraw",
    ),
    pytest.param(
        E5,
        "ev:draws_after_pilot_error",
        "request-stops",
        CATEGORY_DEADLINE,
        "ev.BMS_Safety.ChargeRequest",
        id="E5-draws-after-pilot-error",
    ),
    pytest.param(
        E6,
        "charger:no_overdraw_interrupt",
        "charging-interrupted",
        CATEGORY_DEADLINE,
        "observed charger.EVSE_Status.ChargingEnabled = ENABLED at the deadline",
        id="E6-no-overdraw-interrupt",
    ),
    pytest.param(
        E7,
        "ev:no_thermal_derate",
        "derates",
        CATEGORY_DEADLINE,
        "observed ev.BMS_Safety.ThermalState = NORMAL at the deadline",
        id="E7-no-thermal-derate",
    ),
    pytest.param(
        E8,
        "ev:no_overvoltage_stop",
        "charge-request-zero",
        CATEGORY_DEADLINE,
        "ev.BMS_Safety.ChargeRequest",
        id="E8-no-overvoltage-stop",
    ),
    pytest.param(
        E9,
        "ev:closes_without_precharge",
        "precharge-starts",
        # invariants are watched during the step: the close itself fails it, while it lasts
        CATEGORY_SAFETY,
        "closes-only-when-precharged",
        id="E9-closes-without-precharge",
    ),
    pytest.param(
        E11,
        "ev:no_timeout_detection",
        "timeout-flagged",
        CATEGORY_DEADLINE,
        "observed ev.VCU_Status.BatteryTimeout = OK at the deadline",
        id="E11-no-timeout-detection",
    ),
    pytest.param(
        E12,
        "ev:accepts_stale_counter",
        "replay-ignored",
        CATEGORY_CONDITION,
        "ev.BODY_Status.LockFL",
        id="E12-accepts-stale-counter",
    ),
]


@pytest.mark.parametrize(("plan", "defect", "step", "category", "words"), DEFECTS)
def test_plan_fails_on_matching_defect(
    plan: Path, defect: str, step: str, category: str, words: str, tmp_path: Path
) -> None:
    record = run_plan(plan, [defect], tmp_path)
    assert record.status is Status.FAILED, f"{defect} was not caught: {record.reason}"
    assert record.category == category, record.reason
    assert f"step {step} " in record.reason, record.reason
    assert words in record.reason, record.reason
    failed = [s for s in record.steps if s.status is Status.FAILED and s.section != "teardown"]
    assert [s.id for s in failed] == [step]
    teardown = [s for s in record.steps if s.section == "teardown"]
    assert teardown
    for s in teardown:  # teardown ran; it fails only where it reports an invariant violation
        assert s.status is Status.PASSED or s.observed.get("category") == CATEGORY_SAFETY, s
    violations = [s for s in record.steps if s.observed.get("category") == CATEGORY_SAFETY]
    invariant = INVARIANT_CAUGHT.get(defect)
    assert len(violations) == (invariant is not None), [s.message for s in violations]
    if invariant:
        # E9: the invariant catches the close itself, during the step, once; the frames
        # around it are kept as evidence and the bench is made safe before the teardown
        assert invariant in violations[0].message
        assert "ContactorState = CLOSED" in violations[0].message
        lines = Path(violations[0].observed["evidence"]).read_text().splitlines()
        assert "ContactorState" in lines[0] or invariant in lines[0]
        assert any('"raw"' in line for line in lines[1:]), "no raw frames around the violation"
        assert record.interlock["reason"].endswith("safety violation")
