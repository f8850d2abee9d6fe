"""Explore stimuli checked against the bench, and the hypothesis strategies they draw from.

A stimulus becomes a rule whose draw is one plan step body (``send``, ``set``
or ``call``) with every argument typed and bounded by the device definition:
a value table → ``sampled_from`` its names, a bool → true/false, a number →
a value within its declared range (or the narrower one the explore file
gives). What is drawn is written into the plan as is, so the plan loader and
resolver check it again when the sequence runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from hil.bench.definition import DeviceDefinition, SignalInfo, StimulusInfo
from hil.errors import PlanError, did_you_mean
from hil.explore.model import FieldSpec, Range, StimulusSpec
from hil.yamlio import Locations

Loc = tuple[str | int, ...]
_KINDS = {"send": ("message",), "set": ("property", "input", "setting"), "call": ("action",)}
_HEAD = {"send": "message", "set": "target", "call": "action"}
_FIELDS = {"send": "signals", "call": "args"}


@dataclass(frozen=True)
class ExploreRule:
    """One stimulus as hypothesis draws it: the step body, and when it applies."""

    name: str  # a Python identifier: hypothesis names the rule by it
    kind: str  # send, set or call
    ref: str
    fields: Mapping[str, st.SearchStrategy[Any]]
    expect: str = "accepted"
    when: Mapping[str, Any] = field(default_factory=dict)
    waits: tuple[float, ...] | None = None  # None: the exploration's

    def strategy(self) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries(dict(self.fields))

    def body(self, drawn: Mapping[str, Any]) -> dict[str, Any]:
        """The plan step body (``{"send": {...}}``) for the drawn values."""
        if self.kind == "set":
            return {"set": {"target": self.ref, "value": drawn["value"]}}
        if self.kind == "send":
            return {"send": {"message": self.ref, "signals": dict(drawn)}}
        call: dict[str, Any] = {"action": self.ref, "args": dict(drawn)}
        if self.expect == "refused":
            call["expect"] = "refused"
        return {"call": call}

    def applies(self, written: Mapping[str, Any]) -> bool:
        return all(written.get(k, _UNSET) == v for k, v in self.when.items())


_UNSET = object()


def build_rules(
    specs: Sequence[StimulusSpec],
    devices: Sequence[str],
    definitions: Mapping[str, DeviceDefinition],
    locs: Locations,
    base: Loc = ("explore", "stimuli"),
) -> list[ExploreRule]:
    """Check every stimulus against the bench; a problem is a ``PlanError`` at its line."""
    rules: list[ExploreRule] = []
    for i, spec in enumerate(specs):
        here = (*base, i)
        rules.append(_rule(spec, i, devices, definitions, locs, here))
    return rules


def _rule(
    spec: StimulusSpec,
    index: int,
    devices: Sequence[str],
    definitions: Mapping[str, DeviceDefinition],
    locs: Locations,
    here: Loc,
) -> ExploreRule:
    kind = spec.kind
    info = _stimulus(spec.ref, kind, devices, definitions, locs, (*here, kind))
    given: Mapping[str, FieldSpec | None]
    if kind == "set":
        given = {"value": spec.value}
        floc: Loc = (*here, "value")
    else:
        given = spec.signals if kind == "send" else spec.args
        floc = (*here, _FIELDS[kind])
        for name in given:
            if name not in info.fields:
                raise locs.error(
                    PlanError,
                    (*floc, name),
                    f"{spec.ref} has no field {name!r}; " + did_you_mean(name, info.fields),
                )
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for name, finfo in info.fields.items():
        where = floc if kind == "set" else (*floc, name)
        fields[name] = field_strategy(finfo, given.get(name), locs, where, spec.ref)
    for target in spec.when:
        _stimulus(target, "set", devices, definitions, locs, (*here, "when", target))
    slug = re.sub(r"[^A-Za-z0-9]+", "_", spec.ref).strip("_")
    waits = tuple(spec.waits) if spec.waits is not None else None
    return ExploreRule(
        f"r{index}_{kind}_{slug}", kind, spec.ref, fields, spec.expect, dict(spec.when), waits
    )


def _stimulus(
    ref: str,
    kind: str,
    devices: Sequence[str],
    definitions: Mapping[str, DeviceDefinition],
    locs: Locations,
    loc: Loc,
) -> StimulusInfo:
    device, _, name = ref.partition(".")
    if device not in devices:
        raise locs.error(
            PlanError,
            loc,
            f"{ref}: device {device!r} is not in this file's devices; "
            + did_you_mean(device, devices),
        )
    definition = definitions.get(device)
    if definition is None:
        raise locs.error(
            PlanError,
            loc,
            f"the bench has no device {device!r}; " + did_you_mean(device, definitions),
        )
    info = definition.stimuli.get(name)
    kinds = _KINDS[kind]
    if info is None or info.kind not in kinds:
        choices = [n for n, s in definition.stimuli.items() if s.kind in kinds]
        raise locs.error(
            PlanError,
            loc,
            f"{device!r} has no {' or '.join(kinds)} named {name!r}; "
            + did_you_mean(name, choices),
        )
    return info


def field_strategy(
    info: SignalInfo, spec: FieldSpec | None, locs: Locations, loc: Loc, ref: str
) -> st.SearchStrategy[Any]:
    """Values for one field: the explore file's (checked), else the definition's."""
    if spec is None:
        return _from_definition(info, locs, loc, ref)
    if isinstance(spec, Range):
        if info.kind not in ("number", "enum") or info.choices:
            raise locs.error(
                PlanError, loc, f"{ref} {info.name} is {info.kind}: a range needs a number"
            )
        lo = info.minimum if info.minimum is not None else -math.inf
        hi = info.maximum if info.maximum is not None else math.inf
        if spec.min < lo or spec.max > hi:
            raise locs.error(
                PlanError,
                loc,
                f"{ref} {info.name}: range {spec.min:g}..{spec.max:g} is outside the "
                f"device's {lo:g}..{hi:g}",
            )
        return _numbers(spec.min, spec.max)
    values = spec if isinstance(spec, list) else [spec]
    for v in values:
        _check(info, v, locs, loc, ref)
    return st.sampled_from(values) if len(values) > 1 else st.just(values[0])


def _check(info: SignalInfo, value: Any, locs: Locations, loc: Loc, ref: str) -> None:
    try:
        coerced = info.coerce(value)
    except ValueError as err:
        raise locs.error(PlanError, loc, f"{ref}: {err}") from err
    if isinstance(coerced, int | float) and not isinstance(coerced, bool):
        lo, hi = info.minimum, info.maximum
        if (lo is not None and coerced < lo) or (hi is not None and coerced > hi):
            raise locs.error(
                PlanError, loc, f"{ref} {info.name}: {value!r} is outside {lo:g}..{hi:g}"
            )


def _from_definition(
    info: SignalInfo, locs: Locations, loc: Loc, ref: str
) -> st.SearchStrategy[Any]:
    if info.choices:
        return st.sampled_from(sorted(info.choices, key=lambda n: info.choices[n]))
    if info.kind == "bool":
        return st.booleans()
    if info.kind in ("number", "enum") and info.minimum is not None and info.maximum is not None:
        return _numbers(info.minimum, info.maximum)
    raise locs.error(
        PlanError,
        loc,
        f"{ref} {info.name} ({info.kind}) has no declared range or value table: "
        "give its value, a list of values or {min, max} in the explore file",
    )


def _numbers(lo: float, hi: float) -> st.SearchStrategy[Any]:
    if float(lo).is_integer() and float(hi).is_integer():
        return st.integers(int(lo), int(hi))
    # two decimals: what a person writes in a plan, and it stays inside [lo, hi]
    return st.floats(lo, hi, allow_nan=False).map(lambda v: min(max(round(v, 2), lo), hi))
