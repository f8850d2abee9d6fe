"""PlanRecord.to_json: exactly what dataclasses.asdict gives, and detached from the record."""

from __future__ import annotations

import dataclasses
import json

from hil.report.record import MeasurementRecord, PlanRecord, Status, StepRecord


def record() -> PlanRecord:
    plan = PlanRecord(
        "E1", "speed lock", "E1.yaml", "abc", "1", ["REQ-1"], "critical", ["can"],
        "emulated-home", "def", {"ev": ["unlock_while_moving"]}, 0.1,
    )  # fmt: skip
    step = StepRecord("measure", "speed", "measure", "steps", 12, observed={"t": 1.5})
    step.measurement = MeasurementRecord(
        "ev.DRIVE_Status.VehicleSpeed", 5.0, "km/h", "mean", "0 … 10",
        {"min": 0.0, "max": 10.0, "marginal_min": None, "marginal_max": None}, "pass",
        samples=[(1.0, 4.0), (1.1, 6.0)],
    )  # fmt: skip
    group = StepRecord("group", "a group", "group", "steps", 20, status=Status.FAILED)
    group.children.append(StepRecord("inner", "inner", "wait", "steps", 21, Status.SKIPPED))
    plan.steps += [step, group]
    plan.status = Status.FAILED
    plan.answers.append({"step": "ask", "answer": ["a", 1]})
    return plan


def test_to_json_is_what_asdict_gives() -> None:
    plan = record()
    got = plan.to_json()
    assert got == dataclasses.asdict(plan)
    assert got["steps"][0]["measurement"]["samples"] == [(1.0, 4.0), (1.1, 6.0)]
    assert json.loads(json.dumps(got))["steps"][1]["children"][0]["status"] == "skipped"


def test_to_json_is_a_copy_the_record_cannot_change() -> None:
    plan = record()
    got = plan.to_json()
    plan.steps[0].observed["t"] = 99.0
    plan.steps[0].measurement.samples.append((2.0, 8.0))  # type: ignore[union-attr]
    plan.answers[0]["answer"].append("late")
    assert got["steps"][0]["observed"] == {"t": 1.5}
    assert len(got["steps"][0]["measurement"]["samples"]) == 2
    assert got["answers"][0]["answer"] == ["a", 1]
