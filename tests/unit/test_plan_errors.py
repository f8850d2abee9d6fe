"""Plans: the shipped ones resolve against the bench; each mistake is located."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.bench.definition import DeviceDefinition
from hil.bench.loader import load_bench
from hil.errors import PlanError
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan
from hil.plan.resolved import Expectation, Measurement, Stimulus
from hil.plan.tools import plan_files
from tests.conftest import EMULATED_BENCH, PLANS


@pytest.fixture(scope="module")
def definitions() -> dict[str, DeviceDefinition]:
    return load_bench(EMULATED_BENCH).definitions()


def test_shipped_plans_resolve(definitions: dict[str, DeviceDefinition]) -> None:
    # not requirements.yaml or canaries.yaml, nor explore files (checked in test_explore*)
    plans = sorted(plan_files([PLANS]))
    assert {p.stem.split("-")[0] for p in plans} >= {"E1", "A1", "N1"}
    for path in plans:
        resolved = resolve_plan(load_plan(path).instances()[0], definitions)
        assert resolved.steps


def test_values_are_coerced_to_what_drivers_report(
    definitions: dict[str, DeviceDefinition],
) -> None:
    e1 = resolve_plan(
        load_plan(PLANS / "safety" / "E1-speed-auto-lock.yaml").instances()[0], definitions
    )
    drive = e1.steps[0].action
    assert isinstance(drive, Stimulus)
    assert drive.values["TargetSpeed"] == 40.0  # "40 km/h"
    gear = definitions["ev"].signals["DRIVE_Status.Gear"]
    assert drive.values["Gear"] == gear.choices["D"]
    locked = e1.steps[1].action
    assert isinstance(locked, Expectation)
    assert locked.within == 0.5
    assert locked.after is not None and locked.after.condition.rising_through == 20
    n1 = resolve_plan(
        load_plan(PLANS / "energy" / "N1-plug-standby.yaml").instances()[0], definitions
    )
    measure = n1.steps[0].action
    assert isinstance(measure, Measurement)
    assert measure.limit.maximum == 0.5 and measure.limit.unit == "W"


BASE = """\
spec: 1
id: T1
title: test plan
devices: [ev, smart_plug, power_analyzer]
steps:
"""


@pytest.mark.parametrize(
    ("steps", "line", "words"),
    [
        (
            "  - send: {message: ev.HIL_VehicleSim, signals: {TargetSped: 3}}\n",
            6,
            "no signal 'TargetSped'; did you mean 'TargetSpeed'?",
        ),
        (
            "  - expect: {signal: ev.BODY_Status.LockFX, equals: LOCKED, within: 1 s}\n",
            6,
            "unknown signal 'BODY_Status.LockFX'",
        ),
        (
            "  - expect: {signal: evv.BODY_Status.LockFL, equals: LOCKED, within: 1 s}\n",
            6,
            "unknown device 'evv'; did you mean 'ev'?",
        ),
        ("  - expect: {signal: ev.BODY_Status.LockFL, equals: LOCKD, within: 1 s}\n", 6, "LOCKED"),
        (
            "  - expect: {signal: ev.BODY_Status.LockFL, equals: LOCKED, within: 0 s}\n",
            6,
            "greater than 0",
        ),
        (
            "  - expect: {signal: ev.BODY_Status.LockFL, equals: LOCKED, within: soon}\n",
            6,
            "cannot read 'soon' as a duration",
        ),
        (
            "  - expect: {signal: ev.DRIVE_Status.VehicleSpeed, min: 30, max: 20, within: 1 s}\n",
            6,
            "min 30 > max 20",
        ),
        (
            "  - expect: {signal: ev.BODY_Status.LockFL, equals: LOCKED}\n",
            6,
            "exactly one of 'within'",
        ),
        ("  - wait: {duration: 1 s}\n    send: {message: ev.BODY_LockCmd}\n", 6, "exactly one of"),
        (
            "  - measure: {signal: power_analyzer.P, duration: 5 s, limit: {min: 2, max: 1}}\n",
            6,
            "impossible limit: min 2 is greater than max 1",
        ),
        (
            "  - set: {target: smart_plug.load_current, value: 12 V}\n",
            6,
            "unit 'V' does not convert to 'A'",
        ),
        ("  - set: {target: smart_plug.switch.onn, value: true}\n", 6, "did you mean 'switch.on'"),
        (
            "  - id: a\n    wait: {duration: 1}\n  - id: a\n    wait: {duration: 1}\n",
            8,
            "duplicate step id 'a'",
        ),
        ("  - wait: {duration: 1, extra: 2}\n", 6, "unknown key 'extra'"),
        (
            "  - expect: {signal: ev.BODY_Status.LockFL, equals: LOCKED, within: 1 s,"
            " after: {signal: ev.DRIVE_Status.VehicleSpeed}}\n",
            6,
            "exactly one of rising_through",
        ),
    ],
)
def test_plan_mistakes_are_located(
    tmp_path: Path, definitions: dict[str, DeviceDefinition], steps: str, line: int, words: str
) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(BASE + steps)
    with pytest.raises(PlanError) as err:
        resolve_plan(load_plan(path).instances()[0], definitions)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}"), message
    assert words in message, message


def test_device_not_on_the_bench(tmp_path: Path, definitions: dict[str, DeviceDefinition]) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        BASE.replace("power_analyzer]", "power_analyser]") + "  - wait: {duration: 1}\n"
    )
    with pytest.raises(PlanError) as err:
        resolve_plan(load_plan(path).instances()[0], definitions)
    assert str(err.value).startswith(f"{path}:4:")
    assert "did you mean 'power_analyzer'" in str(err.value)


def test_plan_wrong_type_and_missing_fields(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("spec: 1\nid: X\ntitle: [not, text]\ndevices: [ev]\nsteps: []\n")
    with pytest.raises(PlanError) as err:
        load_plan(path)
    assert str(err.value).startswith(f"{path}:3:")
    assert "title" in str(err.value)
