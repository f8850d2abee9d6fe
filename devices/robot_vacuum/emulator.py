"""An emulated robot vacuum MCU: cleans, pauses, drives home, obeys the occupancy rule.

The rule the home relies on (scenario X7): a *scheduled* clean never starts
while someone is home (``home.occupancy``, written by the hub); the schedule
is skipped instead and says so. The robot does not react by itself to
occupancy changing during a clean: pausing it and sending it home is the
hub's job, and a robot that did it anyway would hide a hub that does not.

Durations and rates are in plan seconds and run at the bench's
``time_scale``: at 0.1 the 30 s drive home takes 3 s of wall time. The MIoT
wire rules (polling, the 4 s RPC, one report per property per second) are
never scaled.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from hil.emulation.physics import ElectricalState
from hil.miot.codec import Value
from hil.miot.mcu import ActionRefused, MiotMcuEmulator
from hil.miot.spec import MiotSpec

STATUS = "vacuum.status"
FAULT = "vacuum.fault"
FAN = "vacuum.fan-level"
AREA = "vacuum.cleaning-area"
CLEAN_TIME = "vacuum.cleaning-time"
ON_DOCK = "vacuum.on-dock"
BATTERY = "battery.level"
START_IN = "schedule.start-in"
ARMED = "schedule.armed"
OCCUPANCY = "home.occupancy"

# wire values, as in spec.yaml
IDLE, SWEEPING, PAUSED, RETURNING, CHARGING, DOCKED, ERROR = range(7)
FAULT_NONE, FAULT_STUCK, FAULT_LOW_BATTERY = 0, 1, 2
REFUSED = -4004  # the protocol's "internal error": the robot will not do it

CHARGER_PF = 0.6  # the dock's charger under load
STANDBY_PF = 0.3  # the dock's small supply with nothing to charge


class RobotVacuumEmulator(MiotMcuEmulator):
    """The MCU of a robot vacuum and its dock, on a pty.

    Settings (plan seconds): ``return_time_s`` (30), ``area_rate_m2_per_s``
    (0.02), ``drain_rate_pct_per_s`` (0.011), ``charge_rate_pct_per_s``
    (0.02), ``initial_battery_pct`` (100), ``min_start_battery_pct`` (20),
    ``low_battery_pct`` (15), ``charging_w`` (35), ``docked_w`` (2),
    ``standby_w`` (0.8), ``poll_period_s`` (0.2).
    """

    DEFECTS: ClassVar[Mapping[str, str]] = {
        "starts_when_home": "a scheduled clean starts even while someone is home",
        "ignores_pause": "answers pause with success but keeps sweeping",
        "never_docks": "accepts dock and reports returning, but never reaches the dock",
    }
    INPUTS: ClassVar[Mapping[str, str]] = {"stuck": ""}

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
        self.return_time_s = float(s.get("return_time_s", 30.0))
        self.area_rate = float(s.get("area_rate_m2_per_s", 0.02))
        self.drain_rate = float(s.get("drain_rate_pct_per_s", 0.011))
        self.charge_rate = float(s.get("charge_rate_pct_per_s", 0.02))
        self.min_start_battery = float(s.get("min_start_battery_pct", 20.0))
        self.low_battery = float(s.get("low_battery_pct", 15.0))
        self.charging_w = float(s.get("charging_w", 35.0))
        self.docked_w = float(s.get("docked_w", 2.0))
        self.standby_w = float(s.get("standby_w", 0.8))
        self._battery = float(s.get("initial_battery_pct", 100.0))
        self._area = 0.0
        self._clean_s = 0.0
        self._last_tick: float | None = None
        self._home_at: float | None = None  # when a drive home ends (MCU clock)
        self._schedule_at: float | None = None
        self._stuck = False
        self.starts = 0  # cleans started, app and schedule
        self.skipped = 0  # scheduled cleans skipped because someone was home
        self.update(ON_DOCK, True)
        self.update(FAN, 1)
        self.update(BATTERY, round(self._battery))
        self._settle_on_dock()

    # ----- what tests look at

    @property
    def status(self) -> int:
        return int(self.value(STATUS))

    @property
    def on_dock(self) -> bool:
        return self.value(ON_DOCK) is True

    @property
    def battery_pct(self) -> float:
        with self._lock:
            return self._battery

    def state(self) -> dict[str, Any]:
        out = super().state()
        with self._lock:
            out.update(
                battery_pct=self._battery,
                area_m2=self._area,
                clean_s=self._clean_s,
                home_at=self._home_at,
                schedule_at=self._schedule_at,
                stuck=self._stuck,
                starts=self.starts,
                skipped=self.skipped,
            )
        return out

    # ----- power: the analyzer sees the dock's mains feed

    def electrical_state(self, supply_v: float) -> ElectricalState:
        """Charging, a full robot on the dock, or the dock alone, at ``supply_v``."""
        with self._lock:
            charging = self.on_dock and self._battery < 100.0
            docked = self.on_dock
        if charging:
            return ElectricalState.drawing(supply_v, self.charging_w, CHARGER_PF)
        return ElectricalState.drawing(
            supply_v, self.docked_w if docked else self.standby_w, STANDBY_PF
        )

    # ----- bench input

    def _apply_input(self, name: str, value: float) -> None:
        stuck = value >= 0.5
        with self._lock:
            self._stuck = stuck
            if stuck and self.status in (SWEEPING, RETURNING):
                self._home_at = None
                self.update(STATUS, ERROR)
                self.update(FAULT, FAULT_STUCK)

    # ----- hooks

    def _property_written(self, name: str, old: Value, new: Value) -> None:
        if name != START_IN:
            return
        with self._lock:
            seconds = int(new)
            if seconds > 0:
                self._schedule_at = time.monotonic() + seconds * self.time_scale
            else:
                self._schedule_at = None
            self.update(ARMED, seconds > 0)

    def _on_action(self, name: str, args: Mapping[str, Value]) -> Mapping[str, Value]:
        with self._lock:
            if name == "vacuum.start-sweep":
                self._start_sweep()
            elif name == "vacuum.pause":
                if self.status == SWEEPING and not self.has("ignores_pause"):
                    self.update(STATUS, PAUSED)
            elif name == "vacuum.dock":
                self._go_home(FAULT_NONE)
            else:
                raise ActionRefused(-4003)
        return {}

    def _start_sweep(self) -> None:
        if self._stuck:
            raise ActionRefused(REFUSED)
        status = self.status
        if status == SWEEPING:
            return
        if status != PAUSED:
            if self._battery < self.min_start_battery:
                raise ActionRefused(REFUSED)
            self._area = self._clean_s = 0.0
            self.update(AREA, 0)
            self.update(CLEAN_TIME, 0)
            self.starts += 1
            self.emit("vacuum.cleaning-started", **{"fan-level": self.value(FAN)})
        self._home_at = None
        self.update(ON_DOCK, False)
        self.update(FAULT, FAULT_NONE)
        self.update(STATUS, SWEEPING)

    def _go_home(self, fault: int) -> None:
        if self._stuck:
            raise ActionRefused(REFUSED)
        self.update(FAULT, fault)
        if self.on_dock:
            return
        if self.status != RETURNING:
            self._home_at = time.monotonic() + self.return_time_s * self.time_scale
            self.update(STATUS, RETURNING)

    def _settle_on_dock(self) -> None:
        self.update(STATUS, DOCKED if self._battery >= 100.0 else CHARGING)

    # ----- physics and the schedule

    def _tick(self, now: float) -> None:
        with self._lock:
            dt = 0.0 if self._last_tick is None else (now - self._last_tick) / self.time_scale
            self._last_tick = now
            self._fire_schedule(now)
            status = self.status
            if status == SWEEPING:
                self._area += self.area_rate * dt
                self._clean_s += dt
                self._battery = max(0.0, self._battery - self.drain_rate * dt)
                self.update(AREA, min(1000, int(self._area)))
                self.update(CLEAN_TIME, min(86400, int(self._clean_s)))
                if self._battery <= self.low_battery:
                    self._go_home(FAULT_LOW_BATTERY)
            elif status == RETURNING:
                arrived = self._home_at is not None and now >= self._home_at
                if arrived and not self.has("never_docks"):
                    self._home_at = None
                    self.update(ON_DOCK, True)
                    self._settle_on_dock()
                    self.emit("vacuum.docked", **{"cleaning-area": int(self._area)})
            elif self.on_dock:
                self._battery = min(100.0, self._battery + self.charge_rate * dt)
                self._settle_on_dock()
            self.update(BATTERY, round(self._battery))

    def _fire_schedule(self, now: float) -> None:
        if self._schedule_at is None or now < self._schedule_at:
            return
        self._schedule_at = None
        self.update(START_IN, 0)
        self.update(ARMED, False)
        if self.value(OCCUPANCY) is True and not self.has("starts_when_home"):
            self.skipped += 1
            self.emit("schedule.skipped")
            return
        try:
            self._start_sweep()
        except ActionRefused:
            self.skipped += 1  # too little battery or stuck: a schedule cannot force it
            self.emit("schedule.skipped")
