"""hil explore on the emulated bench: sequence defects found, shrunk, emitted as plans
that the normal loader reads and that fail on the defective bench and pass on the healthy."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.bench.loader import load_bench
from hil.errors import PlanError
from hil.explore.explorer import explore
from hil.explore.loader import load_explore, rules_for
from hil.explore.profiles import SHRINK_RUNS
from hil.plan.loader import load_plan
from hil.plan.runner import CATEGORY_CONDITION, CATEGORY_SAFETY
from tests.conftest import EMULATED_BENCH, PLANS
from tests.plan_runs import assert_passed, run_plan

EXPLORE = PLANS / "explore"
# (explore file, defect, category of the emitted plan's failure, words in its reason):
# defects that only a sequence triggers, none with a hand-written plan
CASES = [
    (
        "XE1-ev-lock-sequences.yaml",
        "ev:unlock_after_neutral_shift",
        CATEGORY_SAFETY,
        "locked-at-speed",
    ),
    (
        "XE1-ev-lock-sequences.yaml",
        "ev:auto_lock_off_after_double_unlock",
        CATEGORY_SAFETY,
        "locked-at-speed",
    ),
    (
        "XE2-oven-remote-preheat-sequences.yaml",
        "oven:preheat_after_occupancy_bounce",
        CATEGORY_CONDITION,
        "must refuse it",
    ),
    (
        "XE3-charger-hub-link-sequences.yaml",
        "charger:hub_limit_lost_on_replug",
        CATEGORY_SAFETY,
        "within-hub-limit",
    ),
    (
        "XE3-charger-hub-link-sequences.yaml",
        "charger:no_fallback_after_limit_change",
        CATEGORY_SAFETY,
        "falls-back",
    ),
]
# the search budget of these tests (the files' own CI budget is smaller, for certify's
# healthy runs); the seed is the file's, so each search is the same every run
SEARCH_BUDGET = 40
DEFINITIONS = load_bench(EMULATED_BENCH).definitions()


@pytest.mark.parametrize(("name", "defect", "category", "words"), CASES)
def test_exploration_finds_the_sequence_defect_and_emits_a_reproducing_plan(
    tmp_path: Path, name: str, defect: str, category: str, words: str
) -> None:
    result = explore(
        load_explore(EXPLORE / name),
        load_bench(EMULATED_BENCH, [defect]),
        out=tmp_path,
        max_examples=SEARCH_BUDGET,
    )
    assert result.found, result.summary()
    assert result.found_at <= SEARCH_BUDGET and result.examples <= SEARCH_BUDGET + SHRINK_RUNS["ci"]
    assert result.replayed == "failed" and not result.flaky
    assert result.category == category and words in result.reason
    emitted = Path(result.plan)
    plan = load_plan(emitted)  # the normal loader reads it
    assert {"regression", "explored"} <= set(plan.plan.tags)
    assert f"seed {result.seed}" in emitted.read_text(encoding="utf-8")
    defective = run_plan(emitted, [defect], tmp_path / "defective")
    assert defective.status.value == "failed", defective.reason
    assert defective.category == category and words in defective.reason
    # in the drawn sequence (the exact step may be the next check: an invariant is judged
    # on what the capture holds as each step ends, and a frame sent just then is judged
    # at the next one)
    failed = [st for st in defective.steps if st.status.value == "failed"]
    assert len(failed) == 1 and failed[0].section == "steps"
    assert_passed(run_plan(emitted, [], tmp_path / "healthy"))


def test_healthy_exploration_with_the_ci_profile_finds_nothing(tmp_path: Path) -> None:
    result = explore(
        load_explore(EXPLORE / "XE2-oven-remote-preheat-sequences.yaml"),
        load_bench(EMULATED_BENCH),
        out=tmp_path,
        profile="ci",
    )
    assert not result.found, result.summary()
    assert result.examples >= result.max_examples and result.profile == "ci"
    assert not list(tmp_path.glob("XE2-*.yaml"))  # nothing emitted
    record = (tmp_path / "XE2.explore.json").read_text(encoding="utf-8")
    assert '"seed": 1' in record and "hypothesis-db" in record


# (the explore section as written, the line the error names, words it says)
MALFORMED = [
    pytest.param(
        "  stimuli:\n    - send: ev.HIL_VehicleSim\n      signal: {Gear: D}\n",
        8,
        "signal",
        id="unknown-key",
    ),
    pytest.param("  stimuli:\n    - send: ev.BODY_LockCmnd\n", 7, "BODY_LockCmd", id="typo"),
    pytest.param(
        "  stimuli:\n    - send: ev.HIL_VehicleSim\n      signals:\n"
        "        TargetSpeed: {min: 0, max: 400}\n",
        9,
        "outside",
        id="range-outside-the-device",
    ),
    pytest.param(
        "  stimuli:\n    - send: ev.BODY_LockCmd\n  repeat: 1\n",  # strict: not truthy
        8,
        "explore.repeat",
        id="repeat-not-a-bool",
    ),
]


@pytest.mark.parametrize(("explore_section", "line", "words"), MALFORMED)
def test_a_malformed_explore_file_is_an_error_at_its_line(
    tmp_path: Path, explore_section: str, line: int, words: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "spec: 1\nid: XB\ntitle: t\ndevices: [ev]\nexplore:\n" + explore_section,
        encoding="utf-8",
    )
    with pytest.raises(PlanError) as err:
        rules_for(load_explore(bad), DEFINITIONS)
    assert err.value.line == line and words in str(err.value)


def test_the_command_names_an_unknown_device(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "hil", "explore", "--bench", str(EMULATED_BENCH)]
        + ["--devices", "ovn", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "'ovn'" in proc.stderr and "oven" in proc.stderr
