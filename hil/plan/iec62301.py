"""The ``measure`` step's ``method: iec62301``: the IEC 62301 sampling method on a bench.

Settle, then sample power and supply conditions every ``interval`` for at
least ``duration`` of plan time (the bench's time scale applies, so a
15-minute period takes 90 s at 0.1); judge stability on the last two thirds
and extend the period, a third at a time, while it is unstable (up to
``max_duration``); stop at the first sample taken on an out-of-bounds
supply (INVALID). The verdict follows the decision rule of
``hil.measure.iec62301``; the raw samples go to a CSV file (and a JSON
summary) beside the plan's other evidence, so QA can recompute it.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Set
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hil.errors import ConfigError
from hil.measure.iec62301 import (
    DECISION_RULE,
    SAMPLE_FIELDS,
    ConditionMeter,
    ConditionSample,
    Criteria,
    Stability,
    condition_violation,
    decide,
    expanded_uncertainty,
    stability,
)
from hil.measure.limits import Limit, Outcome
from hil.plan.model import Iec62301, Measure
from hil.plan.progress import MeasurementProgress
from hil.plan.resolved import Measurement, SignalRef
from hil.plan.verdicts import CATEGORY_LIMIT, MeasurementInvalid, StepFailed
from hil.report.record import MeasurementRecord, StepRecord

DEFAULT_EXTENSION_FACTOR = 4  # max_duration defaults to 4 × the minimum period


class MethodError(ValueError):
    """A plan asks for the method where it cannot apply; ``key`` locates it in the step."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def iec62301_measurement(
    body: Measure, ref: SignalRef, limit: Limit, capabilities: Set[str]
) -> Measurement:
    """The resolved step, checked against the instrument's capabilities and the signal."""
    if "iec62301" not in capabilities:
        raise MethodError(
            f"method iec62301 needs an instrument with the iec62301 capability (one that "
            f"reports the supply conditions); {ref.device!r} has {sorted(capabilities)}",
            "method",
        )
    if ref.info.unit != "W":
        raise MethodError(
            f"method iec62301 measures active power in W; {ref.text} is in "
            f"{ref.info.unit or 'no unit'}",
            "signal",
        )
    opts = body.iec62301 or Iec62301()
    top = opts.max_duration
    if top is None:
        top = DEFAULT_EXTENSION_FACTOR * body.duration
    return Measurement(
        ref,
        body.duration,
        body.interval,
        "mean",
        body.settle,
        limit,
        method="iec62301",
        criteria=Criteria(nominal_v=opts.nominal_v, nominal_hz=opts.nominal_hz),
        max_duration=max(top, body.duration),
    )


