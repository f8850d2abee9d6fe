"""The plan file's schema (pydantic). Plans are data: nothing here is executed.

Names that refer to the bench (``ev.BODY_Status.LockFL``) are plain strings
here; ``hil.plan.resolve`` checks them against the bench's definitions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from hil.units import parse_duration

SUPPORTED_SPEC = 1

Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Value = bool | int | float | str
Ref = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*\.[^\s]+$")]  # device.name…
Severity = Literal["blocker", "critical", "normal", "minor", "trivial"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Constraint(Strict):
    """What an observed value must satisfy; all given parts must hold."""

    equals: Value | None = None
    not_: Value | None = Field(None, alias="not")
    min: float | None = None
    max: float | None = None
    one_of: list[Value] | None = None

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(by_alias=True).items() if v is not None}

    @model_validator(mode="after")
    def _sane(self) -> Constraint:
        if not self.given():
            raise ValueError("give at least one of equals, not, min, max, one_of")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"impossible constraint: min {self.min:g} > max {self.max:g}")
        return self


class Anchor(Strict):
    """The event a deadline counts from (default: the start of the step)."""

    signal: Ref
    rising_through: float | None = None
    falling_through: float | None = None
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


class Expect(Constraint):
    """A signal meets the constraint ``within`` a bound, or stays in it ``for`` a duration."""

    signal: Ref | None = None
    signals: list[Ref] | None = Field(None, min_length=1)
    within: PositiveDuration | None = None
    for_: PositiveDuration | None = Field(None, alias="for")
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
    """Call a device action with arguments."""

    action: Ref
    args: dict[str, Value] = Field(default_factory=dict)


class LimitSpec(Strict):
    min: float | None = None
    max: float | None = None
    marginal_min: float | None = None
    marginal_max: float | None = None
    unit: str | None = None


class Measure(Strict):
    """Sample an instrument quantity over a duration and judge a statistic against a limit."""

    signal: Ref
    duration: PositiveDuration
    interval: PositiveDuration = 1.0
    statistic: Literal["mean", "min", "max", "last", "median"] = "mean"
    settle: Duration = 0.0
    limit: LimitSpec


class Wait(Strict):
    duration: Duration


STEP_KINDS = ("send", "set", "call", "expect", "measure", "wait")


class Step(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] | None = None
    name: str | None = None
    send: Send | None = None
    set: Set | None = None
    call: Call | None = None
    expect: Expect | None = None
    measure: Measure | None = None
    wait: Wait | None = None

    @property
    def kind(self) -> str:
        for k in STEP_KINDS:
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated step without an action")

    @property
    def action(self) -> Send | Set | Call | Expect | Measure | Wait:
        body = getattr(self, self.kind)
        assert body is not None
        return body  # type: ignore[no-any-return]

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        present = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(present) != 1:
            what = ", ".join(present) if present else "none"
            raise ValueError(f"a step has exactly one of {', '.join(STEP_KINDS)} (found: {what})")
        return self


class Plan(Strict):
    spec: int
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    title: str
    description: str = ""
    version: str = "1"
    requirements: list[str] = Field(default_factory=list)
    severity: Severity = "normal"
    tags: list[str] = Field(default_factory=list)
    devices: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]] = Field(min_length=1)
    setup: list[Step] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)
    teardown: list[Step] = Field(default_factory=list)
