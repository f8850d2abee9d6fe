"""Links between emulated devices that stand for the physical world.

The analyzer's readings come from the appliance its channel is wired to;
that link is physics (a wire), not a protocol, so it is a plain interface.
A channel may also measure the whole household feed (``HOUSEHOLD``): the sum
of every emulated ``PowerSource`` on the bench. The supply itself (``Supply``)
is a bench condition the analyzer's emulator imposes on what it measures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from hil.emulation.base import Emulator


@dataclass(frozen=True)
class ElectricalState:
    """What a power analyzer element would see at one instant."""

    voltage_v: float
    current_a: float
    power_w: float
    power_factor: float
    frequency_hz: float = 50.0
    voltage_crest_factor: float = 1.414
    current_crest_factor: float = 1.414
    voltage_thd_percent: float = 0.5

    @classmethod
    def drawing(cls, supply_v: float, watts: float, power_factor: float) -> ElectricalState:
        """A load drawing ``watts`` at ``power_factor`` from ``supply_v`` (nothing if no supply)."""
        if supply_v <= 0:
            return cls(0.0, 0.0, 0.0, 1.0)
        return cls(supply_v, watts / (supply_v * power_factor), watts, power_factor)


@runtime_checkable
class PowerSource(Protocol):
    """An emulated device whose mains input an analyzer channel can measure."""

    def electrical_state(self, supply_v: float) -> ElectricalState: ...


@dataclass(frozen=True)
class Supply:
    """The mains an emulated bench feeds its appliances, as IEC 62301 judges it.

    A lab's supply is a bench condition, not a device property: the plan
    disturbs it (through the analyzer emulator's inputs) to show that a run on
    a bad supply is reported invalid. The defaults are a clean EU supply.
    """

    voltage_v: float = 230.0
    frequency_hz: float = 50.0
    thd_percent: float = 0.5  # voltage harmonics up to the 13th
    crest_factor: float = math.sqrt(2.0)  # a pure sine

    def applied_to(self, state: ElectricalState) -> ElectricalState:
        """``state`` with this supply's frequency and voltage waveform (the load sets the rest)."""
        return replace(
            state,
            frequency_hz=self.frequency_hz if state.voltage_v > 0 else 0.0,
            voltage_crest_factor=self.crest_factor,
            voltage_thd_percent=self.thd_percent,
        )


HOUSEHOLD = "household"  # the reserved wiring target: the whole house's mains feed


class HouseholdFeed(Emulator):
    """The household's mains feed: every emulated ``PowerSource`` on the bench, summed.

    ``devices`` is a live view (the bench's emulators by name): a device opened
    after the instrument that measures the feed still counts, and so does a
    device whose draw changes. Active and reactive power add; the current
    follows from the apparent power, so the feed's power factor is right even
    when its loads' power factors differ. It is an emulator only so that it can
    stand where wiring expects one: it has no transport and nothing to start.
    """

    def __init__(self, devices: Mapping[str, object]) -> None:
        super().__init__(HOUSEHOLD)
        self._devices = devices

    def _start(self) -> None:
        pass  # pure physics: computed when an instrument reads it

    def _stop(self) -> None:
        pass

    def sources(self) -> list[PowerSource]:
        # list() copies in one step: the bench may add a device meanwhile
        return [d for d in list(self._devices.values()) if isinstance(d, PowerSource)]

    def electrical_state(self, supply_v: float) -> ElectricalState:
        states = [s.electrical_state(supply_v) for s in self.sources()]
        live = [s for s in states if s.voltage_v > 0]
        if supply_v <= 0 or not live:
            return ElectricalState(max(supply_v, 0.0), 0.0, 0.0, 1.0)
        p = sum(s.power_w for s in live)
        q = sum(math.sqrt(max((s.voltage_v * s.current_a) ** 2 - s.power_w**2, 0.0)) for s in live)
        apparent = math.hypot(p, q)
        current = apparent / supply_v
        if current <= 0:
            return ElectricalState(supply_v, 0.0, 0.0, 1.0)
        # peaks of different loads do not line up exactly; their sum bounds the feed's peak
        peak = sum(s.current_a * s.current_crest_factor for s in live)
        return ElectricalState(
            supply_v,
            current,
            p,
            p / apparent,
            current_crest_factor=max(peak / current, math.sqrt(2.0)),
        )


def wired(target: str, emulators: Mapping[str, Emulator]) -> Emulator:
    """What a bench wiring target stands for: an emulator by name, or the household feed."""
    return HouseholdFeed(emulators) if target == HOUSEHOLD else emulators[target]
