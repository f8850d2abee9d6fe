"""The merged timeline judges the signals of one frame together.

Each ``samples()`` call decodes what arrived since the call before, so the
second of two signals from one CAN frame may already have the next frame
while the first does not. Judging that half-updated state could raise a
false violation (a contactor still CLOSED beside the next frame's low link
voltage). The device here is a stand-in for the driver interface that
delivers exactly that race, every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hil.bench.definition import SignalInfo
from hil.bench.driver import Sample
from hil.plan.resolved import SignalRef
from hil.plan.timeline import Timeline
from tests.one_device_bench import OneDeviceBench

FRAMES = [  # BMS_Status: (t, ContactorState, LinkVoltage)
    (1.0, "CLOSED", 400.0),
    (2.0, "OPEN", 390.0),
    (3.0, "OPEN", 20.0),  # the link discharges only after the contactors opened
]


@dataclass
class RacingCar:
    """Frame k+1 "arrives" between the first and the second signal's read."""

    calls: int = 0
    arrived: int = 1
    decoded: dict[str, int] = field(default_factory=dict)

    def frame_of(self, signal: str) -> str:
        return signal.split(".")[0]

    def samples(self, signal: str, since: float) -> list[Sample]:
        self.calls += 1
        if self.calls % 2 == 0 and self.arrived < len(FRAMES):
            self.arrived += 1  # decoded for this signal, not yet for the other
        column = 1 if signal.endswith("ContactorState") else 2
        rows = [f for f in FRAMES[: self.arrived] if f[0] >= since]
        before = [f for f in FRAMES[: self.arrived] if f[0] < since][-1:]
        return [Sample(f[0], f[column]) for f in before + rows]


def _states(device: Any) -> list[tuple[float, tuple[Any, ...]]]:
    refs = [
        SignalRef("ev", "BMS_Status.ContactorState", SignalInfo("ContactorState", "enum")),
        SignalRef("ev", "BMS_Status.LinkVoltage", SignalInfo("LinkVoltage")),
    ]
    line = Timeline(OneDeviceBench(device), refs, 0.0)  # type: ignore[arg-type]
    out: list[tuple[float, tuple[Any, ...]]] = []
    for _ in range(6):
        out.extend((s.t, s.values) for s in line.advance())
    return out


def test_signals_of_one_frame_advance_together() -> None:
    states = _states(RacingCar())
    assert states == [(1.0, ("CLOSED", 400.0)), (2.0, ("OPEN", 390.0)), (3.0, ("OPEN", 20.0))]
    assert not any(v == ("CLOSED", 20.0) or v == ("CLOSED", 390.0) for _, v in states)


def test_without_frames_known_the_race_shows() -> None:
    """The same device without ``frame_of``: the half-updated state appears (the check
    above is one that can fail)."""

    class Unframed(RacingCar):
        frame_of = None  # type: ignore[assignment]

    states = _states(Unframed())
    assert ("CLOSED", 390.0) in [v for _, v in states]
