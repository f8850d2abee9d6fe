"""The appliance safety and acceptance plans (A4 link fault, A5 welded relay,
M1 MIoT acceptance) on the emulated bench: each passes on the healthy bench
and FAILS, at the right step and for the right reason, with the matching
defect injected — the same plan file and the same bench."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.plan.runner import CATEGORY_CONDITION, CATEGORY_DEADLINE
from hil.report.record import Status
from tests.conftest import PLANS
from tests.plan_runs import assert_failed_at, assert_passed, run_plan

A4 = PLANS / "safety" / "A4-link-fault.yaml"
A5 = PLANS / "safety" / "A5-welded-relay.yaml"
M1 = PLANS / "acceptance" / "M1-miot-acceptance.yaml"

FAULTS = ["silent", "garbled"]  # A4's matrix, in file order


@pytest.mark.parametrize("instance", [0, 1], ids=FAULTS)
def test_a4_link_fault_passes_on_the_healthy_oven(instance: int, tmp_path: Path) -> None:
    record = run_plan(A4, [], tmp_path, instance=instance)
    assert_passed(record)
    heater_off = next(s for s in record.steps if s.id == "heater-off")
    # the oven noticed the dead link after its 1 s timeout (counted from the last
    # downlink it heard, up to one 200 ms poll before the fault), not at once
    assert 0.7 <= heater_off.observed["latency_s"] <= 2.0


@pytest.mark.parametrize("instance", [0, 1], ids=FAULTS)
def test_a4_fails_when_the_oven_heats_on_link_loss(instance: int, tmp_path: Path) -> None:
    record = run_plan(A4, ["oven:heats_on_link_loss"], tmp_path, instance=instance)
    assert_failed_at(
        record, "heater-off", CATEGORY_DEADLINE, "oven.oven.heater = True, oven.oven.on = True"
    )


def test_a5_welded_relay_passes_on_the_healthy_plug(tmp_path: Path) -> None:
    record = run_plan(A5, [], tmp_path)
    assert_passed(record)
    fault = next(s for s in record.steps if s.id == "fault-raised")
    assert fault.observed["latency_s"] <= 1.0


def test_a5_fails_when_the_plug_does_not_detect_the_weld(tmp_path: Path) -> None:
    record = run_plan(A5, ["smart_plug:no_weld_detection"], tmp_path)
    assert_failed_at(
        record,
        "fault-raised",
        CATEGORY_DEADLINE,
        "expected smart_plug.switch.fault = welded-relay within 1000 ms",
    )


def test_m1_miot_acceptance_passes_on_the_healthy_plug(tmp_path: Path) -> None:
    record = run_plan(M1, [], tmp_path)
    assert_passed(record)
    # the probes' answers were judged, not a stale value from before them
    for probe, judged in [
        ("unknown-method", "unknown-method-error"),
        ("read-only-write", "read-only-refused"),
        ("out-of-range-write", "out-of-range-refused"),
    ]:
        sent = next(s for s in record.steps if s.id == probe).observed["t"]
        judge = next(s for s in record.steps if s.id == judged)
        assert judge.status is Status.PASSED
        assert judge.started >= sent


@pytest.mark.parametrize(
    ("defect", "step", "category", "words"),
    [
        (
            "smart_plug:slow_poll",
            "polling",
            CATEGORY_CONDITION,
            "observed smart_plug.miot.poll-period = 0.",  # about 0.4 s (> 0.22)
        ),
        (
            "smart_plug:report_flood",
            "report-rate",
            CATEGORY_CONDITION,
            "observed smart_plug.miot.report-interval = 0.",
        ),
        (
            "smart_plug:bad_error_code",
            "unknown-method-error",
            CATEGORY_DEADLINE,
            "observed smart_plug.miot.unknown-method-code = -4003",
        ),
    ],
    ids=["slow-poll", "report-flood", "bad-error-code"],
)
def test_m1_fails_on_each_protocol_defect(
    defect: str, step: str, category: str, words: str, tmp_path: Path
) -> None:
    record = run_plan(M1, [defect], tmp_path)
    assert_failed_at(record, step, category, words)
