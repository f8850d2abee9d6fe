"""Plan parameters: typed values, overrides, matrix expansion, ``${…}`` substitution.

Parameters are known before the plan runs, so every ``${…}`` that refers to
parameters only is computed here, before schema validation: the validated
plan holds plain numbers, durations and strings. Expressions that also name
saved values or signals are left for the runner.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hil.errors import PlanError, did_you_mean
from hil.expressions import ExpressionError, parse_shared
from hil.plan.model import Parameter, Value
from hil.units import parse_duration
from hil.yamlio import Locations

_EMBEDDED = re.compile(r"\$\{([^{}]*)\}")
Loc = tuple[str | int, ...]


def coerce(name: str, p: Parameter, value: Any, where: str) -> Value:
    """Check and convert a parameter value (from the plan, a bench file or the CLI)."""
    try:
        out = _convert(p, value)
    except ValueError as err:
        raise ValueError(f"parameter {name!r} ({where}): {err}") from None
    if isinstance(out, int | float) and not isinstance(out, bool):
        if p.min is not None and out < p.min:
            raise ValueError(f"parameter {name!r} ({where}): {out:g} is below its min {p.min:g}")
        if p.max is not None and out > p.max:
            raise ValueError(f"parameter {name!r} ({where}): {out:g} is above its max {p.max:g}")
    if p.choices is not None and out not in p.choices:
        raise ValueError(f"parameter {name!r} ({where}): {out!r} is not one of {p.choices}")
    return out


def _convert(p: Parameter, value: Any) -> Value:
    text = isinstance(value, str)
    if p.type == "duration":
        return parse_duration(value)
    if p.type == "bool":
        if isinstance(value, bool):
            return value
        if text and value.lower() in ("true", "false"):
            return bool(value.lower() == "true")
        raise ValueError(f"expected true or false, got {value!r}")
    if p.type in ("number", "integer"):
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        if text:
            try:
                value = float(value) if p.type == "number" else int(value)
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
        if p.type == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ValueError(f"expected an integer, got {value!r}")
        if not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not finite")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


@dataclass(frozen=True)
class Instance:
    """One concrete run of a plan: its matrix values and all parameter values."""

    suffix: str  # "" or "[target_kmh=30]"
    values: Mapping[str, Value]
    data: Any  # the raw plan with parameter expressions substituted


def expand(
    data: Mapping[str, Any],
    parameters: Mapping[str, Parameter],
    matrix: Mapping[str, list[Value]],
    overrides: Mapping[str, Any],
    locs: Locations,
) -> list[Instance]:
    """Every matrix combination, with overrides applied, as substituted raw data."""
    base: dict[str, Value] = {}
    for name, p in parameters.items():
        try:
            base[name] = coerce(name, p, p.default, "default")
        except ValueError as err:
            raise locs.error(PlanError, ("parameters", name, "default"), str(err)) from None
    for name, value in overrides.items():
        if name not in parameters:
            raise PlanError(
                f"override of unknown parameter {name!r}; " + did_you_mean(name, parameters),
                file=locs.file,
            )
        try:
            base[name] = coerce(name, parameters[name], value, "override")
        except ValueError as err:
            raise PlanError(str(err), file=locs.file) from None
    axes: list[list[tuple[str, Value]]] = []
    for name, values in matrix.items():
        if name not in parameters:
            raise locs.error(
                PlanError,
                ("matrix", name),
                f"matrix names {name!r}, which is not a declared parameter; "
                + did_you_mean(name, parameters),
            )
        if not values:
            raise locs.error(PlanError, ("matrix", name), f"matrix entry {name!r} has no values")
        axis = []
        for i, v in enumerate(values):
            try:
                axis.append((name, coerce(name, parameters[name], v, "matrix")))
            except ValueError as err:
                raise locs.error(PlanError, ("matrix", name, i), str(err)) from None
        axes.append(axis)
    instances = []
    for combo in itertools.product(*axes) if axes else [()]:
        chosen = {**base, **dict(combo)}
        suffix = "[" + ",".join(f"{n}={_fmt(v)}" for n, v in combo) + "]" if combo else ""
        instances.append(Instance(suffix, chosen, substitute(data, chosen, locs)))
    return instances


def _fmt(value: Value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def substitute(data: Any, values: Mapping[str, Value], locs: Locations, path: Loc = ()) -> Any:
    """Replace ``${…}`` over parameters only; leave runtime expressions in place.

    Unchanged parts are returned as they are (not copied). Most values are plain
    scalars without ``${``: they are skipped in the loop, without a call or a path.
    """
    if isinstance(data, dict):
        changed: dict[Any, Any] | None = None
        for k, v in data.items():
            kind = type(v)
            if kind is str:
                if "${" not in v:
                    continue
                new = _text(v, values, locs, (*path, k))
            elif kind is dict or kind is list:
                new = substitute(v, values, locs, (*path, k))
            else:
                continue
            if new is not v:
                if changed is None:
                    changed = {}
                changed[k] = new
        return {**data, **changed} if changed else data
    if isinstance(data, list):
        items: list[Any] | None = None
        for i, v in enumerate(data):
            kind = type(v)
            if kind is str:
                if "${" not in v:
                    continue
                new = _text(v, values, locs, (*path, i))
            elif kind is dict or kind is list:
                new = substitute(v, values, locs, (*path, i))
            else:
                continue
            if new is not v:
                if items is None:
                    items = list(data)
                items[i] = new
        return data if items is None else items
    if isinstance(data, str) and "${" in data:
        return _text(data, values, locs, path)
    return data


def _text(data: str, values: Mapping[str, Value], locs: Locations, path: Loc) -> Any:
    """One string with ``${…}``: the value of a whole ``${…}``, or the text filled in."""
    whole = _EMBEDDED.fullmatch(data.strip())
    if whole:
        result = _evaluate(whole.group(1), data.index(whole.group(1)), values, locs, path)
        return data if result is _RUNTIME else result
    parts: list[str] = []
    last = 0
    for m in _EMBEDDED.finditer(data):
        result = _evaluate(m.group(1), m.start(1), values, locs, path)
        if result is _RUNTIME:
            return data
        parts += [data[last : m.start()], _fmt(result)]
        last = m.end()
    return "".join(parts) + data[last:]


_RUNTIME = object()


def _evaluate(
    source: str, offset: int, values: Mapping[str, Value], locs: Locations, path: Loc
) -> Any:
    try:
        expr = parse_shared(source)  # every instance of a plan substitutes the same texts
        if any(name not in values for name, _ in expr.names()):
            return _RUNTIME  # names a saved value or a signal: the runner computes it
        return expr.evaluate(lambda n: values[n])
    except ExpressionError as err:
        line, col = locs.find(path)  # looked up only for the message
        if col is not None and path in locs.quoted:
            col += 1  # the opening quote
        column = None if col is None else col + offset + int(err.column) - 1
        raise PlanError(
            f"in ${{{source}}}: {err.reason}", file=locs.file, line=line, column=column
        ) from None
