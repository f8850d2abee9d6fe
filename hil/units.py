"""Durations and quantities written the way engineers write them: ``500 ms``, ``12 A``."""

from __future__ import annotations

import math
import re

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_QUANTITY = re.compile(rf"^\s*({_NUMBER})\s*([^\d\s].*?)?\s*$")
_DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}
_PREFIXES = {"µ": 1e-6, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6}


def parse_duration(value: object) -> float:
    """Seconds from ``2``, ``0.5``, ``"500 ms"``, ``"2 min"``; must be finite."""
    if isinstance(value, bool):
        raise ValueError(f"a duration is a number of seconds or e.g. '500 ms', not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        m = _QUANTITY.match(value)
        if not m:
            raise ValueError(f"cannot read {value!r} as a duration; write e.g. '500 ms' or '2 s'")
        unit = m.group(2) or "s"
        if unit not in _DURATION_UNITS:
            raise ValueError(
                f"unknown time unit {unit!r} in {value!r}; use one of {', '.join(_DURATION_UNITS)}"
            )
        seconds = float(m.group(1)) * _DURATION_UNITS[unit]
    else:
        raise ValueError(f"a duration is a number of seconds or e.g. '500 ms', not {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"duration {value!r} is not finite")
    return seconds


def split_quantity(text: str) -> tuple[float, str] | None:
    """``"12 A"`` → ``(12.0, "A")``; None when ``text`` is not a number with a unit."""
    m = _QUANTITY.match(text)
    if not m or not m.group(2):
        return None
    return float(m.group(1)), m.group(2)


def convert(value: float, unit: str, target: str | None) -> float:
    """Express ``value unit`` in ``target`` (same unit or an SI prefix of it)."""
    if target is None:
        raise ValueError(f"this value has no unit, but {value:g} {unit} was given")
    if unit == target:
        return value
    for prefix, factor in _PREFIXES.items():
        if unit == prefix + target:
            return value * factor
        if target == prefix + unit:
            return value / factor
    raise ValueError(f"unit {unit!r} does not convert to {target!r}")
