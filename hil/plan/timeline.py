"""Merged, incremental view of several signals' observations on capture time.

Expectations are judged here: on the timestamps the transports recorded,
never on when the runner happened to look.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hil.bench.bench import Bench
from hil.plan.resolve import Condition, SignalRef, Trigger


@dataclass(frozen=True)
class State:
    t: float
    values: tuple[Any, ...]  # None where a signal has not been seen yet


class Timeline:
    """Feeds new observations of ``signals`` (since ``since``) as a sequence of states.

    The first state carries the last observation before ``since`` of each
    signal (its time clamped to ``since``), so a condition that already held
    when the step began is seen at once.
    """

    def __init__(self, bench: Bench, signals: Sequence[SignalRef], since: float) -> None:
        self.bench = bench
        self.signals = tuple(signals)
        self.since = since
        self.current: list[Any] = [None] * len(signals)
        self._seen: list[float] = [float("-inf")] * len(signals)
        self.count = 0

    def advance(self) -> list[State]:
        events: list[tuple[float, int, Any]] = []
        for i, ref in enumerate(self.signals):
            last = self._seen[i]
            query_from = self.since if last == float("-inf") else last
            for sample in self.bench.get(ref.device).samples(ref.name, query_from):
                if sample.t > last:
                    events.append((sample.t, i, sample.value))
        events.sort(key=lambda e: e[0])
        states: list[State] = []
        for t, i, value in events:
            self._seen[i] = t
            self.current[i] = value
            self.count += 1
            states.append(State(max(t, self.since), tuple(self.current)))
        return states

    def labels(self) -> dict[str, str]:
        return {
            ref.text: ("not seen" if v is None else ref.info.label(v))
            for ref, v in zip(self.signals, self.current, strict=True)
        }


def all_hold(condition: Condition, state: State) -> bool:
    return all(condition.holds(v) for v in state.values)


def triggered(trigger: Trigger, previous: Any, value: Any) -> bool:
    """Whether the anchor event happened between two consecutive observations."""
    if value is None:
        return False
    if trigger.equals is not None:
        return bool(value == trigger.equals)
    if previous is None:
        return False
    if trigger.rising_through is not None:
        return bool(previous < trigger.rising_through <= value)
    assert trigger.falling_through is not None
    return bool(previous > trigger.falling_through >= value)
