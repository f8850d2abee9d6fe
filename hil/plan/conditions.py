"""Resolved constraints: what a value must satisfy, in the units drivers report.

Bounds may be ``Computed`` (a ``${…}`` over saved values or signals); the
runner binds them when the step starts, so the judgement itself is plain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from hil.bench.definition import SignalInfo
from hil.expressions import Expression

Lookup = Callable[[str], Any]


@dataclass(frozen=True)
class Computed:
    """A value computed when the step runs."""

    expr: Expression

    def __str__(self) -> str:
        return "${" + self.expr.source + "}"


def bind(value: Any, lookup: Lookup) -> Any:
    return value.expr.evaluate(lookup) if isinstance(value, Computed) else value


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Condition:
    equals: Any = None
    not_: Any = None
    minimum: Any = None
    maximum: Any = None
    one_of: tuple[Any, ...] | None = None
    any_of: tuple[Condition, ...] | None = None
    tolerance: Any = None  # absolute, in the signal's unit
    tolerance_percent: Any = None
    changes: bool = False
    unchanged: bool = False
    rising_through: Any = None
    falling_through: Any = None

    def bind(self, lookup: Lookup) -> Condition:
        """This condition with every computed bound evaluated now."""
        changes: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Computed):
                changes[f.name] = bind(v, lookup)
            elif f.name == "any_of" and v is not None:
                changes[f.name] = tuple(c.bind(lookup) for c in v)
        return replace(self, **changes) if changes else self

    @property
    def is_event(self) -> bool:
        return self.changes or self.rising_through is not None or self.falling_through is not None

    def holds(self, value: Any, baseline: Any = None, previous: Any = None) -> bool:
        """Whether ``value`` satisfies every part; ``baseline`` is the value at the
        step's start (changes/unchanged), ``previous`` the observation before."""
        if value is None:
            return False
        if self.equals is not None and not self._equal(value):
            return False
        if self.not_ is not None and value == self.not_:
            return False
        if self.minimum is not None and not (_num(value) and value >= self.minimum):
            return False
        if self.maximum is not None and not (_num(value) and value <= self.maximum):
            return False
        if self.one_of is not None and value not in self.one_of:
            return False
        if self.any_of is not None and not any(
            c.holds(value, baseline, previous) for c in self.any_of
        ):
            return False
        if self.changes and (baseline is None or value == baseline):
            return False
        if self.unchanged and baseline is not None and value != baseline:
            return False
        if self.rising_through is not None and not (
            _num(previous) and _num(value) and previous < self.rising_through <= value
        ):
            return False
        return not (
            self.falling_through is not None
            and not (_num(previous) and _num(value) and previous > self.falling_through >= value)
        )

    def _equal(self, value: Any) -> bool:
        if self.tolerance is None and self.tolerance_percent is None:
            return bool(value == self.equals)
        if not (_num(value) and _num(self.equals)):
            return False
        band = self.tolerance if self.tolerance is not None else 0.0
        if self.tolerance_percent is not None:
            band = abs(self.equals) * self.tolerance_percent / 100.0
        return bool(abs(value - self.equals) <= band)

    def describe(self, info: SignalInfo) -> str:
        lab = info.label
        parts: list[str] = []
        if self.equals is not None:
            tol = ""
            if self.tolerance is not None:
                tol = f" ± {_show(self.tolerance, lab)}"
            elif self.tolerance_percent is not None:
                tol = f" ± {self.tolerance_percent:g} %"
            parts.append(f"= {_show(self.equals, lab)}{tol}")
        if self.not_ is not None:
            parts.append(f"≠ {_show(self.not_, lab)}")
        if self.minimum is not None:
            parts.append(f"≥ {_show(self.minimum, lab)}")
        if self.maximum is not None:
            parts.append(f"≤ {_show(self.maximum, lab)}")
        if self.one_of is not None:
            parts.append("in {" + ", ".join(_show(v, lab) for v in self.one_of) + "}")
        if self.any_of is not None:
            parts.append("(" + " or ".join(c.describe(info) for c in self.any_of) + ")")
        if self.changes:
            parts.append("changes")
        if self.unchanged:
            parts.append("unchanged")
        if self.rising_through is not None:
            parts.append(f"rises through {_show(self.rising_through, lab)}")
        if self.falling_through is not None:
            parts.append(f"falls through {_show(self.falling_through, lab)}")
        return " and ".join(parts)


def _show(value: Any, label: Callable[[Any], str]) -> str:
    return str(value) if isinstance(value, Computed) else label(value)
