"""IEC 62301 ed.2 / EN 50564 sampling method: validity, stability, uncertainty, decision.

Pure functions over samples, so QA can recompute a verdict from the raw
samples a run keeps (``hil.plan.iec62301`` does the sampling on a bench):

- *validity*: every sample's supply must be within ±1 % of the nominal
  voltage and frequency, its voltage THD at most 2 % and its voltage crest
  factor within 1.34–1.49; a run outside them is **invalid**, neither passed
  nor failed (and so is one whose instrument does not report them);
- *stability*: the first third of the period is discarded; a straight line
  fitted to power over time in the rest must have a slope below 10 mW/h
  (mean ≤ 1 W) or below 1 %/h of the mean (mean > 1 W);
- *uncertainty*: U95 combines the instrument's specified uncertainty at the
  mean with the standard error of the mean (k = 2) in quadrature;
- *decision rule*: PASS when mean + U95 ≤ max (and mean − U95 ≥ min).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from hil.measure.limits import Limit, Outcome

DECISION_RULE = (
    "IEC 62301 sampling method; PASS when mean + U95 ≤ max (and mean − U95 ≥ min), "
    "U95 = instrument specification at the mean ⊕ 2 × standard error of the mean"
)
COVERAGE_K = 2.0  # about 95 % for the statistical part
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class ConditionSample:
    """One instrument update: the power and the supply conditions it was taken under."""

    t: float  # capture timestamp (wall clock, seconds since the epoch)
    power_w: float
    voltage_v: float
    current_a: float
    power_factor: float
    frequency_hz: float
    voltage_crest_factor: float
    current_crest_factor: float
    voltage_thd_percent: float


SAMPLE_FIELDS = tuple(ConditionSample.__dataclass_fields__)


@runtime_checkable
class ConditionMeter(Protocol):
    """An instrument that can take IEC 62301 samples (a power analyzer's driver)."""

    def read_conditions(self, signal: str) -> ConditionSample:
        """One fresh update of the element whose active power is ``signal``."""
        ...

    def power_uncertainty(self, power_w: float) -> float:
        """The instrument's specified expanded (95 %) uncertainty at ``power_w``, in W."""
        ...


@dataclass(frozen=True)
class Criteria:
    """The method's numbers (IEC 62301 ed.2 clauses 4 and 5.3.2)."""

    nominal_v: float = 230.0
    nominal_hz: float = 50.0
    supply_tolerance: float = 0.01  # ±1 % of nominal, voltage and frequency
    max_thd_percent: float = 2.0
    crest_factor_min: float = 1.34
    crest_factor_max: float = 1.49
    low_power_w: float = 1.0  # at or below: an absolute slope limit
    slope_low_w_per_h: float = 0.010
    slope_relative_per_h: float = 0.01  # above low_power_w: 1 % of the mean per hour
    discard_fraction: float = 1.0 / 3.0

    def describe(self) -> str:
        tol = self.supply_tolerance * 100
        return (
            f"supply {self.nominal_v:g} V ± {tol:g} %, {self.nominal_hz:g} Hz ± {tol:g} %, "
            f"voltage THD ≤ {self.max_thd_percent:g} %, voltage crest factor "
            f"{self.crest_factor_min:g}–{self.crest_factor_max:g}"
        )


def condition_violation(s: ConditionSample, c: Criteria) -> str | None:
    """Why ``s`` was not taken under valid conditions, or None."""
    unreported = [
        name
        for name, value in (
            ("active power", s.power_w),
            ("voltage", s.voltage_v),
            ("frequency", s.frequency_hz),
            ("voltage crest factor", s.voltage_crest_factor),
            ("voltage THD", s.voltage_thd_percent),
        )
        if not math.isfinite(value)
    ]
    if unreported:
        return (
            f"the instrument reported no valid {', '.join(unreported)} (NaN or over range), "
            "so the measurement conditions cannot be shown"
        )
    lo_v, hi_v = c.nominal_v * (1 - c.supply_tolerance), c.nominal_v * (1 + c.supply_tolerance)
    if not lo_v <= s.voltage_v <= hi_v:
        return (
            f"supply voltage {s.voltage_v:.2f} V is outside {c.nominal_v:g} V ± "
            f"{c.supply_tolerance * 100:g} % ({lo_v:.1f}–{hi_v:.1f} V)"
        )
    lo_f, hi_f = c.nominal_hz * (1 - c.supply_tolerance), c.nominal_hz * (1 + c.supply_tolerance)
    if not lo_f <= s.frequency_hz <= hi_f:
        return (
            f"supply frequency {s.frequency_hz:.2f} Hz is outside {c.nominal_hz:g} Hz ± "
            f"{c.supply_tolerance * 100:g} %"
        )
    if s.voltage_thd_percent > c.max_thd_percent:
        return f"supply voltage THD {s.voltage_thd_percent:.2f} % is above {c.max_thd_percent:g} %"
    if not c.crest_factor_min <= s.voltage_crest_factor <= c.crest_factor_max:
        return (
            f"supply voltage crest factor {s.voltage_crest_factor:.3f} is outside "
            f"{c.crest_factor_min:g}–{c.crest_factor_max:g}"
        )
    return None


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``(slope, intercept)``; slope 0 when ``xs`` do not vary."""
    n = len(xs)
    if n == 0:
        return 0.0, math.nan
    mx, my = math.fsum(xs) / n, math.fsum(ys) / n
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, my
    slope = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, my - slope * mx


@dataclass(frozen=True)
class Stability:
    """The stability verdict over the kept part of a sampling period."""

    kept: int  # samples after the first third was discarded
    discarded: int
    mean_w: float
    stdev_w: float
    slope_w_per_h: float
    limit_w_per_h: float
    period_s: float  # plan seconds from the first to the last sample
    stable: bool

    def describe(self) -> str:
        return (
            f"slope {self.slope_w_per_h * 1000:+.2f} mW/h (limit ±{self.limit_w_per_h * 1000:.2f} "
            f"mW/h) over the last {self.kept} of {self.kept + self.discarded} samples"
        )


def stability(times_s: Sequence[float], powers: Sequence[float], c: Criteria) -> Stability:
    """Discard the first third (by time) and judge the slope of the rest.

    ``times_s`` are plan seconds (the bench's time scale already undone), so
    the slope is per hour of the product's life, whatever the bench's speed.
    """
    if not times_s:
        nan = math.nan
        return Stability(0, 0, nan, nan, nan, nan, 0.0, False)
    start, end = times_s[0], times_s[-1]
    cut = start + (end - start) * c.discard_fraction
    kept = [(t, p) for t, p in zip(times_s, powers, strict=True) if t >= cut]
    xs, ys = [t for t, _ in kept], [p for _, p in kept]
    slope_per_s, _ = linear_fit(xs, ys)
    mean = statistics.fmean(ys)
    stdev = statistics.stdev(ys) if len(ys) > 1 else 0.0
    limit = c.slope_low_w_per_h if mean <= c.low_power_w else c.slope_relative_per_h * mean
    slope = slope_per_s * SECONDS_PER_HOUR
    stable = len(ys) >= 3 and abs(slope) < limit
    return Stability(
        len(ys), len(times_s) - len(ys), mean, stdev, slope, limit, end - start, stable
    )


def expanded_uncertainty(mean_w: float, stdev_w: float, n: int, instrument_w: float) -> float:
    """U95: the instrument's specified uncertainty ⊕ k × the standard error of the mean."""
    statistical = COVERAGE_K * stdev_w / math.sqrt(n) if n > 0 else math.inf
    return math.hypot(instrument_w, statistical)


def decide(limit: Limit, mean: float, u95: float) -> tuple[Outcome, float]:
    """The outcome by the decision rule, and the value it was judged on.

    The judged value is the mean moved by U95 towards the limit it could
    break: mean + U95 against a maximum, mean − U95 against a minimum.
    """
    if not math.isfinite(mean) or not math.isfinite(u95):
        return Outcome.FAIL, math.nan
    candidates: list[tuple[Outcome, float]] = []
    if limit.maximum is not None or limit.marginal_max is not None:
        candidates.append((limit.evaluate(mean + u95), mean + u95))
    if limit.minimum is not None or limit.marginal_min is not None:
        candidates.append((limit.evaluate(mean - u95), mean - u95))
    order = [Outcome.PASS, Outcome.MARGINAL, Outcome.FAIL]
    return max(candidates, key=lambda c: order.index(c[0]))
