"""Plan invariants are judged on every state of their signals, verdicts reused only
when nothing that decides them changed.

The device is a stand-in for hil's driver interface (``samples``, ``frame_of``):
frames are appended to it between checks, as a transport's reader thread would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hil.bench.definition import SignalInfo
from hil.bench.driver import Sample
from hil.expressions import parse
from hil.plan.resolved import InvariantCheck, SignalRef
from hil.plan.watch import InvariantWatch
from tests.one_device_bench import OneDeviceBench

STATE = SignalInfo("State", "enum", choices={"OPEN": 0, "CLOSED": 1})


@dataclass
class Node:
    """Frames of one message ``M``: (t, {signal: value})."""

    rows: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def send(self, t: float, **values: Any) -> None:
        self.rows.append((t, values))

    def frame_of(self, signal: str) -> str:
        return signal.split(".")[0]

    def samples(self, signal: str, since: float) -> list[Sample]:
        name = signal.split(".", 1)[1]
        before = [r for r in self.rows if r[0] < since][-1:]
        return [
            Sample(t, values[name])
            for t, values in before + [r for r in self.rows if r[0] >= since]
        ]


def watch(
    node: Node, source: str, signals: dict[str, SignalInfo], lookup: Any = None
) -> InvariantWatch:
    def unknown(name: str) -> Any:
        raise KeyError(name)

    refs = tuple(SignalRef("ev", f"M.{name}", info) for name, info in signals.items())
    inv = InvariantCheck("inv", "the invariant", parse(source), refs, None)
    return InvariantWatch(OneDeviceBench(node), [inv], 0.0, lookup or unknown)  # type: ignore[arg-type]


def test_repeated_values_reuse_the_verdict_and_a_change_is_still_caught() -> None:
    node = Node()
    w = watch(node, "ev.M.x <= 100", {"x": SignalInfo("x")})
    for i in range(100):
        node.send(1.0 + i, x=50)
    assert w.check() is None
    assert (w.evaluations, w.reused) == (100, 99)
    node.send(200.0, x=50)
    node.send(201.0, x=150)
    violation = w.check()
    assert violation is not None
    assert violation.t == 201.0
    assert "ev.M.x = 150" in violation.message
    assert (w.evaluations, w.reused) == (102, 100)


def test_a_value_of_another_type_is_judged_again() -> None:
    # 1 == true in Python, not in expressions: the cache must not confuse them
    assert (1,) == (True,)
    node = Node()
    w = watch(node, "ev.M.flag != true", {"flag": SignalInfo("flag", "bool")})
    node.send(1.0, flag=1)
    assert w.check() is None
    node.send(2.0, flag=True)
    violation = w.check()
    assert violation is not None
    assert violation.t == 2.0


def test_an_invariant_reading_saved_values_is_judged_again_after_a_step() -> None:
    saved = {"limit": 100}
    node = Node()
    w = watch(node, "ev.M.x <= limit", {"x": SignalInfo("x")}, lambda name: saved[name])
    node.send(1.0, x=50)
    node.send(2.0, x=50)
    assert w.check() is None
    assert w.reused == 1  # within one check, the saved value cannot change
    saved["limit"] = 10  # a step saved a new limit between two checks
    node.send(3.0, x=50)
    violation = w.check()
    assert violation is not None
    assert violation.t == 3.0


def test_reusing_across_checks_would_miss_the_new_limit() -> None:
    """The check above can fail: a watch that treated the invariant as depending on
    its signals alone reuses the old verdict and misses the violation."""
    saved = {"limit": 100}
    node = Node()
    w = watch(node, "ev.M.x <= limit", {"x": SignalInfo("x")}, lambda name: saved[name])
    node.send(1.0, x=50)
    assert w.check() is None
    w._watched[0].pure = True  # the defect
    saved["limit"] = 10
    node.send(3.0, x=50)
    assert w.check() is None


def test_enum_signals_are_judged_and_shown_by_name() -> None:
    node = Node()
    w = watch(
        node,
        'ev.M.state != "CLOSED" or ev.M.link >= 0.9 * ev.M.pack',
        {"state": STATE, "link": SignalInfo("link"), "pack": SignalInfo("pack")},
    )
    node.send(1.0, state=0, link=0.0, pack=400.0)
    node.send(2.0, state=1, link=395.0, pack=400.0)
    node.send(3.0, state=1, link=395.0, pack=400.0)
    assert w.check() is None
    assert (w.evaluations, w.reused) == (3, 1)
    node.send(4.0, state=1, link=20.0, pack=400.0)
    violation = w.check()
    assert violation is not None
    assert violation.t == 4.0
    assert "ev.M.state = CLOSED, ev.M.link = 20.0, ev.M.pack = 400.0" in violation.message
    assert violation.observed["values"]["ev.M.state"] == "CLOSED"


def test_an_expression_that_cannot_be_computed_is_a_violation() -> None:
    node = Node()
    w = watch(node, "ev.M.x / ev.M.y < 2", {"x": SignalInfo("x"), "y": SignalInfo("y")})
    node.send(1.0, x=1, y=1)
    node.send(2.0, x=1, y=0)
    violation = w.check()
    assert violation is not None
    assert violation.t == 2.0
    assert "not computable: division by zero" in violation.message
