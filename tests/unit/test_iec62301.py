"""IEC 62301 sampling method: the pure statistics, the plan checks, and a real
sampling run (analyzer emulator → pyvisa-py socket → driver) on loads whose
power drifts in plan time, to show settling, extension and the unstable bound."""

from __future__ import annotations

import io
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from devices.power_analyzer import DEVICE_TYPE
from devices.power_analyzer.definition import load_map
from devices.power_analyzer.driver import PowerAnalyzerDriver
from devices.power_analyzer.emulator import PowerAnalyzerEmulator
from hil.bench.loader import load_bench
from hil.emulation.physics import ElectricalState
from hil.errors import PlanError
from hil.measure.iec62301 import (
    ConditionSample,
    Criteria,
    condition_violation,
    decide,
    expanded_uncertainty,
    linear_fit,
    stability,
)
from hil.measure.limits import Limit, Outcome
from hil.plan.iec62301 import Iec62301Run
from hil.plan.loader import load_plan
from hil.plan.progress import MeasurementProgress
from hil.plan.resolve import resolve_plan
from hil.plan.resolved import Measurement, SignalRef
from hil.plan.verdicts import CATEGORY_INVALID, CATEGORY_LIMIT, MeasurementInvalid, StepFailed
from hil.report.record import StepRecord
from hil.transports.visa import VisaTransport
from tests.conftest import EMULATED_BENCH

C = Criteria()
GOOD = ConditionSample(0.0, 0.3, 230.0, 0.004, 0.3, 50.0, 1.414, 2.8, 0.5)


# --- statistics ---------------------------------------------------------------------------


def test_linear_fit_recovers_a_line_and_is_flat_for_one_x() -> None:
    xs = [0.0, 1.0, 2.0, 3.0]
    assert linear_fit(xs, [1.0 + 0.5 * x for x in xs]) == pytest.approx((0.5, 1.0))
    assert linear_fit([2.0, 2.0], [1.0, 3.0]) == (0.0, 2.0)


def test_stability_discards_the_first_third_by_time() -> None:
    times = [float(t) for t in range(901)]  # 15 min at 1 s
    # settling: 0.5 W for the first 5 min, then a flat 0.3 W: stable once discarded
    powers = [0.5 if t < 300 else 0.3 for t in times]
    s = stability(times, powers, C)
    assert (s.discarded, s.kept) == (300, 601)
    assert s.mean_w == pytest.approx(0.3)
    assert s.stable and s.slope_w_per_h == pytest.approx(0.0)
    assert s.period_s == 900


@pytest.mark.parametrize(
    ("level_w", "slope_w_per_h", "stable"),
    [
        (0.3, 0.009, True),  # ≤ 1 W: below 10 mW/h
        (0.3, 0.011, False),
        (0.3, -0.011, False),  # falling counts too
        (1.6, 0.015, True),  # > 1 W: below 1 %/h of the mean (16 mW/h)
        (1.6, 0.017, False),
    ],
)
def test_stability_slope_limits(level_w: float, slope_w_per_h: float, stable: bool) -> None:
    times = [float(t) for t in range(901)]
    powers = [level_w + slope_w_per_h * t / 3600 for t in times]
    s = stability(times, powers, C)
    assert s.slope_w_per_h == pytest.approx(slope_w_per_h, rel=1e-6)
    assert s.stable is stable
    assert s.limit_w_per_h == pytest.approx(0.010 if level_w <= 1 else 0.01 * s.mean_w)


def test_stability_of_nothing_is_not_stable() -> None:
    assert stability([], [], C).stable is False
    assert stability([0.0, 1.0], [0.3, 0.3], C).stable is False  # too few samples kept


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({}, None),
        ({"voltage_v": 232.3}, None),  # the edges are in bounds
        ({"voltage_v": 227.7}, None),
        ({"voltage_thd_percent": 2.0}, None),
        ({"voltage_crest_factor": 1.34}, None),
        ({"voltage_crest_factor": 1.49}, None),
        ({"voltage_v": 232.4}, "supply voltage 232.40 V is outside 230 V ± 1 %"),
        ({"voltage_v": 227.6}, "supply voltage 227.60 V"),
        ({"frequency_hz": 50.6}, "supply frequency 50.60 Hz"),
        ({"voltage_thd_percent": 2.01}, "THD 2.01 % is above 2 %"),
        ({"voltage_crest_factor": 1.339}, "crest factor 1.339 is outside 1.34–1.49"),
        ({"voltage_crest_factor": 1.491}, "crest factor 1.491"),
        ({"voltage_thd_percent": math.nan}, "no valid voltage THD"),
        ({"power_w": math.inf}, "no valid active power"),
    ],
)
def test_condition_violation(change: dict[str, float], words: str | None) -> None:
    found = condition_violation(replace(GOOD, **change), C)
    if words is None:
        assert found is None
    else:
        assert found is not None and words in found


