"""Check a plan instance against a bench, before any device moves.

Every name (device, signal, stimulus, field, capability, parameter, saved
value) is looked up with a "did you mean"; every value is coerced to what
the driver reports (value-table names to numbers, ``"12 A"`` to amps). The
result is what the runner executes.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from hil.bench.definition import DeviceDefinition, Envelope, SignalInfo
from hil.errors import PlanError, did_you_mean
from hil.expressions import Expression, ExpressionError, parse_shared
from hil.gc_policy import gc_paused
from hil.measure.limits import Limit
from hil.plan.conditions import Computed, Condition
from hil.plan.iec62301 import MethodError, iec62301_measurement
from hil.plan.loader import PlanInstance
from hil.plan.model import (
    Anchor,
    Call,
    Constraint,
    Expect,
    Group,
    Measure,
    Prompt,
    Send,
    Set,
    Step,
    Wait,
)
from hil.plan.resolved import (
    Action,
    Block,
    Expectation,
    InvariantCheck,
    Measurement,
    Pause,
    Question,
    ResolvedPlan,
    ResolvedStep,
    SignalRef,
    Stimulus,
    Trigger,
)
from hil.units import convert, split_quantity

Loc = tuple[str | int, ...]


class _Resolver:
    def __init__(
        self,
        instance: PlanInstance,
        definitions: Mapping[str, DeviceDefinition],
        capabilities: Mapping[str, frozenset[str]],
    ) -> None:
        self.instance = instance
        self.locs = instance.loaded.locations
        self.defs = definitions
        self.caps = capabilities
        self.plan_devices = set(instance.plan.devices)
        self.saved: set[str] = set()
        self.saved_later = _saves(instance)
        self.signals: dict[str, SignalRef] = {}

    def fail(self, loc: Loc, message: str, column: int | None = None) -> PlanError:
        line, col = self.locs.find(loc)
        if column is not None and col is not None:
            col = col + column - 1
        return PlanError(message, file=self.locs.file, line=line, column=col)

    # --- names ------------------------------------------------------------------------

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
        found = SignalRef(device, name, definition.signals[name])
        self.signals[found.text] = found
        return found

    def expression(self, source: str, loc: Loc, offset: int = 0) -> Expression:
        """A runtime expression; every name must be a parameter, saved value or signal."""
        try:
            expr = parse_shared(source)
        except ExpressionError as err:
            raise self.fail(loc, f"in {source!r}: {err.reason}", offset + int(err.column)) from None
        params = self.instance.values
        for name, column in expr.names():
            if name in params or name in self.saved:
                continue
            device, _, signal = name.partition(".")
            if device in self.plan_devices and device in self.defs and signal:
                if signal in self.defs[device].signals:
                    self.signal(name, loc)
                    continue
                hint = did_you_mean(signal, self.defs[device].signals)
            elif name in self.saved_later:
                raise self.fail(
                    loc,
                    f"in {source!r}: {name!r} is used before it is saved "
                    f"(step {self.saved_later[name]!r} saves it later)",
                    offset + column,
                )
            else:
                known = [*params, *self.saved, *self.plan_devices]
                hint = did_you_mean(name, known)
            raise self.fail(loc, f"in {source!r}: unknown name {name!r}; {hint}", offset + column)
        return expr

    def computed(self, value: Any, loc: Loc) -> Computed | None:
        if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
            return Computed(self.expression(value[2:-1], loc, 3))
        return None

    def value(self, info: SignalInfo, value: Any, loc: Loc) -> Any:
        computed = self.computed(value, loc)
        if computed is not None:
            return computed
        try:
            if isinstance(value, str) and value not in info.choices:
                q = split_quantity(value)
                if q is not None:
                    return info.coerce(convert(q[0], q[1], info.unit))
            return info.coerce(value)
        except ValueError as err:
            raise self.fail(loc, str(err)) from err

    def requirement(self, source: str | None, loc: Loc) -> str | None:
        """Why the bench cannot run this (plan or step), or None; typos are errors."""
        if source is None:
            return None
        try:
            expr = parse_shared(source)
        except ExpressionError as err:
            raise self.fail(loc, f"in require {source!r}: {err.reason}", int(err.column)) from None
        for name, column in expr.names():
            device, dot, cap = name.partition(".")
            if not dot:
                raise self.fail(
                    loc, f"require names {name!r}: write device.capability, e.g. {name}.uds", column
                )
            if device not in self.plan_devices:
                raise self.fail(
                    loc,
                    f"require names {name!r}: write device.capability with a device of this "
                    f"plan; " + did_you_mean(device, self.plan_devices),
                    column,
                )
            known = self.defs[device].all_capabilities if device in self.defs else frozenset()
            if cap not in known:
                raise self.fail(
                    loc,
                    f"unknown capability {cap!r} of {device!r}; " + did_you_mean(cap, known),
                    column,
                )
        try:
            met = expr.evaluate(
                lambda n: n.partition(".")[2] in self.caps.get(n.partition(".")[0], ())
            )
        except ExpressionError as err:
            raise self.fail(loc, f"in require {source!r}: {err.reason}", int(err.column)) from None
        if met is True:
            return None
        missing = sorted(
            n
            for n, _ in expr.names()
            if n.partition(".")[2] not in self.caps.get(n.partition(".")[0], ())
        )
        lacks = f"; the bench lacks {', '.join(missing)}" if missing else ""
        return f"requires {source}{lacks}"

    # --- constraints ------------------------------------------------------------------

    def condition(self, c: Constraint, info: SignalInfo, loc: Loc) -> Condition:
        given = c.given()

        def conv(key: str) -> Any:
            v = given.get(key)
            return None if v is None else self.value(info, v, (*loc, key))

        for key in ("min", "max", "rising_through", "falling_through"):
            if given.get(key) is not None and info.kind not in ("number", "enum"):
                raise self.fail((*loc, key), f"{info.name} is {info.kind}; '{key}' needs a number")
        tol, tol_pct = None, None
        if c.tolerance is not None:
            tol, tol_pct = self._tolerance(c.tolerance, info, (*loc, "tolerance"))
        return Condition(
            equals=conv("equals"),
            not_=conv("not"),
            minimum=conv("min"),
            maximum=conv("max"),
            one_of=None
            if c.one_of is None
            else tuple(self.value(info, v, (*loc, "one_of", i)) for i, v in enumerate(c.one_of)),
            any_of=None
            if c.any_of is None
            else tuple(
                self.condition(sub, info, (*loc, "any_of", i)) for i, sub in enumerate(c.any_of)
            ),
            tolerance=tol,
            tolerance_percent=tol_pct,
            changes=bool(c.changes),
            unchanged=bool(c.unchanged),
            rising_through=conv("rising_through"),
            falling_through=conv("falling_through"),
        )

    def _tolerance(self, raw: Any, info: SignalInfo, loc: Loc) -> tuple[Any, Any]:
        if isinstance(raw, int | float):
            return raw, None
        computed = self.computed(raw, loc)
        if computed is not None:
            return computed, None
        text = str(raw).strip()
        if text.endswith("%"):
            try:
                return None, float(text[:-1])
            except ValueError:
                raise self.fail(
                    loc, f"cannot read tolerance {raw!r}; write e.g. 1 % or 0.5 A"
                ) from None
        return self.value(info, text, loc), None

    # --- steps ------------------------------------------------------------------------

    def steps(self, section: str, steps: Sequence[Step], base: Loc) -> tuple[ResolvedStep, ...]:
        return tuple(self.step(section, i, s, (*base, i)) for i, s in enumerate(steps))

    def step(self, section: str, index: int, step: Step, loc: Loc) -> ResolvedStep:
        skip = self.requirement(step.require, (*loc, "require"))
        kind = step.kind  # found once: the property looks through every kind of step
        base: Loc = (*loc, kind)
        body = getattr(step, kind)
        children: tuple[ResolvedStep, ...] = ()
        action: Action
        if isinstance(body, Send):
            action = self._fields(body.message, body.signals, ("message",), base, "signals")
        elif isinstance(body, Set):
            action = self.stimulus(
                body.target,
                {"value": body.value},
                ("property", "input", "setting"),
                (*base, "target"),
            )
        elif isinstance(body, Call):
            action = self._fields(body.action, body.args, ("action",), base, "args")
            if body.expect == "refused":
                action = dataclasses.replace(action, refused=True)
        elif isinstance(body, Expect):
            action = self._expect(body, base)
        elif isinstance(body, Measure):
            action = self._measure(body, base)
        elif isinstance(body, Prompt):
            action = Question(
                body, body.expect if body.expect is not None else _default_answer(body)
            )
        elif isinstance(body, Group):
            action = Block(body.name)
            children = self.steps(section, body.steps, (*base, "steps"))
        else:
            assert isinstance(body, Wait)
            action = Pause(body.duration, body.scaled)
        if step.save_as is not None:
            self.saved.add(step.save_as)
        line, _ = self.locs.find(loc)
        return ResolvedStep(
            section,
            index,
            step.id or f"{section}-{'.'.join(str(p + 1) for p in loc if isinstance(p, int))}",
            step.name or _title(kind, action),
            kind,
            action,
            line,
            skip,
            step.save_as,
            children,
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
        for fname, raw in values.items():
            finfo = info.fields.get(fname)
            if finfo is None:
                raise self.fail(
                    loc, f"{ref} has no field {fname!r}; " + did_you_mean(fname, info.fields)
                )
            # a set's value sits beside its target: (…, "set", "value")
            vloc = (*loc[:-1], "value") if fname == "value" else loc
            out[fname] = self.value(finfo, raw, vloc)
        shown = {k: _shown(info.fields[k], v) for k, v in out.items()}
        return Stimulus(device, name, out, shown)

    def _fields(
        self, ref: str, values: Mapping[str, Any], kinds: Sequence[str], base: Loc, key: str
    ) -> Stimulus:
        head = "message" if key == "signals" else "action"
        stim = self.stimulus(ref, {}, kinds, (*base, head))
        info = self.defs[stim.device].stimuli[stim.stimulus]
        out: dict[str, Any] = {}
        for fname, raw in values.items():
            if fname not in info.fields:
                what = "signal" if key == "signals" else "argument"
                raise self.fail(
                    (*base, key, fname),
                    f"{head} {stim.stimulus!r} has no {what} {fname!r}; "
                    + did_you_mean(fname, info.fields),
                )
            out[fname] = self.value(info.fields[fname], raw, (*base, key, fname))
        shown = {k: _shown(info.fields[k], v) for k, v in out.items()}
        return Stimulus(stim.device, stim.stimulus, out, shown)

    def _expect(self, body: Expect, base: Loc) -> Expectation:
        key = "signal" if body.signal else "signals"
        signals = tuple(
            self.signal(r, (*base, key) if body.signal else (*base, key, i))
            for i, r in enumerate(body.refs())
        )
        condition = self.condition(body, signals[0].info, base)
        for s in signals[1:]:  # every listed signal must accept the same constraint values
            self.condition(body, s.info, base)
        trigger = self._anchor(body.after, (*base, "after")) if body.after else None
        return Expectation(signals, condition, body.within, body.for_, trigger)

    def _anchor(self, a: Anchor, loc: Loc) -> Trigger:
        ref = self.signal(a.signal, (*loc, "signal"))
        c = Constraint.model_validate(
            {
                k: v
                for k, v in a.model_dump().items()
                if k in ("rising_through", "falling_through", "equals") and v is not None
            }
        )
        return Trigger(ref, self.condition(c, ref.info, loc), a.timeout)

    def _measure(self, body: Measure, base: Loc) -> Measurement:
        ref = self.signal(body.signal, (*base, "signal"))
        if ref.info.kind != "number":
            raise self.fail(
                (*base, "signal"), f"{ref.text} is {ref.info.kind}; measure needs a number"
            )
        spec = body.limit
        factor = 1.0
        if spec.unit and ref.info.unit and spec.unit != ref.info.unit:
            try:
                factor = convert(1.0, spec.unit, ref.info.unit)
            except ValueError as err:
                raise self.fail((*base, "limit", "unit"), str(err)) from err
        bounds: dict[str, float | None] = {}
        for key in ("min", "max", "marginal_min", "marginal_max"):
            v = getattr(spec, key)
            if isinstance(v, str):
                raise self.fail(
                    (*base, "limit", key),
                    "measurement limits must be known before the run: "
                    "use parameters in ${…}, not saved values or signals",
                )
            bounds[key] = None if v is None else v * factor
        limit = Limit(
            bounds["min"],
            bounds["max"],
            bounds["marginal_min"],
            bounds["marginal_max"],
            ref.info.unit or spec.unit,
        )
        problem = limit.check()
        if problem:
            raise self.fail((*base, "limit"), f"impossible limit: {problem}")
        if body.interval > body.duration:
            raise self.fail((*base, "interval"), "interval is longer than the measurement duration")
        if body.method == "iec62301":
            caps = self.caps.get(ref.device, frozenset())
            try:
                return iec62301_measurement(body, ref, limit, caps)
            except MethodError as err:
                raise self.fail((*base, err.key), str(err)) from None
        return Measurement(ref, body.duration, body.interval, body.statistic, body.settle, limit)

    def invariants(self) -> tuple[InvariantCheck, ...]:
        out = []
        for i, inv in enumerate(self.instance.plan.invariants):
            loc: Loc = ("invariants", i, "always")
            before, self.signals = self.signals, {}
            expr = self.expression(inv.always, loc)
            refs = tuple(self.signals.values())
            self.signals = {**before, **self.signals}
            if not refs:
                raise self.fail(loc, "an invariant must name at least one signal to watch")
            line, _ = self.locs.find(loc)
            out.append(InvariantCheck(inv.id, inv.name or inv.always, expr, refs, line))
        return (*out, *self.envelopes())

    def envelopes(self) -> list[InvariantCheck]:
        """The safety envelopes the plan's devices declare: watched like its invariants."""
        out = []
        for i, device in enumerate(self.instance.plan.devices):
            for env in self.defs[device].envelope:
                loc: Loc = ("devices", i)
                before, self.signals = self.signals, {}
                expr = self.expression(_envelope_text(env, device), loc)
                refs = tuple(self.signals.values())
                self.signals = {**before, **self.signals}
                line, _ = self.locs.find(loc)
                name = f"{device} safety envelope: {env.name}"
                out.append(InvariantCheck(f"{device}.{env.id}", name, expr, refs, line))
        return out


