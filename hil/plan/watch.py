"""Plan invariants, judged on every observation of the signals they name.

Not only the latest values after each step: the merged timeline since the
previous check, so a violation that lasted 30 ms between two steps is still
found, with the capture timestamp it happened at.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hil.bench.bench import Bench
from hil.expressions import ExpressionError
from hil.plan.resolved import InvariantCheck
from hil.plan.timeline import Timeline


@dataclass(frozen=True)
class Violation:
    message: str
    observed: dict[str, Any] = field(default_factory=dict)


class InvariantWatch:
    def __init__(
        self,
        bench: Bench,
        invariants: Sequence[InvariantCheck],
        since: float,
        lookup: Callable[[str], Any],
    ) -> None:
        self._lines = [(inv, Timeline(bench, inv.signals, since)) for inv in invariants]
        self._lookup = lookup
        self.evaluations = 0

    def check(self) -> Violation | None:
        """The first violation among observations since the last check, or None."""
        for inv, line in self._lines:
            for state in line.advance():
                if any(v is None for v in state.values):
                    continue  # not every signal seen yet: nothing to judge
                values = {
                    ref.text: ref.info.label(v) if ref.info.choices else v
                    for ref, v in zip(inv.signals, state.values, strict=True)
                }
                self.evaluations += 1
                try:
                    held = inv.expr.evaluate(
                        lambda n, vals=values: vals[n] if n in vals else self._lookup(n)  # type: ignore[misc]
                    )
                except ExpressionError as err:
                    held = f"not computable: {err.reason}"
                if held is not True:
                    shown = ", ".join(f"{k} = {v}" for k, v in values.items())
                    return Violation(
                        f"invariant {inv.id} ({inv.name}) violated at t={state.t:.6f}: {shown}"
                        + (f" ({held})" if isinstance(held, str) else ""),
                        {"invariant": inv.id, "violation_t": state.t, "values": values},
                    )
        return None
