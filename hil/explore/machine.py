"""The hypothesis state machine: each step draws a stimulus, the sequence runs as a plan.

Each step appends one plan step (and the wait drawn after it) to the
sequence; the machine's teardown writes the sequence as a plan, reads it
back with the normal loader and runs it with the PlanRunner on a fresh
bench, whose invariant watch judges every observation after every step.
A plan that fails is a ``ViolationFound``; hypothesis then shrinks the list
of steps, and what it hands back is the plan to emit.

How a step is drawn is tuned for a small budget of slow sequences:

* one rule, ``step``, draws which stimulus (among those whose ``when``
  holds) rather than one hypothesis rule per stimulus: hypothesis switches a
  random subset of *rules* off per example (swarm testing), and with a
  handful of stimuli most sequences then lacked one of the three a defect
  needs. With one rule its mutator still copies one drawn step over
  another, which is how a stimulus comes twice.
* the previous stimulus again, same values, is one more choice (unless the
  file says ``repeat: false``): "the same request twice in a row" (a
  debounce, a counter, a toggle) is then one draw, not two matching ones.
* the budget counts *distinct* sequences: hypothesis draws the same plan
  again under other choices, and a plan already run is judged from its
  first run instead of being run again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.stateful import RuleBasedStateMachine, rule

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
    not_run: int = 0  # sequences past the budget (or an aborted draw's part), unrun
    repeated: int = 0  # sequences drawn again, judged from their first run
    failures: list[ViolationFound] = field(default_factory=list)
    # every sequence run, by its plan text: its failure, or None when it passed
    verdicts: dict[str, ViolationFound | None] = field(default_factory=dict)

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
    budget: int  # distinct sequences to run on the bench, at most
    repeat: bool  # offer ``repeat_previous``
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
        self.previous: tuple[ExploreRule, Mapping[str, Any], float] | None = None

    def apply(self, r: ExploreRule, drawn: Mapping[str, Any], wait: float) -> None:
        self.previous = (r, drawn, wait)
        self.stimuli += 1
        body = r.body(drawn)
        self.steps.append(stimulus_step(self.stimuli, body))
        if wait > 0:
            self.steps.append(wait_step(self.stimuli, wait))
        if r.kind == "set":
            self.written[r.ref] = drawn["value"]

    def teardown(self) -> None:
        ctx, tally = self.context, self.context.tally
        if current_build_context().data.frozen:
            # the draw ran out of choices part way (hypothesis calls teardown anyway):
            # the sequence is not one hypothesis will judge, so it costs no bench time
            tally.not_run += 1
            return
        text = render(ctx.document(self.steps, ctx.settle))
        if text in tally.verdicts:
            tally.repeated += 1
            verdict = tally.verdicts[text]
        elif tally.shrink_budget_spent or (not tally.failures and tally.examples >= ctx.budget):
            # one sequence costs seconds of bench time and hypothesis has no bound on
            # generating or shrinking: past the budget a new candidate "passes" unrun,
            # so the search ends at once, and the smallest failure seen is the result
            tally.not_run += 1
            return
        else:
            verdict = self._run(text)
        if verdict is not None:
            # raised from this one line whether run now or before: hypothesis tells
            # failures apart by where they are raised
            raise ViolationFound(verdict.record, verdict.text, verdict.steps, verdict.example)

    def _run(self, text: str) -> ViolationFound | None:
        ctx, tally = self.context, self.context.tally
        path = ctx.work / "sequence.yaml"
        path.write_text(text, encoding="utf-8")
        record = ctx.run(path)
        tally.examples += 1
        tally.steps += self.stimuli
        if record.status is Status.BROKEN:
            tally.ended_by_refusal += 1
        found = None
        if record.status in FINDINGS:
            found = ViolationFound(record, text, self.steps, tally.examples)
            tally.failures.append(found)
        tally.verdicts[text] = found
        return found


def _step(self: ExploreMachine, data: st.DataObject) -> None:
    ctx = self.context
    options = [r for r in ctx.rules if r.applies(self.written)]
    again = ctx.repeat and self.previous is not None
    if not options and not again:
        reject()  # every stimulus waits on a write no rule can make
    # the last index is "the previous stimulus again", when offered
    index = data.draw(st.integers(0, len(options) - 1 + again), label="stimulus")
    if index == len(options):
        assert self.previous is not None
        self.apply(*self.previous)
        return
    r = options[index]
    drawn = data.draw(r.strategy(), label=r.ref)
    wait = data.draw(st.sampled_from(list(r.waits if r.waits is not None else ctx.waits)))
    self.apply(r, drawn, wait)


def machine_class(name: str, ctx: SequenceContext) -> type[ExploreMachine]:
    """A state machine class whose one rule draws each step from ``ctx``'s stimuli."""
    return type(name, (ExploreMachine,), {"step": rule(data=st.data())(_step), "context": ctx})


def initial_writes(setup: Sequence[Any]) -> dict[str, Any]:
    """What the setup's ``set`` steps leave written (literal values only)."""
    out: dict[str, Any] = {}
    for step in setup:
        if step.set is not None and not (
            isinstance(step.set.value, str) and step.set.value.startswith("${")
        ):
            out[step.set.target] = step.set.value
    return out