@functools.lru_cache(maxsize=1024)
def _envelope_text(envelope: Envelope, device: str) -> str:
    return envelope.for_device(device)


def _saves(instance: PlanInstance) -> dict[str, str]:
    """save_as name → the id (or position) of the step that saves it."""
    out: dict[str, str] = {}

    def walk(steps: Sequence[Step], where: str) -> None:
        for i, step in enumerate(steps):
            if step.save_as:
                out.setdefault(step.save_as, step.id or f"{where} {i + 1}")
            if step.group is not None:
                walk(step.group.steps, where)

    plan = instance.plan
    for section in ("setup", "steps", "teardown"):
        walk(getattr(plan, section), section)
    return out


def _shown(info: SignalInfo, value: Any) -> str:
    return str(value) if isinstance(value, Computed) else info.label(value)


def _default_answer(p: Prompt) -> Any:
    return True if p.kind == "confirm" else None


def _title(kind: str, action: Action) -> str:
    if isinstance(action, Stimulus):
        vals = ", ".join(f"{k}={action.shown.get(k, v)}" for k, v in action.values.items())
        return f"{kind} {action.device}.{action.stimulus}" + (f" ({vals})" if vals else "")
    if isinstance(action, Expectation):
        return f"expect {action.describe()}"
    if isinstance(action, Measurement):
        if action.method == "iec62301":
            return (
                f"measure {action.signal.text} by IEC 62301 (at least {action.duration:g} s, "
                f"mean + U95 against {action.limit.describe()})"
            )
        return f"measure {action.signal.text} {action.statistic} over {action.duration:g} s"
    if isinstance(action, Question):
        return f"{action.prompt.kind}: {action.prompt.message}"
    if isinstance(action, Block):
        return action.name
    assert isinstance(action, Pause)
    return f"wait {action.duration:g} s"


