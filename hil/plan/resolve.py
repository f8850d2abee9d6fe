"""Check a plan against a bench's device definitions, before any device moves.

Every name (device, signal, stimulus, field) is looked up with a "did you
mean"; every value is coerced to what the driver reports (value-table names
to numbers, ``"12 A"`` to amps). The result is what the runner executes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hil.bench.definition import DeviceDefinition, SignalInfo
from hil.errors import PlanError, did_you_mean
from hil.measure.limits import Limit
from hil.plan.loader import LoadedPlan
from hil.plan.model import Anchor, Call, Constraint, Expect, Measure, Send, Set, Step, Wait
from hil.units import convert, split_quantity

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class SignalRef:
    device: str
    name: str
    info: SignalInfo

    @property
    def text(self) -> str:
        return f"{self.device}.{self.name}"


@dataclass(frozen=True)
class Condition:
    """A resolved constraint: values already in the units drivers report."""

    equals: Any = None
    not_: Any = None
    minimum: float | None = None
    maximum: float | None = None
    one_of: tuple[Any, ...] | None = None

    def holds(self, value: Any) -> bool:
        if value is None:
            return False
        if self.equals is not None and value != self.equals:
            return False
        if self.not_ is not None and value == self.not_:
            return False
        if self.minimum is not None and not (_num(value) and value >= self.minimum):
            return False
        if self.maximum is not None and not (_num(value) and value <= self.maximum):
            return False
        return not (self.one_of is not None and value not in self.one_of)

    def describe(self, info: SignalInfo) -> str:
        parts = []
        if self.equals is not None:
            parts.append(f"= {info.label(self.equals)}")
        if self.not_ is not None:
            parts.append(f"≠ {info.label(self.not_)}")
        if self.minimum is not None:
            parts.append(f"≥ {info.label(self.minimum)}")
        if self.maximum is not None:
            parts.append(f"≤ {info.label(self.maximum)}")
        if self.one_of is not None:
            parts.append("in {" + ", ".join(info.label(v) for v in self.one_of) + "}")
        return " and ".join(parts)


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Trigger:
    signal: SignalRef
    rising_through: float | None
    falling_through: float | None
    equals: Any
    timeout: float

    def describe(self) -> str:
        if self.rising_through is not None:
            return f"{self.signal.text} rose through {self.signal.info.label(self.rising_through)}"
        if self.falling_through is not None:
            return f"{self.signal.text} fell through {self.signal.info.label(self.falling_through)}"
        return f"{self.signal.text} = {self.signal.info.label(self.equals)}"


@dataclass(frozen=True)
class Stimulus:
    device: str
    stimulus: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Expectation:
    signals: tuple[SignalRef, ...]
    condition: Condition
    within: float | None
    stays_for: float | None
    after: Trigger | None

    def describe(self) -> str:
        what = " and ".join(f"{s.text} {self.condition.describe(s.info)}" for s in self.signals)
        if self.stays_for is not None:
            return f"{what} for {self.stays_for:g} s"
        anchor = f" after {self.after.describe()}" if self.after else ""
        return f"{what} within {self.within:g} s{anchor}"


@dataclass(frozen=True)
class Measurement:
    signal: SignalRef
    duration: float
    interval: float
    statistic: str
    settle: float
    limit: Limit


@dataclass(frozen=True)
class Pause:
    duration: float


Action = Stimulus | Expectation | Measurement | Pause


@dataclass(frozen=True)
class ResolvedStep:
    section: str
    index: int
    id: str
    title: str
    kind: str
    action: Action
    line: int | None


@dataclass(frozen=True)
class ResolvedPlan:
    loaded: LoadedPlan
    setup: tuple[ResolvedStep, ...]
    steps: tuple[ResolvedStep, ...]
    teardown: tuple[ResolvedStep, ...]

    @property
    def devices(self) -> list[str]:
        return list(self.loaded.plan.devices)


class _Resolver:
    def __init__(self, loaded: LoadedPlan, definitions: Mapping[str, DeviceDefinition]) -> None:
        self.loaded = loaded
        self.defs = definitions
        self.plan_devices = set(loaded.plan.devices)

    def fail(self, loc: Loc, message: str) -> PlanError:
        return self.loaded.locations.error(PlanError, loc, message)  # type: ignore[return-value]

    def device(self, name: str, loc: Loc) -> DeviceDefinition:
        if name not in self.defs:
            raise self.fail(loc, f"unknown device {name!r}; " + did_you_mean(name, self.defs))
        if name not in self.plan_devices:
            raise self.fail(loc, f"device {name!r} is used but not listed in the plan's 'devices'")
        return self.defs[name]

    def signal(self, ref: str, loc: Loc) -> SignalRef:
        device, _, name = ref.partition(".")
        definition = self.device(device, loc)
        if name not in definition.signals:
            raise self.fail(
                loc,
                f"unknown signal {name!r} on {device!r} ({definition.type_name}); "
                + did_you_mean(name, definition.signals),
            )
        return SignalRef(device, name, definition.signals[name])

    def value(self, info: SignalInfo, value: Any, loc: Loc) -> Any:
        try:
            if isinstance(value, str) and value not in info.choices:
                q = split_quantity(value)
                if q is not None:
                    return convert(q[0], q[1], info.unit)
            return info.coerce(value)
        except ValueError as err:
            raise self.fail(loc, str(err)) from err

    def condition(self, c: Constraint, info: SignalInfo, loc: Loc) -> Condition:
        def conv(v: Any, key: str) -> Any:
            return None if v is None else self.value(info, v, (*loc, key))

        for key in ("min", "max"):
            if getattr(c, key) is not None and info.kind not in ("number", "enum"):
                raise self.fail((*loc, key), f"{info.name} is {info.kind}; '{key}' needs a number")
        return Condition(
            equals=conv(c.equals, "equals"),
            not_=conv(c.not_, "not"),
            minimum=c.min,
            maximum=c.max,
            one_of=None
            if c.one_of is None
            else tuple(self.value(info, v, (*loc, "one_of", i)) for i, v in enumerate(c.one_of)),
        )

    def stimulus(
        self, ref: str, values: Mapping[str, Any], kinds: Sequence[str], loc: Loc
    ) -> Stimulus:
        device, _, name = ref.partition(".")
        definition = self.device(device, loc)
        info = definition.stimuli.get(name)
        if info is None or info.kind not in kinds:
            choices = [n for n, s in definition.stimuli.items() if s.kind in kinds]
            raise self.fail(
                loc,
                f"{device!r} has no {' or '.join(kinds)} named {name!r}; "
                + did_you_mean(name, choices),
            )
        out: dict[str, Any] = {}
        for field, raw in values.items():
            finfo = info.fields.get(field)
            if finfo is None:
                raise self.fail(
                    (*loc[:-1], field) if loc[-1] != "value" else loc,
                    f"{ref} has no field {field!r}; " + did_you_mean(field, info.fields),
                )
            out[field] = self.value(finfo, raw, loc)
        return Stimulus(device, name, out)

    def step(self, section: str, index: int, step: Step) -> ResolvedStep:
        base: Loc = (section, index, step.kind)
        body = step.action
        action: Action
        if isinstance(body, Send):
            action = self._send(body, base)
        elif isinstance(body, Set):
            action = self.stimulus(
                body.target,
                {"value": body.value},
                ("property", "input", "setting"),
                (*base, "target"),
            )
        elif isinstance(body, Call):
            action = self._call(body, base)
        elif isinstance(body, Expect):
            action = self._expect(body, base)
        elif isinstance(body, Measure):
            action = self._measure(body, base)
        else:
            assert isinstance(body, Wait)
            action = Pause(body.duration)
        step_id = step.id or f"{section}-{index + 1}"
        line, _ = self.loaded.locations.find((section, index))
        title = step.name or _title(step.kind, action)
        return ResolvedStep(section, index, step_id, title, step.kind, action, line)

    def _send(self, body: Send, base: Loc) -> Stimulus:
        stim = self.stimulus(body.message, {}, ("message",), (*base, "message"))
        info = self.defs[stim.device].stimuli[stim.stimulus]
        values: dict[str, Any] = {}
        for field, raw in body.signals.items():
            if field not in info.fields:
                raise self.fail(
                    (*base, "signals", field),
                    f"message {stim.stimulus!r} has no signal {field!r}; "
                    + did_you_mean(field, info.fields),
                )
            values[field] = self.value(info.fields[field], raw, (*base, "signals", field))
        return Stimulus(stim.device, stim.stimulus, values)

    def _call(self, body: Call, base: Loc) -> Stimulus:
        stim = self.stimulus(body.action, {}, ("action",), (*base, "action"))
        info = self.defs[stim.device].stimuli[stim.stimulus]
        values = {}
        for field, raw in body.args.items():
            if field not in info.fields:
                raise self.fail(
                    (*base, "args", field),
                    f"action {stim.stimulus!r} has no argument {field!r}; "
                    + did_you_mean(field, info.fields),
                )
            values[field] = self.value(info.fields[field], raw, (*base, "args", field))
        return Stimulus(stim.device, stim.stimulus, values)

    def _expect(self, body: Expect, base: Loc) -> Expectation:
        refs = body.refs()
        keyname = "signal" if body.signal else "signals"
        signals = tuple(
            self.signal(r, (*base, keyname) if body.signal else (*base, keyname, i))
            for i, r in enumerate(refs)
        )
        condition = self.condition(body, signals[0].info, base)
        for s in signals[1:]:  # every listed signal must accept the same constraint values
            self.condition(body, s.info, base)
        trigger = self._anchor(body.after, (*base, "after")) if body.after else None
        return Expectation(signals, condition, body.within, body.for_, trigger)

    def _anchor(self, a: Anchor, loc: Loc) -> Trigger:
        ref = self.signal(a.signal, (*loc, "signal"))
        for key in ("rising_through", "falling_through"):
            if getattr(a, key) is not None and ref.info.kind not in ("number", "enum"):
                raise self.fail(
                    (*loc, key), f"{ref.text} is {ref.info.kind}; '{key}' needs a number"
                )
        equals = None if a.equals is None else self.value(ref.info, a.equals, (*loc, "equals"))
        return Trigger(ref, a.rising_through, a.falling_through, equals, a.timeout)

    def _measure(self, body: Measure, base: Loc) -> Measurement:
        ref = self.signal(body.signal, (*base, "signal"))
        if ref.info.kind != "number":
            raise self.fail(
                (*base, "signal"), f"{ref.text} is {ref.info.kind}; measure needs a number"
            )
        spec = body.limit
        unit = spec.unit or ref.info.unit
        factor = 1.0
        if spec.unit and ref.info.unit and spec.unit != ref.info.unit:
            try:
                factor = convert(1.0, spec.unit, ref.info.unit)
            except ValueError as err:
                raise self.fail((*base, "limit", "unit"), str(err)) from err

        def scaled(v: float | None) -> float | None:
            return None if v is None else v * factor

        limit = Limit(
            scaled(spec.min),
            scaled(spec.max),
            scaled(spec.marginal_min),
            scaled(spec.marginal_max),
            ref.info.unit or unit,
        )
        problem = limit.check()
        if problem:
            raise self.fail((*base, "limit"), f"impossible limit: {problem}")
        if body.interval > body.duration:
            raise self.fail((*base, "interval"), "interval is longer than the measurement duration")
        return Measurement(ref, body.duration, body.interval, body.statistic, body.settle, limit)


def _title(kind: str, action: Action) -> str:
    if isinstance(action, Stimulus):
        vals = ", ".join(f"{k}={v}" for k, v in action.values.items())
        return f"{kind} {action.device}.{action.stimulus}" + (f" ({vals})" if vals else "")
    if isinstance(action, Expectation):
        return f"expect {action.describe()}"
    if isinstance(action, Measurement):
        return f"measure {action.signal.text} {action.statistic} over {action.duration:g} s"
    assert isinstance(action, Pause)
    return f"wait {action.duration:g} s"


def resolve_plan(loaded: LoadedPlan, definitions: Mapping[str, DeviceDefinition]) -> ResolvedPlan:
    """Check ``loaded`` against the bench; raises ``PlanError`` at the first problem."""
    r = _Resolver(loaded, definitions)
    for i, device in enumerate(loaded.plan.devices):
        if device not in definitions:
            raise r.fail(
                ("devices", i),
                f"unknown device {device!r}: the bench does not have it; "
                + did_you_mean(device, definitions),
            )
    sections = {
        section: tuple(r.step(section, i, s) for i, s in enumerate(getattr(loaded.plan, section)))
        for section in ("setup", "steps", "teardown")
    }
    return ResolvedPlan(loaded, sections["setup"], sections["steps"], sections["teardown"])
