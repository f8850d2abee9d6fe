"""Explore files → rules → plan documents, without a bench opened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.bench.loader import load_bench
from hil.errors import PlanError
from hil.explore.explorer import describe_step
from hil.explore.loader import load_explore, rules_for
from hil.explore.machine import initial_writes
from hil.explore.runs import devices_needed
from hil.explore.sequence import plan_document, render, stimulus_step, wait_step
from hil.plan.loader import load_plan
from tests.conftest import EMULATED_BENCH, PLANS

XE1 = PLANS / "explore" / "XE1-ev-lock-sequences.yaml"
XE2 = PLANS / "explore" / "XE2-oven-remote-preheat-sequences.yaml"
DEFINITIONS = load_bench(EMULATED_BENCH).definitions()


def _write(tmp_path: Path, stimuli: str) -> Path:
    path = tmp_path / "x.yaml"
    path.write_text(
        "spec: 1\nid: XU\ntitle: t\ndevices: [ev]\nexplore:\n  stimuli:\n" + stimuli,
        encoding="utf-8",
    )
    return path


@given(data=st.data())
def test_drawn_values_stay_within_the_bounds_the_file_gives(data: Any) -> None:
    rules = {r.ref: r for r in rules_for(load_explore(XE1), DEFINITIONS)}
    drawn = data.draw(rules["ev.BODY_LockCmd"].strategy())
    assert drawn["Source"] in ("PHONE", "KEY") and drawn["E2EFault"] == "NONE"
    assert drawn["LockRequest"] in ("LOCK", "UNLOCK")


@given(data=st.data())
def test_fields_left_out_are_drawn_from_the_definition(tmp_path_factory: Any, data: Any) -> None:
    path = _write(tmp_path_factory.mktemp("x"), "    - send: ev.HIL_VehicleSim\n")
    (rule,) = rules_for(load_explore(path), DEFINITIONS)
    drawn = data.draw(rule.strategy())
    assert 0 <= drawn["TargetSpeed"] <= 300 and 0 <= drawn["Accel"] <= 25.5
    assert drawn["Gear"] in ("P", "R", "N", "D")


def test_a_field_without_bounds_must_be_given(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        "spec: 1\nid: XU\ntitle: t\ndevices: [phone]\nexplore:\n  stimuli:\n"
        "    - set: phone.distance\n",
        encoding="utf-8",
    )
    with pytest.raises(PlanError, match="no declared range"):
        rules_for(load_explore(path), DEFINITIONS)


def test_a_bad_fixed_value_is_refused_at_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "    - send: ev.BODY_LockCmd\n      signals: {LockRequest: OPEN}\n")
    with pytest.raises(PlanError) as err:
        rules_for(load_explore(path), DEFINITIONS)
    assert err.value.line == 8


def test_an_explore_file_has_no_steps(tmp_path: Path) -> None:
    path = _write(tmp_path, "    - send: ev.BODY_LockCmd\nsteps: []\n")
    with pytest.raises(PlanError, match="no 'steps'"):
        load_explore(path)


def test_refused_goes_with_call(tmp_path: Path) -> None:
    path = _write(tmp_path, "    - send: ev.BODY_LockCmd\n      expect: refused\n")
    with pytest.raises(PlanError, match="refused goes with call"):
        load_explore(path)


def test_when_follows_what_the_sequence_wrote() -> None:
    loaded = load_explore(XE2)
    preheat = next(r for r in rules_for(loaded, DEFINITIONS) if r.kind == "call")
    written = initial_writes(loaded.file.setup)
    assert written["oven.home.occupancy"] is False and preheat.applies(written)
    assert not preheat.applies({**written, "oven.home.occupancy": True})


def test_a_sequence_is_an_ordinary_plan(tmp_path: Path) -> None:
    loaded = load_explore(XE2)
    rules = {r.kind: r for r in rules_for(loaded, DEFINITIONS)}
    steps = [
        stimulus_step(1, rules["set"].body({"value": True})),
        wait_step(1, 0.25),
        stimulus_step(2, rules["call"].body({"target-temperature": 180})),
    ]
    doc = plan_document(loaded, steps, 0.2)
    path = tmp_path / "plan.yaml"
    path.write_text(render(doc, ["a comment", "over\n  two lines"]), encoding="utf-8")
    plan = load_plan(path).plan
    assert [s.id for s in plan.steps] == ["s1", "s1-wait", "s2", "settle"]
    assert plan.steps[2].call is not None and plan.steps[2].call.expect == "refused"
    assert plan.steps[1].wait is not None and plan.steps[1].wait.scaled is False
    assert plan.tags[:2] == ["regression", "explored"] and plan.id.startswith("XE2-")
    assert describe_step(steps[2]).endswith("(must be refused)")


def test_only_what_the_explored_devices_need_is_opened() -> None:
    bench = load_bench(EMULATED_BENCH)
    assert devices_needed(bench, ["ev"]) == ["ev", "charger"]  # the inlet is wired to it
    assert set(devices_needed(bench, ["oven"])) == {"oven", "hub", "ev", "charger"}


def test_the_explore_profiles_keep_their_seed_under_the_suites_profile(tmp_path: Path) -> None:
    # the suite loads a derandomized profile; an exploration must still use its recorded seed
    from hil.explore.profiles import explore_settings

    ci = explore_settings("ci", max_examples=7, max_steps=3, database=tmp_path / "db")
    assert not ci.derandomize and ci.deadline is None
    assert (ci.max_examples, ci.stateful_step_count) == (7, 3)
    assert ci.database is not None