def resolve_plan(
    instance: PlanInstance,
    definitions: Mapping[str, DeviceDefinition],
    capabilities: Mapping[str, frozenset[str]] | None = None,
) -> ResolvedPlan:
    """Check ``instance`` against the bench; raises ``PlanError`` at the first problem."""
    with gc_paused():  # see hil.gc_policy
        return _resolve_plan(instance, definitions, capabilities)


def _resolve_plan(
    instance: PlanInstance,
    definitions: Mapping[str, DeviceDefinition],
    capabilities: Mapping[str, frozenset[str]] | None,
) -> ResolvedPlan:
    caps = (
        capabilities
        if capabilities is not None
        else {n: d.capabilities for n, d in definitions.items()}
    )
    r = _Resolver(instance, definitions, caps)
    for i, device in enumerate(instance.plan.devices):
        if device not in definitions:
            raise r.fail(
                ("devices", i),
                f"unknown device {device!r}: the bench does not have it; "
                + did_you_mean(device, definitions),
            )
    skip = r.requirement(instance.plan.require, ("require",))
    plan = instance.plan
    setup = r.steps("setup", plan.setup, ("setup",))
    steps = r.steps("steps", plan.steps, ("steps",))
    teardown = r.steps("teardown", plan.teardown, ("teardown",))
    invariants = r.invariants()
    return ResolvedPlan(instance, setup, steps, teardown, invariants, skip, dict(r.signals))
