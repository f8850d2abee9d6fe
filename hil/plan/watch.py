"""Plan invariants, judged on every observation of the signals they name.

Not only the latest values after each step: the merged timeline since the
previous check, so a violation that lasted 30 ms between two steps is still
found, with the capture timestamp it happened at.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import can

from hil.bench.bench import Bench
from hil.expressions import ExpressionError
from hil.plan.resolved import InvariantCheck, SignalRef
from hil.plan.timeline import Timeline

WINDOW_S = 0.5  # evidence of a violation: what the wire carried this long either side


@dataclass(frozen=True)
class Violation:
    message: str
    observed: dict[str, Any] = field(default_factory=dict)
    t: float = 0.0
    signals: tuple[SignalRef, ...] = ()


class _Watched:
    """One invariant, its timeline, and the values it last held for."""

    def __init__(self, inv: InvariantCheck, line: Timeline) -> None:
        self.inv = inv
        self.line = line
        self.texts = tuple(ref.text for ref in inv.signals)
        # enum signals are judged by their value-table names ("CLOSED"), as plans write them
        self.labels = tuple(
            (i, ref.info.label) for i, ref in enumerate(inv.signals) if ref.info.choices
        )
        # its verdict depends on its signals alone, or also on saved values and parameters
        self.pure = {name for name, _ in inv.expr.names()} <= set(self.texts)
        self.held: tuple[Any, ...] | None = None
        # the held values' types, worked out when a state first equals them: an
        # invariant whose values change every frame never needs them
        self.held_types: tuple[type, ...] | None = None


class InvariantWatch:
    """Judges each invariant on every state of its signals since the last check.

    A cyclic bus repeats values: a state whose signals hold exactly the values
    (equal, and of the same types) of the state judged just before, which held,
    holds again without evaluating the expression. An invariant that also reads
    saved values or parameters reuses a verdict only within one check, since a
    step may save a new value between two checks.
    """

    def __init__(
        self,
        bench: Bench,
        invariants: Sequence[InvariantCheck],
        since: float,
        lookup: Callable[[str], Any],
    ) -> None:
        self._watched = [_Watched(inv, Timeline(bench, inv.signals, since)) for inv in invariants]
        self._lookup = lookup
        self._since = since
        self.evaluations = 0  # verdicts given: every state of every invariant
        self.reused = 0  # of those, verdicts reused from the state just before

    def check(self) -> Violation | None:
        """The first violation among observations since the last check, or None."""
        since = self._since
        evaluations = reused = 0  # counted locally: this loop runs per frame
        try:
            for watched in self._watched:
                if not watched.pure:
                    watched.held = None
                held, held_types = watched.held, watched.held_types
                for t, current, _ in watched.line.advance():
                    if t <= since:
                        # made only of reports from before the plan (a plug's last current
                        # before an earlier plan tripped it): context for what comes, not a
                        # verdict on this plan; each later observation is judged with it
                        continue
                    if None in current:
                        continue  # not every signal seen yet: nothing to judge
                    evaluations += 1
                    if current == held:
                        if held_types is None:
                            held_types = watched.held_types = tuple(map(type, held))
                        if tuple(map(type, current)) == held_types:
                            reused += 1
                            continue
                    violation = self._judge(watched, t, current)
                    if violation is not None:
                        watched.held = None
                        return violation
                    held = watched.held = current
                    held_types = watched.held_types = None
            return None
        finally:
            self.evaluations += evaluations
            self.reused += reused

    def _judge(self, watched: _Watched, t: float, current: tuple[Any, ...]) -> Violation | None:
        inv = watched.inv
        values = dict(zip(watched.texts, current, strict=True))
        for i, label in watched.labels:
            values[watched.texts[i]] = label(current[i])
        lookup = self._lookup
        try:
            if watched.pure:  # every name is one of its signals
                held = inv.expr.compiled(values.__getitem__)
            else:
                held = inv.expr.evaluate(lambda n: values[n] if n in values else lookup(n))
        except ExpressionError as err:
            held = f"not computable: {err.reason}"
        if held is True:
            return None
        shown = ", ".join(f"{k} = {v}" for k, v in values.items())
        return Violation(
            f"invariant {inv.id} ({inv.name}) violated at t={t:.6f}: {shown}"
            + (f" ({held})" if isinstance(held, str) else ""),
            {"invariant": inv.id, "violation_t": t, "values": values},
            t,
            inv.signals,
        )


def write_violation_evidence(bench: Bench, violation: Violation, folder: Path) -> Path:
    """The frames and lines around a violation: each watched signal's observations and
    the raw traffic of its device within ``WINDOW_S`` of the moment it happened."""
    lo, hi = violation.t - WINDOW_S, violation.t + WINDOW_S
    out: list[dict[str, Any]] = []
    for ref in violation.signals:
        for sample in bench.get(ref.device).samples(ref.name, lo):
            if sample.t <= hi:
                out.append({"t": round(sample.t, 6), "signal": ref.text, "value": sample.value})
    for device in dict.fromkeys(ref.device for ref in violation.signals):
        capture = getattr(bench.transports.get(device), "capture", None)
        if capture is None:
            continue
        for rec in capture.records():
            if lo <= rec.t <= hi:
                out.append(
                    {
                        "t": round(rec.t, 6),
                        "device": device,
                        "dir": rec.direction,
                        "raw": _raw(rec.data),
                    }
                )
    out.sort(key=lambda e: e["t"])
    name = violation.observed.get("invariant", "invariant")
    path = folder / f"violation-{name}.jsonl"
    folder.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps({"violation": violation.message, "t": round(violation.t, 6)}) + "\n")
        for entry in out:
            fh.write(json.dumps(entry, default=str) + "\n")
    return path


def _raw(data: object) -> object:
    """A capture record's payload as text: a CAN frame as id and hex bytes."""
    if isinstance(data, can.Message):
        return {"id": f"0x{data.arbitration_id:X}", "data": data.data.hex(" ")}
    return data if isinstance(data, str) else str(data)
