"""What a resolved plan is made of: the runner's input, with every name looked up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hil.bench.definition import SignalInfo
from hil.expressions import Expression
from hil.measure.iec62301 import Criteria
from hil.measure.limits import Limit
from hil.plan.conditions import Condition
from hil.plan.loader import PlanInstance
from hil.plan.model import Prompt


@dataclass(frozen=True)
class SignalRef:
    device: str
    name: str
    info: SignalInfo

    @property
    def text(self) -> str:
        return f"{self.device}.{self.name}"


@dataclass(frozen=True)
class Trigger:
    signal: SignalRef
    condition: Condition  # rising/falling through, or equals
    timeout: float

    def describe(self) -> str:
        c = self.condition
        if c.rising_through is not None:
            return f"{self.signal.text} rose through {self.signal.info.label(c.rising_through)}"
        if c.falling_through is not None:
            return f"{self.signal.text} fell through {self.signal.info.label(c.falling_through)}"
        return f"{self.signal.text} = {self.signal.info.label(c.equals)}"


@dataclass(frozen=True)
class Stimulus:
    device: str
    stimulus: str
    values: Mapping[str, Any]  # may hold Computed values
    shown: Mapping[str, str] = field(default_factory=dict)  # values as a person reads them
    refused: bool = False  # the device must turn this down


@dataclass(frozen=True)
class Expectation:
    signals: tuple[SignalRef, ...]
    condition: Condition
    within: float | None
    stays_for: float | None
    after: Trigger | None

    def describe(self, condition: Condition | None = None) -> str:
        c = condition or self.condition
        what = " and ".join(f"{s.text} {c.describe(s.info)}" for s in self.signals)
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
    method: str = "sampling"  # or "iec62301" (then ``criteria`` and ``max_duration`` apply)
    criteria: Criteria | None = None
    max_duration: float | None = None


@dataclass(frozen=True)
class Pause:
    duration: float
    scaled: bool = True


@dataclass(frozen=True)
class Question:
    prompt: Prompt
    expect: Any


@dataclass(frozen=True)
class Block:
    name: str


Action = Stimulus | Expectation | Measurement | Pause | Question | Block


@dataclass(frozen=True)
class ResolvedStep:
    section: str
    index: int
    id: str
    title: str
    kind: str
    action: Action
    line: int | None
    skip: str | None = None  # why the bench's capabilities exclude this step
    save_as: str | None = None
    children: tuple[ResolvedStep, ...] = ()


@dataclass(frozen=True)
class InvariantCheck:
    id: str
    name: str
    expr: Expression
    signals: tuple[SignalRef, ...]
    line: int | None


@dataclass(frozen=True)
class ResolvedPlan:
    instance: PlanInstance
    setup: tuple[ResolvedStep, ...]
    steps: tuple[ResolvedStep, ...]
    teardown: tuple[ResolvedStep, ...]
    invariants: tuple[InvariantCheck, ...] = ()
    skip: str | None = None
    signals: Mapping[str, SignalRef] = field(default_factory=dict)

    @property
    def loaded(self) -> Any:
        return self.instance.loaded

    @property
    def id(self) -> str:
        return self.instance.id

    @property
    def devices(self) -> list[str]:
        return list(self.instance.plan.devices)
