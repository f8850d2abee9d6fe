"""A limit is plain typed data that evaluates a value to an outcome."""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


class Outcome(enum.StrEnum):
    PASS = "pass"
    MARGINAL = "marginal"  # inside the limit but inside the marginal band: passes, flagged
    FAIL = "fail"


@dataclass(frozen=True)
class Limit:
    minimum: float | None = None
    maximum: float | None = None
    marginal_min: float | None = None
    marginal_max: float | None = None
    unit: str | None = None

    def check(self) -> str | None:
        """Why this limit is impossible, or None."""
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None and lo > hi:
            return f"min {lo:g} is greater than max {hi:g}"
        if self.marginal_min is not None and lo is not None and self.marginal_min < lo:
            return f"marginal_min {self.marginal_min:g} is below min {lo:g}"
        if self.marginal_max is not None and hi is not None and self.marginal_max > hi:
            return f"marginal_max {self.marginal_max:g} is above max {hi:g}"
        if lo is None and hi is None:
            return "a limit needs min, max or both"
        return None

    def evaluate(self, value: float) -> Outcome:
        if math.isnan(value):
            return Outcome.FAIL
        if self.minimum is not None and value < self.minimum:
            return Outcome.FAIL
        if self.maximum is not None and value > self.maximum:
            return Outcome.FAIL
        if self.marginal_min is not None and value < self.marginal_min:
            return Outcome.MARGINAL
        if self.marginal_max is not None and value > self.marginal_max:
            return Outcome.MARGINAL
        return Outcome.PASS

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.minimum is not None and self.maximum is not None:
            return f"{self.minimum:g}{unit} ≤ x ≤ {self.maximum:g}{unit}"
        if self.maximum is not None:
            return f"x ≤ {self.maximum:g}{unit}"
        return f"x ≥ {self.minimum:g}{unit}"


STATISTICS = ("mean", "min", "max", "last", "median")


def reduce(values: Sequence[float], statistic: str) -> float:
    if not values:
        return math.nan
    if statistic == "mean":
        return statistics.fmean(values)
    if statistic == "min":
        return min(values)
    if statistic == "max":
        return max(values)
    if statistic == "median":
        return statistics.median(values)
    if statistic == "last":
        return values[-1]
    raise ValueError(f"unknown statistic {statistic!r}")
