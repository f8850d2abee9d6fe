"""The plan file's schema (pydantic). Plans are data: nothing here is executed.

Names that refer to the bench (``ev.BODY_Status.LockFL``) are plain strings
here; ``hil.plan.resolve`` checks them against the bench's definitions.
Values written ``${ … }`` are expressions (``hil.expressions``): over
parameters, they are computed before validation; over saved values and
signals, when the step runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from hil.units import parse_duration

SUPPORTED_SPEC = 1

IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
STEP_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
EXPR = r"^\$\{.*\}$"

_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "description": "seconds"},
        {
            "type": "string",
            "pattern": r"^\s*[0-9.eE+-]+\s*(us|µs|ms|s|min|h)?\s*$|^\$\{.*\}$",
            "description": "a duration such as '500 ms', '2 s', '15 min', or ${parameter}",
        },
    ]
}
Duration = Annotated[
    float, BeforeValidator(parse_duration), Field(ge=0), WithJsonSchema(_DURATION_SCHEMA)
]
PositiveDuration = Annotated[
    float, BeforeValidator(parse_duration), Field(gt=0), WithJsonSchema(_DURATION_SCHEMA)
]
Value = bool | int | float | str
Ref = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*\.[^\s]+$")]  # device.name…
Severity = Literal["blocker", "critical", "normal", "minor", "trivial"]
Expr = Annotated[str, Field(pattern=EXPR)]  # "${ … }", evaluated when the step runs
Number = float | str  # a number, a quantity ("30 km/h") or "${…}"; checked by the resolver
Identifier = Annotated[str, Field(pattern=IDENT)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- metadata -------------------------------------------------------------------------


class Requirement(Strict):
    """A requirement the plan verifies, with its safety class where it has one."""

    id: str = Field(min_length=1)
    asil: Literal["QM", "A", "B", "C", "D"] | None = None
    safety_class: str | None = None


def _requirement(value: Any) -> Any:
    return {"id": value} if isinstance(value, str) else value


ParameterType = Literal["number", "integer", "duration", "bool", "string"]


class Parameter(Strict):
    """A typed plan parameter; bench files and the command line may override it."""

    type: ParameterType = "number"
    default: Value
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    choices: list[Value] | None = None
    description: str = ""


# --- constraints ----------------------------------------------------------------------


class Constraint(Strict):
    """What an observed value must satisfy; every part given must hold."""

    equals: Value | None = None
    not_: Value | None = Field(default=None, alias="not")
    min: Number | None = None
    max: Number | None = None
    one_of: list[Value] | None = None
    any_of: list[Constraint] | None = Field(default=None, min_length=1)
    tolerance: Annotated[float, Field(ge=0)] | Expr | str | None = None
    changes: Literal[True] | None = None
    unchanged: Literal[True] | None = None
    rising_through: Number | None = None
    falling_through: Number | None = None

    def given(self) -> dict[str, Any]:
        """The constraint parts the plan wrote (by their YAML names)."""
        out: dict[str, Any] = {}
        fields = self.__dict__  # the validated values, read without attribute lookups
        for name in _CONSTRAINT_PARTS:
            value = fields[name]
            if value is not None:
                out["not" if name == "not_" else name] = value
        return out

    @model_validator(mode="after")
    def _sane(self) -> Constraint:
        parts = set(self.given()) - {"tolerance"}
        if not parts:
            raise ValueError(
                "give at least one of equals, not, min, max, one_of, any_of, changes, "
                "unchanged, rising_through, falling_through"
            )
        lo, hi = self.min, self.max
        if isinstance(lo, int | float) and isinstance(hi, int | float) and lo > hi:
            raise ValueError(f"impossible constraint: min {lo:g} > max {hi:g}")
        if self.tolerance is not None and self.equals is None:
            raise ValueError("'tolerance' applies to 'equals'")
        if self.changes and self.unchanged:
            raise ValueError("'changes' and 'unchanged' contradict each other")
        return self


_CONSTRAINT_PARTS = tuple(
    k for k in Constraint.model_fields if k not in ("signal", "signals", "within", "for_", "after")
)


class Anchor(Strict):
    """The event a deadline counts from (default: the start of the step)."""

    signal: Ref
    rising_through: Number | None = None
    falling_through: Number | None = None
    equals: Value | None = None
    timeout: PositiveDuration = 30.0

    @model_validator(mode="after")
    def _one_trigger(self) -> Anchor:
        given = [
            k
            for k in ("rising_through", "falling_through", "equals")
            if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "an anchor needs exactly one of rising_through, falling_through, equals"
            )
        return self


# --- step bodies ----------------------------------------------------------------------


class Expect(Constraint):
    """A signal meets the constraint ``within`` a bound, or stays in it ``for`` a duration."""

    signal: Ref | None = None
    signals: list[Ref] | None = Field(default=None, min_length=1)
    within: PositiveDuration | None = None
    for_: PositiveDuration | None = Field(default=None, alias="for")
    after: Anchor | None = None

    def refs(self) -> list[str]:
        return [self.signal] if self.signal else list(self.signals or [])

    @model_validator(mode="after")
    def _shape(self) -> Expect:
        if (self.signal is None) == (self.signals is None):
            raise ValueError("give exactly one of 'signal' or 'signals'")
        if (self.within is None) == (self.for_ is None):
            raise ValueError("give exactly one of 'within' (a deadline) or 'for' (stays within)")
        if self.after is not None and self.for_ is not None:
            raise ValueError("'after' anchors a deadline; it cannot be used with 'for'")
        if self.for_ is not None and (self.changes or self.rising_through or self.falling_through):
            raise ValueError("changes/rising_through/falling_through are events: use 'within'")
        return self


class Send(Strict):
    """Send a CAN message by name with signal values."""

    message: Ref
    signals: dict[str, Value] = Field(default_factory=dict)


class Set(Strict):
    """Write a property, an instrument setting, or impose a physical input."""

    target: Ref
    value: Value


class Call(Strict):
    """Call a device action with arguments.

    ``expect: refused`` makes the device's refusal (an error answer such as a
    MIoT result code or a protocol error) the pass condition: a safety plan
    checks that a forbidden command is turned down.
    """

    action: Ref
    args: dict[str, Value] = Field(default_factory=dict)
    expect: Literal["accepted", "refused"] = "accepted"


class LimitSpec(Strict):
    min: Number | None = None
    max: Number | None = None
    marginal_min: Number | None = None
    marginal_max: Number | None = None
    unit: str | None = None


class Iec62301(Strict):
    """Options of ``method: iec62301`` (IEC 62301 ed.2 / EN 50564, sampling method)."""

    max_duration: PositiveDuration | None = Field(
        default=None,
        description="how long the period may be extended while power is not stable "
        "(default: 4 × duration); still unstable then → the step fails",
    )
    nominal_v: Annotated[float, Field(gt=0)] = Field(
        default=230.0, description="nominal supply voltage (V); valid within ±1 %"
    )
    nominal_hz: Annotated[float, Field(gt=0)] = Field(
        default=50.0, description="nominal supply frequency (Hz); valid within ±1 %"
    )


class Measure(Strict):
    """Sample an instrument quantity over a duration and judge a statistic against a limit.

    ``method: iec62301`` runs the standby-power sampling method instead: after
    ``settle``, samples power and supply conditions every ``interval`` (≤ 1 s)
    for at least ``duration`` (≥ 15 min), discards the first third, extends
    the period while the power is not stable, reports a run on an
    out-of-bounds supply as INVALID, and passes when mean + U95 ≤ limit.
    """

    signal: Ref
    duration: PositiveDuration
    interval: PositiveDuration = 1.0
    statistic: Literal["mean", "min", "max", "last", "median"] = "mean"
    settle: Duration = 0.0
    limit: LimitSpec
    method: Literal["sampling", "iec62301"] = Field(
        default="sampling",
        description="sampling: the statistic of samples over duration; iec62301: the "
        "IEC 62301 standby-power method (stability, validity gate, U95 decision rule)",
    )
    iec62301: Iec62301 | None = None

    @model_validator(mode="after")
    def _method(self) -> Measure:
        if self.method == "iec62301":
            if self.statistic != "mean":
                raise ValueError("method iec62301 judges the mean; leave 'statistic' out")
            if self.interval > 1.0:
                raise ValueError("method iec62301 samples at 1 s or faster (interval ≤ 1 s)")
            top = self.iec62301.max_duration if self.iec62301 else None
            if top is not None and top < self.duration:
                raise ValueError("iec62301.max_duration is shorter than duration")
        elif self.iec62301 is not None:
            raise ValueError("'iec62301' options need method: iec62301")
        return self


class Wait(Strict):
    duration: Duration
    # plan time by default (the bench's time_scale applies); false for a device's
    # own timing rule that must run in real time (a UDS S3 timeout, a watchdog)
    scaled: bool = True


class Prompt(Strict):
    """An instruction or question for the operator; the answer is recorded.

    Answers come from the terminal, or from an answers file (``--hil-answers``)
    keyed by step id for unattended runs.
    """

    message: str = Field(min_length=1)
    kind: Literal["confirm", "text", "number", "choice", "instruction"] = "confirm"
    choices: list[str] | None = Field(default=None, min_length=2)
    expect: Value | None = None  # the answer that lets the plan go on (confirm: true)
    timeout: PositiveDuration = 600.0

    @model_validator(mode="after")
    def _shape(self) -> Prompt:
        if (self.kind == "choice") != (self.choices is not None):
            raise ValueError("'choices' goes with kind: choice, and kind: choice needs choices")
        if self.kind == "instruction" and self.expect is not None:
            raise ValueError("an instruction has no answer to expect")
        return self


class Group(Strict):
    """Named sub-steps, reported as one step with children."""

    name: str = Field(min_length=1)
    steps: list[Step] = Field(min_length=1)


STEP_KINDS = ("send", "set", "call", "expect", "measure", "wait", "prompt", "group")
SAVES = ("expect", "measure", "prompt")  # step kinds that produce a value for save_as


class Step(Strict):
    id: Annotated[str, Field(pattern=STEP_ID)] | None = None
    name: str | None = None
    require: str | None = Field(
        default=None, description="capability expression; unmet → step skipped"
    )
    save_as: Identifier | None = None
    send: Send | None = None
    set: Set | None = None
    call: Call | None = None
    expect: Expect | None = None
    measure: Measure | None = None
    wait: Wait | None = None
    prompt: Prompt | None = None
    group: Group | None = None

    @property
    def kind(self) -> str:
        fields = self.__dict__  # the validated values, read without attribute lookups
        for k in STEP_KINDS:
            if fields[k] is not None:
                return k
        raise AssertionError("validated step without an action")

    @property
    def action(self) -> Send | Set | Call | Expect | Measure | Wait | Prompt | Group:
        body = getattr(self, self.kind)
        assert body is not None
        return body  # type: ignore[no-any-return]

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        fields = self.__dict__
        present = [k for k in STEP_KINDS if fields[k] is not None]
        if len(present) != 1:
            what = ", ".join(present) if present else "none"
            raise ValueError(f"a step has exactly one of {', '.join(STEP_KINDS)} (found: {what})")
        if self.save_as is not None and present[0] not in SAVES:
            raise ValueError(f"save_as needs a step that yields a value ({', '.join(SAVES)})")
        return self


class Invariant(Strict):
    """A condition that must hold for the whole plan (judged on every observation)."""

    id: Annotated[str, Field(pattern=STEP_ID)]
    name: str = ""
    always: str = Field(min_length=1, description="expression that must stay true")


class Plan(Strict):
    spec: int
    id: Annotated[str, Field(pattern=STEP_ID)]
    title: str = Field(min_length=1)
    description: str = ""
    version: str = "1"
    requirements: list[Annotated[Requirement, BeforeValidator(_requirement)]] = Field(
        default_factory=list
    )
    severity: Severity = "normal"
    tags: list[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]] = Field(
        default_factory=list
    )
    owner: str = ""
    devices: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]] = Field(min_length=1)
    timeout: PositiveDuration | None = Field(
        default=None,
        description="watchdog: wall time after which the plan is aborted through the interlock "
        "(default: the bench's plan_timeout)",
    )
    require: str | None = Field(
        default=None, description="capability expression; unmet → plan skipped"
    )
    parameters: dict[Identifier, Parameter] = Field(default_factory=dict)
    matrix: dict[Identifier, list[Value]] = Field(default_factory=dict)
    invariants: list[Invariant] = Field(default_factory=list)
    setup: list[Step] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)
    teardown: list[Step] = Field(default_factory=list)

    @model_validator(mode="after")
    def _matrix_names_parameters(self) -> Plan:
        for name, values in self.matrix.items():
            if name not in self.parameters:
                raise ValueError(f"matrix names {name!r}, which is not a declared parameter")
            if not values:
                raise ValueError(f"matrix entry {name!r} has no values")
        return self