def test_expanded_uncertainty_adds_the_statistical_part_in_quadrature() -> None:
    assert expanded_uncertainty(0.3, 0.0, 600, 0.01) == pytest.approx(0.01)
    assert expanded_uncertainty(0.3, 0.03, 100, 0.0) == pytest.approx(0.006)  # 2 σ/√n
    assert expanded_uncertainty(0.3, 0.03, 100, 0.008) == pytest.approx(0.01)  # 6-8-10


def test_instrument_specification_is_two_percent_or_ten_milliwatts() -> None:
    spec = load_map()
    assert spec.power_uncertainty(0.3) == pytest.approx(0.01)
    assert spec.power_uncertainty(0.5) == pytest.approx(0.01)
    assert spec.power_uncertainty(1.6) == pytest.approx(0.032)


@pytest.mark.parametrize(
    ("limit", "mean", "u95", "outcome", "judged"),
    [
        (Limit(maximum=0.5), 0.49, 0.01, Outcome.PASS, 0.50),  # mean + U95 = limit passes
        (Limit(maximum=0.5), 0.495, 0.01, Outcome.FAIL, 0.505),  # mean alone would pass
        (Limit(maximum=0.5, marginal_max=0.45), 0.44, 0.02, Outcome.MARGINAL, 0.46),
        (Limit(minimum=1.0), 1.01, 0.02, Outcome.FAIL, 0.99),
        (Limit(minimum=1.0, maximum=2.0), 1.5, 0.1, Outcome.PASS, 1.6),
        (Limit(maximum=0.5), math.nan, 0.01, Outcome.FAIL, math.nan),
    ],
)
def test_decision_rule(
    limit: Limit, mean: float, u95: float, outcome: Outcome, judged: float
) -> None:
    got, value = decide(limit, mean, u95)
    assert got is outcome
    assert value == pytest.approx(judged, nan_ok=True)


# --- the plan side: schema and resolution ---------------------------------------------------

PLAN = """\
spec: 1
id: T
title: t
devices: [power_analyzer]
steps:
  - id: m
    measure:
      signal: {signal}
      duration: 15 min
      interval: {interval}
      limit: {{max: 0.5, unit: {unit}}}
{extra}
"""


def _resolve(tmp_path: Path, signal: str = "power_analyzer.P", interval: str = "1 s",
             extra: str = "      method: iec62301", caps: dict[str, Any] | None = None,
             unit: str = "W") -> Any:  # fmt: skip
    path = tmp_path / "t.yaml"
    path.write_text(PLAN.format(signal=signal, interval=interval, extra=extra, unit=unit))
    loaded = load_bench(EMULATED_BENCH)
    plan = load_plan(path)
    capabilities = {**loaded.capabilities(), **(caps or {})}
    return resolve_plan(plan.instances({})[0], loaded.definitions(), capabilities)


