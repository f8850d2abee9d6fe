"""Resolving many plans shares what does not depend on the plan (issue 8): each
expression text is parsed once and each envelope is written out once per device.
What does depend on the plan (which device, where an error is) must not leak
from one plan into the next."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hil.bench.loader import load_bench
from hil.errors import PlanError
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = load_bench(ROOT / "benches" / "emulated.yaml").definitions()


def _plan(folder: Path, name: str, devices: list[str], always: str, pad: int = 0) -> Path:
    plan = {
        "spec": 1,
        "id": name,
        "title": name,
        "description": "\n" * pad,  # moves the invariant down the file
        "devices": devices,
        "invariants": [{"id": "speed", "always": always}],
        "steps": [{"wait": {"duration": "10 ms"}}],
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    return path


def test_each_device_of_a_type_is_watched_by_its_own_envelope(tmp_path: Path) -> None:
    definitions = {**DEFINITIONS, "car2": DEFINITIONS["ev"]}  # two cars of one type
    always = "ev.DRIVE_Status.VehicleSpeed >= 0"
    for devices in (["ev", "car2"], ["car2", "ev"]):
        path = _plan(tmp_path, "two-cars", devices, always)
        resolved = resolve_plan(load_plan(path).instances()[0], definitions)
        envelopes = {c.id: c for c in resolved.invariants if c.id.endswith("precharged")}
        assert sorted(envelopes) == ["car2.contactors-precharged", "ev.contactors-precharged"]
        for device in ("ev", "car2"):
            check = envelopes[f"{device}.contactors-precharged"]
            assert {s.device for s in check.signals} == {device}
            assert f"{device}.BMS_Status.ContactorState" in check.expr.source


def test_a_shared_expression_keeps_each_plans_meaning_and_errors(tmp_path: Path) -> None:
    good = "ev.DRIVE_Status.VehicleSpeed <= 200"
    for name in ("first", "second"):
        resolved = resolve_plan(
            load_plan(_plan(tmp_path, name, ["ev"], good)).instances()[0], DEFINITIONS
        )
        speed = next(c for c in resolved.invariants if c.id == "speed")
        assert speed.expr.source == good
        assert [s.text for s in speed.signals] == ["ev.DRIVE_Status.VehicleSpeed"]
    bad = "ev.DRIVE_Status.VehicleSpeed <= "
    lines = []
    for name, pad in (("bad-a", 0), ("bad-b", 3)):
        with pytest.raises(PlanError, match="in 'ev.DRIVE_Status.VehicleSpeed <= '") as err:
            resolve_plan(
                load_plan(_plan(tmp_path, name, ["ev"], bad, pad)).instances()[0], DEFINITIONS
            )
        assert err.value.file == str(tmp_path / f"{name}.yaml")
        lines.append(err.value.line)
    assert lines[0] is not None and lines[1] is not None and lines[1] > lines[0]
