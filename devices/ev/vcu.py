"""The VCU's receive timeout on the battery's 100 ms frame, and its safe defaults.

A receiver that has not seen ``BMS_Status`` for 2.5 cycles flags
``VCU_Status.BatteryTimeout`` (so the flag is up *within* 3 cycles of the
last frame, E11) and stops trusting the battery: SoC not available, no
drive power, charging disabled, until the frame returns.

The silence is counted in the emulator's own ticks, each worth at most
``MAX_TICK_S``: when the whole process stalls (a loaded CI machine), sender
and receiver stall together, as one ECU network would, and no timeout is
invented.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devices.ev.battery import Battery

BMS_FRAME, BMS_CYCLE_S = "BMS_Status", 0.1
TIMEOUT_CYCLES = 2.5
MAX_TICK_S = 0.02  # a longer gap between ticks is a stall of the whole emulation
SOC_NOT_AVAILABLE = 102.3  # VCU_Status.BatterySoC raw all-ones
SAFE_DEFAULTS: Mapping[str, Any] = {
    "BatteryTimeout": 1,
    "ChargeEnable": 0,
    "PowerLimit": 0,
    "BatterySoC": SOC_NOT_AVAILABLE,
}
DEFECTS: Mapping[str, str] = {
    "no_timeout_detection": "the VCU never notices a silent BMS: it keeps the last values",
}


class BatteryWatch:
    """What the VCU knows of the battery (called under the emulator's lock)."""

    def __init__(self, defects: frozenset[str]) -> None:
        self.detects = "no_timeout_detection" not in defects
        self.timed_out = False
        self._view: dict[str, Any] = {}
        self._last_frame: float | None = None
        self._silent_s = 0.0

    def check(self, dt: float, last_frame: float | None) -> bool:
        """One tick of ``dt`` s; ``last_frame`` is when the BMS frame last went out.

        True when the frame has just timed out.
        """
        if last_frame != self._last_frame:
            self._last_frame, self._silent_s = last_frame, 0.0
        elif last_frame is not None:
            self._silent_s += min(dt, MAX_TICK_S)
        timed_out = self.detects and self._silent_s >= TIMEOUT_CYCLES * BMS_CYCLE_S
        started = timed_out and not self.timed_out
        self.timed_out = timed_out
        return started

    def status(self, battery: Battery, *, receiving: bool) -> dict[str, Any]:
        """VCU_Status: fresh battery values while frames arrive, else the stale or safe ones."""
        if self.timed_out:
            return dict(SAFE_DEFAULTS)
        if receiving or not self._view:
            self._view = {
                "BatteryTimeout": 0,
                "ChargeEnable": 1,
                "PowerLimit": battery.power_limit,
                "BatterySoC": round(battery.soc, 1),
            }
        return dict(self._view)  # (no_timeout_detection) what it last received