def test_resolved_method_carries_the_criteria_and_the_extension_bound(tmp_path: Path) -> None:
    extra = "      method: iec62301\n      iec62301: {max_duration: 45 min, nominal_v: 120, nominal_hz: 60}"
    m = _resolve(tmp_path, extra=extra).steps[0].action
    assert isinstance(m, Measurement)
    assert (m.method, m.duration, m.max_duration) == ("iec62301", 900, 2700)
    assert m.criteria == Criteria(nominal_v=120, nominal_hz=60)
    default = _resolve(tmp_path).steps[0].action
    assert default.max_duration == 4 * 900 and default.criteria == Criteria()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"interval": "2 s"}, "interval ≤ 1 s"),
        ({"extra": "      method: iec62301\n      statistic: max"}, "judges the mean"),
        ({"extra": "      iec62301: {nominal_v: 230}"}, "need method: iec62301"),
        (
            {"extra": "      method: iec62301\n      iec62301: {max_duration: 10 min}"},
            "max_duration is shorter than duration",
        ),
        (
            {"signal": "power_analyzer.U", "unit": "V"},
            "measures active power in W; power_analyzer.U is in V",
        ),
        (
            {"caps": {"power_analyzer": frozenset({"power_meter"})}},
            "needs an instrument with the iec62301 capability",
        ),
    ],
)
def test_misuse_is_a_located_plan_error(tmp_path: Path, kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(PlanError, match="t.yaml:") as info:
        _resolve(tmp_path, **kwargs)
    assert words in str(info.value)


# --- a real sampling run on drifting loads --------------------------------------------------

SCALE = 0.002  # 15 plan minutes in 1.8 s


class DriftingLoad:
    """A physics link whose power follows ``watts(plan seconds since start)``."""

    def __init__(self, watts: Callable[[float], float]) -> None:
        self.watts = watts
        self.t0 = time.monotonic()

    def electrical_state(self, supply_v: float) -> ElectricalState:
        p = self.watts((time.monotonic() - self.t0) / SCALE)
        return ElectricalState.drawing(supply_v, p, 0.3)


@pytest.fixture
def sample_run(tmp_path: Path) -> Iterator[Callable[..., tuple[StepRecord, Any]]]:
    opened: list[Any] = []

    def run(load: DriftingLoad, max_duration: float = 1800.0, **supply: float) -> tuple[StepRecord, Any]:  # fmt: skip
        emu = PowerAnalyzerEmulator("pa", source=load, time_scale=SCALE, settings={"seed": 3})
        opened.append(emu)
        emu.open()
        for name, value in supply.items():
            emu.set_input(name, value)
        transport = VisaTransport("pa", resource=emu.endpoint["resource"])
        opened.append(transport)
        transport.open()
        definition = DEVICE_TYPE.definition({})
        driver = PowerAnalyzerDriver("pa", transport, definition, {"update_rate": 1.0})
        ref = SignalRef("pa", "P", definition.signals["P"])
        m = Measurement(ref, 900.0, 1.0, "mean", 0.0, Limit(maximum=0.5, unit="W"),
                        method="iec62301", criteria=Criteria(), max_duration=max_duration)  # fmt: skip
        rec = StepRecord("m", "m", "measure", "steps", None)
        runner = Iec62301Run(SCALE, time.sleep, tmp_path)
        try:
            return rec, runner.run(m, rec, driver)
        except StepFailed as failed:
            return rec, failed

    yield run
    for thing in reversed(opened):
        thing.close()


def test_a_settling_load_is_stable_once_the_first_third_is_discarded(sample_run: Any) -> None:
    rec, mean = sample_run(DriftingLoad(lambda t: 0.3 + 0.2 * math.exp(-t / 30)))
    assert mean == pytest.approx(0.3, abs=0.003)
    m = rec.measurement
    assert m.stability["stable"] and 900 <= m.stability["period_s"] < 1000
    assert "stable" in rec.message and "mean + U95" in rec.message
    assert [Path(p).suffix for p in m.evidence] == [".csv", ".json"]


def test_a_drift_that_stops_is_waited_out_by_extending(sample_run: Any) -> None:
    # 60 mW/h for the first 12 min, then flat: unstable at 15 min, stable later
    rec, mean = sample_run(DriftingLoad(lambda t: 0.3 + 0.06 * min(t, 720) / 3600))
    assert isinstance(mean, float), mean
    assert rec.measurement.stability["stable"]
    assert rec.measurement.stability["period_s"] > 1100  # extended by thirds of the period


def test_a_load_that_never_settles_fails_at_the_bound(sample_run: Any) -> None:
    rec, failed = sample_run(DriftingLoad(lambda t: 0.3 + 0.05 * t / 3600), max_duration=1200)
    assert isinstance(failed, StepFailed) and failed.category == CATEGORY_LIMIT
    assert "not stable after" in failed.message and "max 20 min" in failed.message
    assert rec.measurement.stability["stable"] is False
    assert rec.measurement.stability["period_s"] >= 1200


def test_a_bad_supply_stops_the_run_at_once_as_invalid(sample_run: Any) -> None:
    rec, invalid = sample_run(DriftingLoad(lambda t: 0.3), supply_v=240.0)
    assert isinstance(invalid, MeasurementInvalid) and invalid.category == CATEGORY_INVALID
    assert "supply voltage 240.00 V" in invalid.message
    # at once: the first sample stopped it, not the end of the period
    assert rec.measurement.outcome == "invalid" and len(rec.measurement.samples) == 1


# --- the progress bar ------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    with MeasurementProgress("IEC 62301 pa.P", 900.0, 90.0) as bar:
        bar.update(300.0, 900.0, "slope +1.0 mW/h")
    assert captured.getvalue() == ""  # captured output never holds the bar
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with MeasurementProgress("IEC 62301 pa.P", 900.0, 90.0) as bar:
        bar.update(300.0, 900.0, "slope +1.0 mW/h")
    drawn = terminal.getvalue()
    assert "10:00 left (plan time)" in drawn and "slope +1.0 mW/h" in drawn
    short = _Terminal()
    monkeypatch.setattr(sys, "stderr", short)
    with MeasurementProgress("IEC 62301 pa.P", 10.0, 1.0) as bar:  # 1 s of wall time
        bar.update(5.0, 10.0, "x")
    assert short.getvalue() == ""
