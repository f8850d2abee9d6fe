"""An emulated refrigerator MCU: compressor thermostat and door-open alarm.

The door is a bench input (``door``). The door alarm (scenario A3) is judged
on the MCU's own clock: the first ``door-alarm`` event leaves
``alarm_delay_s`` after the door opened and repeats every ``alarm_repeat_s``
while it stays open.

Time scale: every duration and rate here is in plan seconds and runs at the
bench's ``time_scale`` (wall seconds per plan second, exposed by the emulator
base as ``Emulator.time_scale``): at 0.1 the 120 s alarm leaves 12 s of wall
time after the door opened. The MIoT wire rules (polling, 1 report per
second) are never scaled.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from hil.emulation.physics import ElectricalState
from hil.miot.mcu import MiotMcuEmulator
from hil.miot.spec import MiotSpec

DOOR = "fridge.door"
TEMPERATURE = "fridge.temperature"
TARGET = "fridge.target-temperature"
COMPRESSOR = "fridge.compressor"
OPEN_TIME = "fridge.door-open-time"
ALARM = "fridge.door-alarm"

LATE_ALARM_S = 150.0
IDLE_PF = 0.3  # electronics only: a small switched-mode supply
MOTOR_PF = 0.75  # an induction-motor compressor


class FridgeEmulator(MiotMcuEmulator):
    """The MCU of a refrigerator, on a pty.

    Settings: ``alarm_delay_s`` (120), ``alarm_repeat_s`` (120), ``idle_w`` (1),
    ``running_w`` (90), ``initial_temperature_c`` (4.5), ``warm_rate_c_per_s``
    (0.005; door open: ``open_warm_rate_c_per_s`` 0.05), ``cool_rate_c_per_s``
    (0.02), ``hysteresis_c`` (1), ``supply_v`` (230), ``poll_period_s`` (0.2).
    """

    DEFECTS: ClassVar[Mapping[str, str]] = {
        "no_door_alarm": "never raises the door alarm, however long the door stays open",
        "alarm_late": f"raises the first door alarm after {LATE_ALARM_S:g} s instead of the set "
        "delay",
    }
    INPUTS: ClassVar[Mapping[str, str]] = {"door": ""}

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
        delay = float(s.get("alarm_delay_s", 120.0))
        self.alarm_delay_s = LATE_ALARM_S if self.has("alarm_late") else delay
        self.alarm_repeat_s = float(s.get("alarm_repeat_s", 120.0))
        self.idle_w = float(s.get("idle_w", 1.0))
        self.running_w = float(s.get("running_w", 90.0))
        self.warm_rate = float(s.get("warm_rate_c_per_s", 0.005))
        self.open_warm_rate = float(s.get("open_warm_rate_c_per_s", 0.05))
        self.cool_rate = float(s.get("cool_rate_c_per_s", 0.02))
        self.hysteresis_c = float(s.get("hysteresis_c", 1.0))
        self._temp = float(s.get("initial_temperature_c", 4.5))
        self._last_tick: float | None = None
        self._open_since: float | None = None  # MCU clock (monotonic)
        self._next_alarm: float | None = None
        self.alarms = 0
        self.update(TARGET, 4)
        self._report_temperature()

    # ----- what tests look at

    @property
    def door_open(self) -> bool:
        return self.value(DOOR) is True

    @property
    def compressor_running(self) -> bool:
        return self.value(COMPRESSOR) is True

    @property
    def temperature_c(self) -> float:
        with self._lock:
            return self._temp

    def state(self) -> dict[str, Any]:
        out = super().state()
        with self._lock:
            out.update(
                temperature_c=self._temp,
                door_open=self.door_open,
                compressor=self.compressor_running,
                open_since=self._open_since,
                next_alarm=self._next_alarm,
                alarms=self.alarms,
                alarm_delay_s=self.alarm_delay_s,
            )
        return out

    # ----- power

    def electrical_state(self, supply_v: float) -> ElectricalState:
        """Idle electronics, or the compressor running, at ``supply_v``."""
        watts, pf = (
            (self.running_w, MOTOR_PF) if self.compressor_running else (self.idle_w, IDLE_PF)
        )
        return ElectricalState.drawing(supply_v, watts, pf)

    # ----- the door and the alarm

    def _apply_input(self, name: str, value: float) -> None:
        is_open = value >= 0.5
        with self._lock:
            if is_open == self.door_open:
                return
            self.update(DOOR, is_open)
            if is_open:
                self._open_since = time.monotonic()
                self._next_alarm = self._open_since + self.alarm_delay_s * self.time_scale
            else:
                self._open_since = self._next_alarm = None

    def _alarm(self, now: float) -> None:
        if self._open_since is None or self._next_alarm is None or now < self._next_alarm:
            return
        due = self._next_alarm
        # the next one is due a whole period after this one was due, so no drift builds up
        self._next_alarm += self.alarm_repeat_s * self.time_scale
        if self.has("no_door_alarm"):
            return
        self.alarms += 1
        open_s = round((due - self._open_since) / self.time_scale)
        self.update(OPEN_TIME, open_s)
        self.emit(ALARM, **{"door-open-time": open_s})

    # ----- physics

    def _tick(self, now: float) -> None:
        with self._lock:
            dt = 0.0 if self._last_tick is None else (now - self._last_tick) / self.time_scale
            self._last_tick = now
            self._alarm(now)
            target = float(self.value(TARGET))
            if self._temp >= target + self.hysteresis_c:
                self.update(COMPRESSOR, True)
            elif self._temp <= target - self.hysteresis_c:
                self.update(COMPRESSOR, False)
            warm = self.open_warm_rate if self.door_open else self.warm_rate
            cool = self.cool_rate if self.compressor_running else 0.0
            self._temp += (warm - cool) * dt
            self._report_temperature()

    def _report_temperature(self) -> None:
        # rounded to the sensor's resolution so a steady compartment is not re-reported
        self.update(TEMPERATURE, round(self._temp, 1))
