"""The IEC 62301 energy plans (N1–N4) on the emulated bench: each passes healthy
and FAILS on its defect (N4: reports INVALID on an out-of-bounds supply or an
instrument that does not report THD), for the right reason.

The plans keep their real numbers (a 15-minute minimum period, 1 min settle).
The suite runs them on the emulated bench with a smaller time scale (a copy
of benches/emulated.yaml whose only change is ``time_scale``), so a 15-minute
period takes 4.5 s of wall time: the bench's time scale is what it exists for,
and the verdicts are judged in plan time whatever it is.
"""

from __future__ import annotations

import csv
import math
import re
import statistics
from pathlib import Path
from typing import Any

import pytest

from hil.measure.iec62301 import Criteria, stability
from hil.plan.runner import CATEGORY_CONDITION, CATEGORY_INVALID, CATEGORY_LIMIT
from hil.report.record import PlanRecord, Status
from tests.conftest import EMULATED_BENCH, PLANS
from tests.plan_runs import assert_failed_at, run_plan

N1 = PLANS / "energy" / "N1-plug-standby.yaml"
N2 = PLANS / "energy" / "N2-standby-display-off-mode.yaml"
N3 = PLANS / "energy" / "N3-networked-standby.yaml"
N4 = PLANS / "energy" / "N4-validity-gate.yaml"
FAST_SCALE = 0.005  # 15 plan minutes in 4.5 s; the emulated analyzer updates every 5 ms


@pytest.fixture(scope="module")
def fast_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """benches/emulated.yaml with ``time_scale`` set to FAST_SCALE, nothing else changed."""
    folder = tmp_path_factory.mktemp("bench")
    text = EMULATED_BENCH.read_text(encoding="utf-8")
    assert text.count("\ntime_scale: 0.1\n") == 1
    (folder / "emulated.yaml").write_text(
        text.replace("\ntime_scale: 0.1\n", f"\ntime_scale: {FAST_SCALE}\n"), encoding="utf-8"
    )
    answers = EMULATED_BENCH.with_name("emulated-answers.yaml")
    (folder / answers.name).write_text(answers.read_text(encoding="utf-8"), encoding="utf-8")
    return folder / "emulated.yaml"


def run(
    plan: Path, bench: Path, tmp_path: Path, defects: list[str] | None = None, **params: Any
) -> PlanRecord:
    return run_plan(plan, defects or [], tmp_path, params=params, bench_path=bench)


@pytest.fixture(scope="module")
def healthy_n1(fast_bench: Path, tmp_path_factory: pytest.TempPathFactory) -> PlanRecord:
    """N1 on the healthy bench, run once for the tests that read its record."""
    return run(N1, fast_bench, tmp_path_factory.mktemp("n1"))


def measured(record: PlanRecord) -> list[Any]:
    return [s for s in record.steps if s.measurement is not None]


@pytest.mark.parametrize("plan", [N1, N2, N3, N4], ids=["N1", "N2", "N3", "N4"])
def test_plan_passes_on_healthy_bench(
    plan: Path, fast_bench: Path, tmp_path: Path, healthy_n1: PlanRecord
) -> None:
    record = healthy_n1 if plan == N1 else run(plan, fast_bench, tmp_path)
    assert record.status is Status.PASSED, record.reason
    assert all(s.status is Status.PASSED for s in record.steps)
    assert record.time_scale == FAST_SCALE
    for step in measured(record):
        m = step.measurement
        assert m.method == "iec62301"
        assert m.stability["stable"] is True
        assert m.stability["period_s"] >= 900  # the plan's 15 minutes, in plan time
        assert m.uncertainty is not None and m.value + m.uncertainty <= m.limits["max"]
        assert "mean + U95" in m.decision_rule
        assert m.conditions["criteria"]["nominal_v"] == 230
        assert all(Path(p).is_file() for p in m.evidence)
        assert set(m.evidence) <= set(record.evidence)


def test_qa_can_recompute_the_verdict_from_the_raw_samples(healthy_n1: PlanRecord) -> None:
    m = measured(healthy_n1)[0].measurement
    path = next(Path(p) for p in m.evidence if p.endswith(".csv"))
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    times = [float(r["t_plan_s"]) for r in rows]
    powers = [float(r["power_w"]) for r in rows]
    again = stability(times, powers, Criteria())
    kept = [float(r["power_w"]) for r in rows if r["kept"] == "1"]
    assert again.kept == len(kept) == m.stability["kept"]
    assert again.mean_w == pytest.approx(m.value, rel=1e-5)
    assert statistics.fmean(kept) == pytest.approx(m.value, rel=1e-5)
    assert again.slope_w_per_h == pytest.approx(m.stability["slope_w_per_h"], rel=1e-3, abs=1e-6)
    assert all(float(r["voltage_thd_percent"]) <= 2.0 for r in rows)
    assert m.value == pytest.approx(0.32, abs=0.005)  # the plug's modelled standby power
    assert m.uncertainty == pytest.approx(0.01, abs=0.001)  # the spec's 0.01 W below 0.5 W


