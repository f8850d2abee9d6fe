"""The explore file's schema (pydantic): a plan whose ``steps`` are searched for.

An explore file carries a plan's metadata, ``invariants``, ``setup`` and
``teardown``, and instead of ``steps`` an ``explore:`` section naming the
stimuli hypothesis may apply, each field's bounds, the waits between them and
the sequence length. Names are plain strings here; ``hil.explore.stimuli``
checks them against the bench.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from hil.plan.model import STEP_ID, Duration, Invariant, PositiveDuration, Ref, Step, Value
from hil.plan.model import Requirement as Requirement
from hil.plan.model import Severity as Severity

SUPPORTED_SPEC = 1
PROFILES = ("ci", "deep")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Range(Strict):
    """Draw a number between ``min`` and ``max`` (inside the device's own range)."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"impossible range: min {self.min:g} > max {self.max:g}")
        return self


# a fixed value, a list of values to choose from, or a range
FieldSpec = Value | Annotated[list[Value], Field(min_length=1)] | Range


class StimulusSpec(Strict):
    """One rule: a plan step (send, set or call) with drawn arguments.

    Fields left out are drawn from the device definition (its value table, or
    its declared range). ``when`` makes the rule applicable only while the
    sequence has last written those values (``set`` targets, setup included);
    with ``expect: refused`` that is how a "must refuse in this state" rule is
    written.
    """

    send: Ref | None = None
    set: Ref | None = None
    call: Ref | None = None
    signals: dict[str, FieldSpec] = Field(default_factory=dict)
    args: dict[str, FieldSpec] = Field(default_factory=dict)
    value: FieldSpec | None = None
    expect: Literal["accepted", "refused"] = "accepted"
    when: dict[Ref, Value] = Field(default_factory=dict)
    # the waits drawn after this stimulus (default: the exploration's ``waits``): a
    # drive command needs time to reach speed, a lock request none
    waits: list[Duration] | None = Field(default=None, min_length=1)

    @property
    def kind(self) -> str:
        return "send" if self.send else "set" if self.set else "call"

    @property
    def ref(self) -> str:
        ref = self.send or self.set or self.call
        assert ref is not None
        return ref

    @model_validator(mode="after")
    def _shape(self) -> StimulusSpec:
        given = [k for k in ("send", "set", "call") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a stimulus has exactly one of send, set, call")
        kind = given[0]
        if self.signals and kind != "send":
            raise ValueError("'signals' goes with send")
        if self.args and kind != "call":
            raise ValueError("'args' goes with call")
        if self.value is not None and kind != "set":
            raise ValueError("'value' goes with set")
        if self.expect == "refused" and kind != "call":
            raise ValueError("expect: refused goes with call (a device refuses a command)")
        return self


class Budget(Strict):
    """Examples per profile (each example is one sequence run on a fresh bench)."""

    ci: Annotated[int, Field(ge=1, le=1000)] = 25
    deep: Annotated[int, Field(ge=1, le=100_000)] = 500


class Exploration(Strict):
    stimuli: list[StimulusSpec] = Field(min_length=1)
    waits: list[Duration] = Field(default_factory=lambda: [0.0], min_length=1)
    max_steps: Annotated[int, Field(ge=1, le=50)] = 8
    # observed after every sequence, so a late violation is seen (and emitted)
    settle: PositiveDuration = 1.0
    budget: Budget = Budget()
    seed: Annotated[int, Field(ge=0)] = 0
    # offer "the previous stimulus again, same values" as a rule of its own
    repeat: StrictBool = True


class ExploreFile(Strict):
    spec: int
    id: Annotated[str, Field(pattern=STEP_ID)]
    title: str = Field(min_length=1)
    description: str = ""
    version: str = "1"
    requirements: list[Any] = Field(default_factory=list)  # checked as the plan checks them
    severity: Severity = "normal"
    tags: list[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]] = Field(
        default_factory=list
    )
    owner: str = ""
    devices: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]] = Field(min_length=1)
    require: str | None = None
    invariants: list[Invariant] = Field(default_factory=list)
    setup: list[Step] = Field(default_factory=list)
    teardown: list[Step] = Field(default_factory=list)
    explore: Exploration