class Iec62301Run:
    """One IEC 62301 measurement on an open bench (see the module docstring)."""

    def __init__(
        self,
        time_scale: float,
        sleep: Callable[[float], None],
        evidence: Path | None,
    ) -> None:
        self.scale = time_scale  # wall seconds per plan second (the bench's)
        self.sleep = sleep  # the runner's bounded sleep, which also checks the links
        self.evidence = evidence

    def run(self, m: Measurement, rec: StepRecord, meter: object) -> float:
        """Measure with ``meter`` (the driver of ``m.signal.device``); returns the mean."""
        criteria, top = m.criteria, m.max_duration
        assert criteria is not None and top is not None, "resolved by iec62301_measurement"
        if not isinstance(meter, ConditionMeter):
            raise ConfigError(
                f"{m.signal.device} cannot take IEC 62301 samples (its driver does not "
                "report supply conditions)"
            )
        if m.settle:
            self.sleep(m.settle * self.scale)
        samples: list[ConditionSample] = []
        times: list[float] = []
        title = f"IEC 62301 {m.signal.text}"
        with MeasurementProgress(title, m.duration, m.duration * self.scale) as bar:
            try:
                result = self._sample(m, meter, criteria, top, samples, times, bar)
            except MeasurementInvalid as invalid:
                self._record(m, rec, samples, times, None, math.nan, Outcome.FAIL, invalid)
                raise
        u95 = expanded_uncertainty(
            result.mean_w, result.stdev_w, result.kept, meter.power_uncertainty(result.mean_w)
        )
        outcome, judged = decide(m.limit, result.mean_w, u95)
        self._record(m, rec, samples, times, result, u95, outcome, None)
        where = f"{result.mean_w:.4f} W ± {u95:.4f} W (U95)"
        if not result.stable:
            raise StepFailed(
                f"{m.signal.text} not stable after {result.period_s / 60:.1f} min "
                f"(max {top / 60:g} min): {result.describe()}; mean {where}",
                CATEGORY_LIMIT,
            )
        rec.message = (
            f"mean {where}: mean + U95 = {judged:.4f} W, {outcome.value} against "
            f"{m.limit.describe()}; stable, {result.describe()}"
        )
        if outcome is Outcome.FAIL:
            raise StepFailed(
                f"{m.signal.text} mean + U95 = {judged:.4f} W ({where}), outside "
                f"{m.limit.describe()} by the decision rule mean + U95 ≤ limit "
                f"({len(samples)} samples over {result.period_s / 60:.1f} min)",
                CATEGORY_LIMIT,
            )
        return result.mean_w

    def _sample(
        self,
        m: Measurement,
        meter: ConditionMeter,
        criteria: Criteria,
        top: float,
        samples: list[ConditionSample],
        times: list[float],
        bar: MeasurementProgress,
    ) -> Stability:
        interval = m.interval * self.scale
        next_t = time.time()
        # plan time counts from the first sample's own timestamp, so the period the
        # stability verdict reports (first to last sample) is the one judged here
        t0: float | None = None
        check_at = m.duration  # plan seconds; then every third of the period
        result = Stability(0, 0, math.nan, math.nan, math.nan, math.nan, 0.0, False)
        status = "collecting"
        while True:
            wait = next_t - time.time()
            if wait > 0:
                self.sleep(wait)
            s = meter.read_conditions(m.signal.name)
            if t0 is None:
                t0 = s.t
            t_plan = (s.t - t0) / self.scale
            samples.append(s)
            times.append(t_plan)
            violation = condition_violation(s, criteria)
            if violation is not None:
                raise MeasurementInvalid(
                    f"invalid measurement conditions at +{t_plan:.0f} s: {violation} "
                    f"(IEC 62301 requires {criteria.describe()})",
                    {"violation": violation, "t_plan_s": round(t_plan, 3)},
                )
            # never catch up in a burst after a stall: samples stay `interval` apart
            next_t = max(next_t + interval, time.time())
            if t_plan >= check_at:
                result = stability(times, [x.power_w for x in samples], criteria)
                if result.stable or check_at >= top:
                    return result
                check_at = min(check_at + m.duration / 3, top)
                status = f"unstable ({result.slope_w_per_h * 1000:+.1f} mW/h), extending"
            elif len(samples) % 10 == 0 and len(samples) >= 6:
                live = stability(times, [x.power_w for x in samples], criteria)
                status = f"slope {live.slope_w_per_h * 1000:+.1f} mW/h"
            bar.update(t_plan, check_at, status)

    # --- the record and the evidence -----------------------------------------------

    def _record(
        self,
        m: Measurement,
        rec: StepRecord,
        samples: list[ConditionSample],
        times: list[float],
        result: Stability | None,
        u95: float,
        outcome: Outcome,
        invalid: MeasurementInvalid | None,
    ) -> None:
        criteria = m.criteria
        assert criteria is not None
        lim = m.limit
        conditions: dict[str, Any] = {"criteria": asdict(criteria)}
        if invalid is not None:
            conditions["violation"] = invalid.observed.get("violation")
        elif samples:
            conditions["observed"] = _ranges(samples)
        stab = asdict(result) if result is not None else {}
        rec.measurement = MeasurementRecord(
            name=m.signal.text,
            value=result.mean_w if result is not None else math.nan,
            unit=lim.unit,
            statistic="mean",
            limit=lim.describe(),
            limits={
                "min": lim.minimum,
                "max": lim.maximum,
                "marginal_min": lim.marginal_min,
                "marginal_max": lim.marginal_max,
            },
            outcome="invalid" if invalid is not None else outcome.value,
            samples=[(s.t, s.power_w) for s in samples],
            method="iec62301",
            uncertainty=None if invalid is not None else u95,
            decision_rule=DECISION_RULE,
            stability=stab,
            conditions=conditions,
        )
        if self.evidence is not None and samples:
            rec.measurement.evidence = self._write(rec, samples, times, result)

    def _write(
        self,
        rec: StepRecord,
        samples: list[ConditionSample],
        times: list[float],
        result: Stability | None,
    ) -> list[str]:
        assert self.evidence is not None and rec.measurement is not None
        self.evidence.mkdir(parents=True, exist_ok=True)
        stem = f"{rec.id}.iec62301"
        kept_from = len(samples) - result.kept if result is not None else len(samples)
        csv_path = self.evidence / f"{stem}.csv"
        with csv_path.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(["t_plan_s", *SAMPLE_FIELDS, "kept"])
            for i, (s, t_plan) in enumerate(zip(samples, times, strict=True)):
                row = [getattr(s, f) for f in SAMPLE_FIELDS]
                out.writerow([f"{t_plan:.3f}", *(f"{v:.6g}" for v in row), int(i >= kept_from)])
        summary = {k: v for k, v in asdict(rec.measurement).items() if k != "samples"}
        summary["samples_file"] = csv_path.name
        json_path = self.evidence / f"{stem}.json"
        json_path.write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
        return [str(csv_path), str(json_path)]


def _ranges(samples: list[ConditionSample]) -> dict[str, list[float]]:
    """Lowest and highest of each supply quantity over the run (for the report)."""
    keys = ("voltage_v", "frequency_hz", "voltage_thd_percent", "voltage_crest_factor")
    out: dict[str, list[float]] = {}
    for k in keys:
        values = [float(getattr(s, k)) for s in samples]
        out[k] = [round(min(values), 4), round(max(values), 4)]
    return out
