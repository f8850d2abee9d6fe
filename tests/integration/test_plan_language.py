"""The full plan language on the emulated bench: matrix, gating, parameters,
prompts, save_as, groups, invariants — each seen to pass and to fail."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from hil.plan.loader import load_plan
from hil.plan.model import Prompt
from hil.plan.resolve import resolve_plan
from hil.plan.runner import CATEGORY_DEADLINE, CATEGORY_OPERATOR, CATEGORY_SAFETY, PlanRunner
from hil.report.record import PlanRecord, Status
from tests.conftest import EMULATED_BENCH, PLANS

E2 = PLANS / "safety" / "E2-no-unlock-while-moving.yaml"
A0 = PLANS / "acceptance" / "A0-plug-switching.yaml"
PM1 = PLANS / "acceptance" / "PM1-plug-meter-accuracy.yaml"
NE1 = PLANS / "energy" / "NE1-integrated-energy.yaml"


class Answers:
    """An operator who answers every prompt the same way, and remembers being asked."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def ask(self, step_id: str, prompt: Prompt) -> Any:
        self.asked.append(step_id)
        return self.answer


def run(
    plan: Path,
    *,
    bench: Path = EMULATED_BENCH,
    defects: tuple[str, ...] = (),
    overrides: dict[str, Any] | None = None,
    prompter: Answers | None = None,
    instance: int = 0,
) -> PlanRecord:
    with Bench(load_bench(bench, defects)) as b:
        inst = load_plan(plan).instances(overrides)[instance]
        resolved = resolve_plan(inst, b.definitions, b.loaded.capabilities())
        return PlanRunner(b, prompter=prompter).run(resolved)


def write_bench(tmp_path: Path, extra: str) -> Path:
    text = EMULATED_BENCH.read_text() + textwrap.dedent(extra)
    path = tmp_path / "bench.yaml"
    path.write_text(text.replace("answers: emulated-answers.yaml\n", ""))
    return path


def test_matrix_expands_into_readable_instances() -> None:
    instances = load_plan(E2).instances()
    assert [i.id for i in instances] == [
        "E2[speed_kmh=16]",
        "E2[speed_kmh=30]",
        "E2[speed_kmh=60]",
    ]
    assert [i.values["speed_kmh"] for i in instances] == [16, 30, 60]


def test_e2_passes_and_its_invariant_watches_every_frame() -> None:
    record = run(E2, instance=1)
    assert record.status is Status.PASSED, record.reason
    assert record.instance == "[speed_kmh=30]"
    assert record.invariants[0]["id"] == "no-unlock-moving"


def test_e2_fails_when_the_car_unlocks_while_moving() -> None:
    record = run(E2, defects=("ev:unlock_while_moving",), instance=1)
    assert record.status is Status.FAILED
    # the invariant is watched while the step waits for the refusal: the unlock at
    # speed fails it as a safety violation, at the frame that showed it
    assert record.category == CATEGORY_SAFETY
    assert "step refusal-visible " in record.reason and "no-unlock-moving" in record.reason
    assert "LockFL = UNLOCKED" in record.reason


def test_invariant_violation_between_steps_is_caught_with_its_timestamp(tmp_path: Path) -> None:
    plan = tmp_path / "inv.yaml"
    plan.write_text(
        textwrap.dedent(
            """\
            spec: 1
            id: INV
            title: invariant only
            devices: [ev]
            invariants:
              - id: no-unlock-moving
                always: not (ev.DRIVE_Status.VehicleSpeed > 5 and ev.BODY_Status.LockFL == "UNLOCKED")
            setup:
              - send: {message: ev.BODY_LockCmd, signals: {LockRequest: LOCK}}
              - expect: {signal: ev.BODY_Status.LockFL, equals: LOCKED, within: 1 s}
              - send: {message: ev.HIL_VehicleSim, signals: {TargetSpeed: 30, Gear: D, Accel: 8}}
              - expect: {signal: ev.DRIVE_Status.VehicleSpeed, min: 29, within: 10 s}
            steps:
              - send: {message: ev.BODY_LockCmd, signals: {LockRequest: UNLOCK, Source: PHONE}}
              - wait: {duration: 0.5}
            teardown:
              - send: {message: ev.HIL_VehicleSim, signals: {TargetSpeed: 0, Gear: P, Accel: 8}}
            """
        )
    )
    record = run(plan, defects=("ev:unlock_while_moving",))
    assert record.status is Status.FAILED
    assert record.category == CATEGORY_SAFETY
    assert "invariant no-unlock-moving" in record.reason
    failed = next(s for s in record.steps if s.status is Status.FAILED)
    violation_t = failed.observed["violation_t"]
    assert failed.started - 1.0 < violation_t < failed.ended  # on the frame's timestamp
    assert failed.observed["values"]["ev.BODY_Status.LockFL"] == "UNLOCKED"
    # teardown still ran
    assert record.steps[-1].section == "teardown" and record.steps[-1].status is Status.PASSED


