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
        self._since = since
        self.evaluations = 0

    def check(self) -> Violation | None:
        """The first violation among observations since the last check, or None."""
        for inv, line in self._lines:
            for state in line.advance():
                if state.t <= self._since:
                    # made only of reports from before the plan (a plug's last current
                    # before an earlier plan tripped it): context for what comes, not a
                    # verdict on this plan; each later observation is judged with it
                    continue
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
                        state.t,
                        inv.signals,
                    )
        return None


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
