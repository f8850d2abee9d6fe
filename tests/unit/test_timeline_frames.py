"""Signals of one frame read as whole frames give the states read signal by signal gives.

``Timeline`` reads the signals of one CAN message through the driver's
``frames(message, since)`` once it has seen them all (one call, no per-signal
samples, no merge). Random streams of frames (repeated timestamps, frames from
before the plan, arriving in random chunks between two looks) must give the
same states, baselines and counts as the per-signal path, which
``tests/unit/test_timeline.py`` pins down.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.bench.definition import SignalInfo
from hil.bench.driver import Sample
from hil.plan.resolved import SignalRef
from hil.plan.timeline import Timeline
from tests.one_device_bench import OneDeviceBench

SIGNALS = ("a", "b", "c")
SINCE = 10.0


@dataclass
class Node:
    """A driver of one message ``M``: rows of (t, decoded frame), in arrival order."""

    rows: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    visible: int = 0  # how many rows have "arrived"

    def frame_of(self, signal: str) -> str:
        return signal.split(".")[0]

    def arrived(self) -> list[tuple[float, dict[str, Any]]]:
        return self.rows[: self.visible]

    def samples(self, signal: str, since: float) -> list[Sample]:
        name = signal.split(".", 1)[1]
        rows = self.arrived()
        start = max(0, bisect_left([t for t, _ in rows], since) - 1)
        return [Sample(t, d[name]) for t, d in rows[start:]]


class FramedNode(Node):
    def frames(self, message: str, since: float) -> list[tuple[float, dict[str, Any]]]:
        assert message == "M"
        rows = self.arrived()
        return rows[bisect_left([t for t, _ in rows], since) :]


def run(node: Node, chunks: list[int], watched: tuple[str, ...]) -> list[Any]:
    refs = [SignalRef("ev", f"M.{s}", SignalInfo(s)) for s in watched]
    line = Timeline(OneDeviceBench(node), refs, SINCE)  # type: ignore[arg-type]
    seen: list[Any] = []
    for size in chunks:
        node.visible = min(len(node.rows), node.visible + size)
        states = line.advance()
        seen.append([(s.t, s.values, s.previous) for s in states])
        seen.append((list(line.baseline), list(line.current), line.count))
    return seen


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[tuple[float, dict[str, Any]]], list[int]]:
    # timestamps never go backwards (a capture's order), and may repeat
    steps = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0]), max_size=40))
    t = draw(st.sampled_from([5.0, 9.5, 10.0, 12.0]))
    rows = []
    for step in steps:
        t += step
        rows.append((t, {s: draw(st.integers(0, 3)) for s in SIGNALS}))
    chunks = draw(st.lists(st.integers(0, 6), min_size=1, max_size=12))
    return rows, [*chunks, len(rows)]  # the last look sees everything


@given(streams(), st.sampled_from([("a",), ("a", "b"), ("c", "a", "b")]))
def test_whole_frames_give_the_states_of_the_per_signal_path(
    stream: tuple[list[tuple[float, dict[str, Any]]], list[int]], watched: tuple[str, ...]
) -> None:
    rows, chunks = stream
    expected = run(Node(list(rows)), chunks, watched)
    assert run(FramedNode(list(rows)), chunks, watched) == expected


def test_the_whole_frame_path_is_taken_and_the_comparison_can_fail() -> None:
    rows = [(float(t), {"a": t, "b": -t, "c": 0}) for t in range(8, 14)]
    calls: list[float] = []

    class Counting(FramedNode):
        def frames(self, message: str, since: float) -> list[tuple[float, dict[str, Any]]]:
            calls.append(since)
            return super().frames(message, since)

    chunks = [3, 2, 6]
    assert run(Counting(list(rows)), chunks, ("a", "b")) == run(
        Node(list(rows)), chunks, ("a", "b")
    )
    assert calls == [10.0, 12.0]  # after the first look, one call per look, from the last seen

    class Lossy(FramedNode):  # a broken reader: drops every other frame
        def frames(self, message: str, since: float) -> list[tuple[float, dict[str, Any]]]:
            return super().frames(message, since)[::2]

    with pytest.raises(AssertionError):
        assert run(Lossy(list(rows)), chunks, ("a", "b")) == run(
            Node(list(rows)), chunks, ("a", "b")
        )


def test_signals_of_two_messages_are_read_signal_by_signal() -> None:
    class TwoMessages(FramedNode):
        def frame_of(self, signal: str) -> str:
            return "M" if signal.endswith((".a", ".b")) else "N"

        def frames(self, message: str, since: float) -> list[tuple[float, dict[str, Any]]]:
            raise AssertionError("signals of two messages must not be read as one frame")

    rows = [(float(t), {"a": t, "b": -t, "c": 0}) for t in range(8, 14)]
    assert run(TwoMessages(list(rows)), [3, 9], ("a", "c")) == run(
        Node(list(rows)), [3, 9], ("a", "c")
    )
