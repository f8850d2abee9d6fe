"""Links between emulated devices that stand for the physical world.

The analyzer's readings come from the appliance its channel is wired to;
that link is physics (a wire), not a protocol, so it is a plain interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


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
