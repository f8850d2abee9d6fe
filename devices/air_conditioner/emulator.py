"""An emulated split air conditioner MCU: modes, set point, room temperature.

The room temperature drifts toward the set point while the unit runs in a
conditioning mode (cool only lowers it, heat only raises it, auto and dry do
both) and back toward the outdoor temperature while it is off. Rates are in
plan seconds, so a bench ``time_scale`` of 0.1 makes the room ten times
quicker on the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from hil.emulation.physics import ElectricalState
from hil.miot.codec import Value
from hil.miot.mcu import MiotMcuEmulator
from hil.miot.spec import MiotSpec

ON = "air-conditioner.on"
MODE = "air-conditioner.mode"
TARGET = "air-conditioner.target-temperature"
FAN = "air-conditioner.fan-level"
ROOM = "environment.temperature"

# wire values, as in spec.yaml
COOL, HEAT, FAN_ONLY, AUTO, DRY = 0, 1, 2, 3, 4
STUCK_TARGET_C = 26.0
STANDBY_PF = 0.3
RUNNING_PF = 0.95  # inverter compressor with power-factor correction


class AirConditionerEmulator(MiotMcuEmulator):
    """The indoor unit's MCU, on a pty.

    Settings: ``standby_w`` (0.5), ``running_w`` (900), ``fan_w`` (40, fan
    mode), ``initial_room_c`` (28), ``outdoor_c`` (30), ``drift_c_per_s``
    (0.05 toward the set point), ``leak_c_per_s`` (0.01 toward outdoors while
    off), ``initial_target_c`` (26), ``poll_period_s`` (0.2).
    """

    DEFECTS: ClassVar[Mapping[str, str]] = {
        "ignores_target": f"accepts a new set point but keeps (and reports) {STUCK_TARGET_C:g} °C",
    }
    INPUTS: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        name: str,
        spec: MiotSpec,
        *,
        defects: Iterable[str] = (),
        time_scale: float = 1.0,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, spec, defects=defects, time_scale=time_scale, settings=settings)
        s = self.settings
        self.standby_w = float(s.get("standby_w", 0.5))
        self.running_w = float(s.get("running_w", 900.0))
        self.fan_w = float(s.get("fan_w", 40.0))
        self.outdoor_c = float(s.get("outdoor_c", 30.0))
        self.drift = float(s.get("drift_c_per_s", 0.05))
        self.leak = float(s.get("leak_c_per_s", 0.01))
        self._room = float(s.get("initial_room_c", 28.0))
        self._last_tick: float | None = None
        target = STUCK_TARGET_C if self.has("ignores_target") else s.get("initial_target_c", 26.0)
        self.update(TARGET, float(target))
        self._report_room()

    # ----- what tests look at

    @property
    def running(self) -> bool:
        return self.value(ON) is True

    @property
    def room_c(self) -> float:
        with self._lock:
            return self._room

    def state(self) -> dict[str, Any]:
        out = super().state()
        with self._lock:
            out.update(running=self.running, room_c=self._room)
        return out

    # ----- power

    def electrical_state(self, supply_v: float) -> ElectricalState:
        """Standby, fan only, or compressor running, at ``supply_v``."""
        if not self.running:
            watts, pf = self.standby_w, STANDBY_PF
        elif self.value(MODE) == FAN_ONLY:
            watts, pf = self.fan_w, RUNNING_PF
        else:
            watts, pf = self.running_w, RUNNING_PF
        return ElectricalState.drawing(supply_v, watts, pf)

    # ----- hooks

    def _property_written(self, name: str, old: Value, new: Value) -> None:
        if name == TARGET and self.has("ignores_target"):
            self.update(TARGET, STUCK_TARGET_C)

    def _tick(self, now: float) -> None:
        with self._lock:
            dt = 0.0 if self._last_tick is None else (now - self._last_tick) / self.time_scale
            self._last_tick = now
            mode = self.value(MODE)
            target = float(self.value(TARGET))
            if not self.running or mode == FAN_ONLY:
                goal, rate = self.outdoor_c, self.leak
            elif (mode == COOL and self._room < target) or (mode == HEAT and self._room > target):
                goal, rate = self._room, 0.0  # nothing to do: the compressor idles
            else:
                goal, rate = target, self.drift
            step = rate * dt
            self._room += max(-step, min(step, goal - self._room))
            self._report_room()

    def _report_room(self) -> None:
        # rounded to the sensor's resolution so a steady room is not re-reported
        self.update(ROOM, round(self._room, 1))
