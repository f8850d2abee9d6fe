"""The hypothesis state machine: one rule per stimulus, the sequence run as a plan.

Each rule appends one plan step (and the wait drawn after it) to the
sequence; the machine's teardown writes the sequence as a plan, reads it
back with the normal loader and runs it with the PlanRunner on a fresh
bench, whose invariant watch judges every observation after every step.
A plan that fails is a ``ViolationFound``; hypothesis then shrinks the list
of rules, i.e. the list of plan steps, and what it hands back is the plan to
emit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from hil.explore.sequence import render, stimulus_step, wait_step
from hil.explore.stimuli import ExploreRule
from hil.report.record import PlanRecord, Status

FINDINGS = (Status.FAILED, Status.INVALID)  # a device refusing (BROKEN) ends a sequence only


class ViolationFound(Exception):
    """A drawn sequence, run as a plan, failed."""

    def __init__(
        self, record: PlanRecord, text: str, steps: Sequence[Mapping[str, Any]], example: int
    ) -> None:
        super().__init__(record.reason)
        self.record = record
        self.text = text
        self.steps = list(steps)
        self.stimuli = sum(1 for s in steps if "wait" not in s)
        self.example = example


@dataclass
class Tally:
    """What the exploration did, for the report."""

    shrink_runs: int  # sequences run after the first failure, at most
    examples: int = 0
    steps: int = 0
    ended_by_refusal: int = 0
    not_run: int = 0  # shrink candidates past the budget
    failures: list[ViolationFound] = field(default_factory=list)

    @property
    def shrink_budget_spent(self) -> bool:
        if not self.failures:
            return False
        first = self.failures[0].example
        return self.examples - first >= self.shrink_runs

    def smallest(self) -> ViolationFound:
        return min(self.failures, key=lambda f: (f.stimuli, len(f.text)))


@dataclass(frozen=True)
class SequenceContext:
    """What every example needs: how to render, where to write, how to run."""

    rules: Sequence[ExploreRule]
    waits: Sequence[float]
    settle: float
    initial: Mapping[str, Any]  # values the setup writes (for ``when``)
    document: Callable[[Sequence[Mapping[str, Any]], float], dict[str, Any]]
    run: Callable[[Path], PlanRecord]
    work: Path
    tally: Tally


class ExploreMachine(RuleBasedStateMachine):
    context: SequenceContext  # set on the generated subclass

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[dict[str, Any]] = []
        self.written: dict[str, Any] = dict(self.context.initial)
        self.stimuli = 0

    def apply(self, r: ExploreRule, drawn: Mapping[str, Any], wait: float) -> None:
        self.stimuli += 1
        body = r.body(drawn)
        self.steps.append(stimulus_step(self.stimuli, body))
        if wait > 0:
            self.steps.append(wait_step(self.stimuli, wait))
        if r.kind == "set":
            self.written[r.ref] = drawn["value"]

    def teardown(self) -> None:
        ctx = self.context
        if ctx.tally.shrink_budget_spent:
            # one sequence costs seconds of bench time and hypothesis has no bound on
            # shrinking: past the budget a candidate "passes" unrun, so the shrinker
            # ends at once, and the smallest failure already seen is the result
            ctx.tally.not_run += 1
            return
        doc = ctx.document(self.steps, ctx.settle)
        text = render(doc)
        path = ctx.work / "sequence.yaml"
        path.write_text(text, encoding="utf-8")
        record = ctx.run(path)
        ctx.tally.examples += 1
        ctx.tally.steps += self.stimuli
        if record.status is Status.BROKEN:
            ctx.tally.ended_by_refusal += 1
        if record.status in FINDINGS:
            found = ViolationFound(record, text, self.steps, ctx.tally.examples)
            ctx.tally.failures.append(found)
            raise found


def _rule_method(r: ExploreRule, waits: Sequence[float]) -> Callable[..., None]:
    def apply(self: ExploreMachine, drawn: Mapping[str, Any], wait: float) -> None:
        self.apply(r, drawn, wait)

    apply.__name__ = apply.__qualname__ = r.name
    choices = list(r.waits if r.waits is not None else waits)
    method = rule(drawn=r.strategy(), wait=st.sampled_from(choices))(apply)
    if r.when:
        method = precondition(lambda self: r.applies(self.written))(method)
    return method


def machine_class(name: str, ctx: SequenceContext) -> type[ExploreMachine]:
    """A state machine class with one rule per stimulus of ``ctx``."""
    namespace: dict[str, Any] = {r.name: _rule_method(r, ctx.waits) for r in ctx.rules}
    namespace["context"] = ctx
    return type(name, (ExploreMachine,), namespace)


def initial_writes(setup: Sequence[Any]) -> dict[str, Any]:
    """What the setup's ``set`` steps leave written (literal values only)."""
    out: dict[str, Any] = {}
    for step in setup:
        if step.set is not None and not (
            isinstance(step.set.value, str) and step.set.value.startswith("${")
        ):
            out[step.set.target] = step.set.value
    return out