@pytest.mark.parametrize(
    ("plan", "defect", "step", "category", "words"),
    [
        (N1, "smart_plug:high_standby", "standby-power", CATEGORY_LIMIT, "outside x ≤ 0.5 W"),
        (
            N1,
            "power_analyzer:auto_range_only",
            "fixed-range",
            CATEGORY_CONDITION,
            "observed power_analyzer.CURRENT_AUTO = ON",
        ),
        (N2, "oven:display_stays_on", "off-mode", CATEGORY_LIMIT, "outside x ≤ 0.5 W"),
        (N3, "oven:network_standby_high", "networked-standby", CATEGORY_LIMIT, "x ≤ 2 W"),
    ],
    ids=["N1-high-standby", "N1-auto-range", "N2-display-stays-on", "N3-network-high"],
)
def test_plan_fails_on_matching_defect(
    plan: Path,
    defect: str,
    step: str,
    category: str,
    words: str,
    fast_bench: Path,
    tmp_path: Path,
) -> None:
    record = run(plan, fast_bench, tmp_path, [defect])
    assert_failed_at(record, step, category, words)
    failed = [s for s in record.steps if s.status is Status.FAILED]
    for m in (s.measurement for s in failed if s.measurement is not None):
        assert m.outcome == "fail" and m.uncertainty is not None
        assert "by the decision rule mean + U95 ≤ limit" in record.reason
        assert f"mean + U95 = {m.value + m.uncertainty:.4f} W" in record.reason


def test_n2_2027_limit_set_is_switched_on_by_a_parameter(fast_bench: Path, tmp_path: Path) -> None:
    # the healthy oven's off mode (0.40 W) meets the 2025 set (0.50 W), not the 2027 one
    record = run(N2, fast_bench, tmp_path, limit_set=2027)
    assert record.status is Status.FAILED
    assert "step off-mode " in record.reason
    assert "outside x ≤ 0.3 W" in record.reason, record.reason
    display = next(s for s in record.steps if s.id == "standby-with-display")
    assert display.status is Status.PASSED  # 0.80 W in both sets


@pytest.mark.parametrize(
    ("params", "defects", "words"),
    # patterns: the analyzer's readings carry noise (voltage σ 25 mV, frequency σ 2 mHz),
    # so the mean it reports may round to the next hundredth on either side of the set value
    [
        ({"supply_v": 233}, [], r"supply voltage 23[23]\.\d\d V is outside 230 V ± 1 %"),
        ({"supply_v": 226}, [], r"supply voltage 22[56]\.\d\d V is outside"),
        ({"supply_hz": 51}, [], r"supply frequency 5[01]\.\d\d Hz is outside 50 Hz ± 1 %"),
        ({"supply_thd": 2.5}, [], r"supply voltage THD 2\."),
        ({"supply_crest_factor": 1.6}, [], r"supply voltage crest factor 1\."),
        ({"supply_crest_factor": 1.30}, [], r"supply voltage crest factor 1\."),
        ({}, ["power_analyzer:no_thd"], r"reported no valid voltage THD"),
    ],
    ids=["230V+1.3%", "230V-1.7%", "51Hz", "THD2.5", "CF1.6", "CF1.30", "no-thd"],
)
def test_n4_out_of_bounds_conditions_are_invalid(
    params: dict[str, Any], defects: list[str], words: str, fast_bench: Path, tmp_path: Path
) -> None:
    record = run(N4, fast_bench, tmp_path, defects, **params)
    assert record.status is Status.INVALID, record.reason
    assert record.category == CATEGORY_INVALID
    assert "step standby-power " in record.reason
    assert re.search(words, record.reason), record.reason
    step = next(s for s in record.steps if s.id == "standby-power")
    assert step.status is Status.INVALID
    m = step.measurement
    assert m is not None and m.outcome == "invalid" and math.isnan(m.value)
    assert m.uncertainty is None
    assert re.search(words.split(" is ")[0], m.conditions["violation"])
    # the supply is restored for the next plan
    teardown = [s for s in record.steps if s.section == "teardown"]
    assert teardown and all(s.status is Status.PASSED for s in teardown)


def test_n4_in_bounds_edges_are_valid(fast_bench: Path, tmp_path: Path) -> None:
    record = run(N4, fast_bench, tmp_path, supply_v=232, supply_thd=1.9, supply_crest_factor=1.36)
    assert record.status is Status.PASSED, record.reason
    observed = measured(record)[0].measurement.conditions["observed"]
    assert 231.5 < observed["voltage_v"][0] <= observed["voltage_v"][1] < 232.3