def test_a0_changes_and_falling_through_pass() -> None:
    record = run(A0)
    assert record.status is Status.PASSED, record.reason
    ran = {s.id for s in record.steps if s.status is Status.PASSED}
    assert {"power-changes", "power-level", "current-reported", "power-falls"} <= ran


def test_step_gating_skips_steps_the_bench_cannot_run(tmp_path: Path) -> None:
    bench = write_bench(tmp_path, "")
    text = bench.read_text().replace(
        "    serial: {port: auto, baudrate: 115200}\n",
        "    serial: {port: auto, baudrate: 115200}\n    capabilities: [miot, switch]\n",
        1,  # the plug is the first serial device
    )
    bench.write_text(text)
    record = run(A0, bench=bench)
    assert record.status is Status.PASSED, record.reason
    skipped = {s.id: s.message for s in record.steps if s.status is Status.SKIPPED}
    assert set(skipped) == {"power-changes", "power-level", "current-reported", "power-falls"}
    assert "the bench lacks smart_plug.power_metering" in skipped["power-level"]


def test_plan_gating_reports_skipped_with_the_missing_capability(tmp_path: Path) -> None:
    bench = write_bench(tmp_path, "")
    text = bench.read_text().replace(
        '    visa: {resource: auto, backend: "@py"}\n',
        '    visa: {resource: auto, backend: "@py"}\n    capabilities: [power_meter]\n',
    )
    bench.write_text(text)
    record = run(NE1, bench=bench)
    assert record.status is Status.SKIPPED
    assert "power_analyzer.energy_meter" in record.reason
    assert record.steps == []  # nothing moved


def test_unknown_capability_in_bench_is_a_located_error(tmp_path: Path) -> None:
    from hil.errors import BenchError

    bench = write_bench(tmp_path, "")
    bench.write_text(
        bench.read_text().replace(
            "    serial: {port: auto, baudrate: 115200}\n",
            "    serial: {port: auto, baudrate: 115200}\n    capabilities: [switch, power_meterin]\n",
            1,
        )
    )
    with pytest.raises(BenchError, match="did you mean 'power_metering'"):
        load_bench(bench)


def test_prompt_save_as_group_and_tolerance_pass_with_an_operator() -> None:
    operator = Answers("yes")
    record = run(PM1, prompter=operator)
    assert record.status is Status.PASSED, record.reason
    assert operator.asked == ["connect-load"]
    assert record.answers[0]["answer"] is True
    measured = next(s for s in record.steps if s.id == "analyzer-power")
    saved = measured.observed["saved"]["analyzer_w"]
    assert 400 < saved < 520
    group = next(s for s in record.steps if s.id == "energise")
    assert [c.id for c in group.children] == ["apply-load", "relay-on", "relay-closed"]


def test_pm1_catches_a_plug_meter_that_reads_high() -> None:
    record = run(PM1, defects=("smart_plug:meter_gain_error",), prompter=Answers(True))
    assert record.status is Status.FAILED
    assert record.category == CATEGORY_DEADLINE
    assert "step plug-agrees" in record.reason and "± 5 %" in record.reason


def test_operator_saying_no_fails_the_plan() -> None:
    record = run(PM1, prompter=Answers("no"))
    assert record.status is Status.FAILED
    assert record.category == CATEGORY_OPERATOR
    assert "operator answered False" in record.reason, record.reason


def test_prompt_without_an_operator_fails_with_a_hint() -> None:
    record = run(PM1)
    assert record.status is Status.FAILED
    assert "--hil-answers" in record.reason


def test_saved_value_feeds_a_computed_expectation() -> None:
    record = run(NE1)
    assert record.status is Status.PASSED, record.reason
    energy = next(s for s in record.steps if s.id == "energy")
    assert "Wh" in energy.observed["bound"]


def test_parameter_overrides_from_bench_and_command_line(tmp_path: Path) -> None:
    bench = write_bench(tmp_path, "parameters:\n  E1: {threshold_kmh: 30}\n  '*': {accel: 8}\n")
    loaded = load_bench(bench)
    assert loaded.parameter_overrides("E1") == {"accel": 8, "threshold_kmh": 30}
    inst = load_plan(PLANS / "safety" / "E1-speed-auto-lock.yaml").instances(
        loaded.parameter_overrides("E1")
    )[0]
    assert inst.values["threshold_kmh"] == 30
    resolved = resolve_plan(inst, loaded.definitions(), loaded.capabilities())
    anchor = resolved.steps[1].action.after  # type: ignore[union-attr]
    assert anchor is not None and anchor.condition.rising_through == 30
    with pytest.raises(Exception, match="above its max 10"):
        load_plan(PLANS / "safety" / "E1-speed-auto-lock.yaml").instances({"accel": 50})
    with pytest.raises(Exception, match="did you mean 'accel'"):
        load_plan(PLANS / "safety" / "E1-speed-auto-lock.yaml").instances({"acel": 5})
