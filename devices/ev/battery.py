"""The car's traction battery as its BMS sees it: cells, isolation, heat, contactors.

A plain model, no CAN: the emulator feeds it the rig's HV request, the load
and the charge current every 10 ms tick and publishes what it reports.

* **Cells.** The hottest cell and the highest cell voltage are physical inputs
  a bench imposes (``cell_temp_max_c``, ``cell_voltage_max_v``); the coldest
  and lowest sit a fixed spread below them.
* **Isolation.** The isolation monitor reports ``isolation_kohm`` and flags a
  fault below ``isolation_ohm_per_v`` (100 Ω/V) × pack voltage: 40 kΩ at 400 V.
* **Thermal.** Highest cell temperature ≥ ``derate_temp_c`` (45 °C) → DERATE,
  power limit 50 %; ≥ ``warn_temp_c`` (55 °C) → WARNING, 25 %;
  ≥ ``shutdown_temp_c`` (60 °C) → SHUTDOWN: 0 %, contactors open, until the
  pack is back below the derate threshold.
* **Over-voltage.** Highest cell ≥ ``cell_overvoltage_v`` (4.15 V) → fault,
  no charging.
* **Contactors.** On an HV request: the precharge relay charges the DC-link
  capacitor through a resistor (time constant ``precharge_tau_s``, 0.1 s:
  95 % after 0.3 s); the main contactors close only once the link is at
  ≥ 95 % of the pack voltage. Not there within ``precharge_timeout_s``
  (0.5 s) → FAULT, latched until the request is withdrawn. Opening
  discharges the link actively (time constant ``DISCHARGE_TAU_S``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hil.errors import EmulatorError

OPEN, PRECHARGE, CLOSED, FAULT = 0, 1, 2, 3
CONTACTORS = {OPEN: "OPEN", PRECHARGE: "PRECHARGE", CLOSED: "CLOSED", FAULT: "FAULT"}
NORMAL, DERATE, WARNING, SHUTDOWN = 0, 1, 2, 3
THERMAL = {NORMAL: "NORMAL", DERATE: "DERATE", WARNING: "WARNING", SHUTDOWN: "SHUTDOWN"}
POWER_LIMIT = {NORMAL: 100, DERATE: 50, WARNING: 25, SHUTDOWN: 0}  # % of rated power

PACK_AH = 150.0
CLOSE_AT = 0.95  # share of the pack voltage the link must reach before closing
DISCHARGE_TAU_S = 0.05
CELL_VOLTAGE_SPREAD_V = 0.015
CELL_TEMP_SPREAD_C = 3.0

DEFECTS: Mapping[str, str] = {
    "no_isolation_monitor": "the isolation monitor never flags a fault, however low the resistance",
    "no_thermal_derate": "no derating on a hot pack: straight from NORMAL to WARNING",
    "no_overvoltage_stop": "a cell over the voltage limit neither stops charging nor sets a fault",
    "closes_without_precharge": "closes the main contactors at once, on an uncharged DC link",
}
INPUTS: Mapping[str, str] = {
    "isolation_kohm": "kOhm",
    "cell_temp_max_c": "degC",
    "cell_voltage_max_v": "V",
}


@dataclass(frozen=True)
class Limits:
    """The BMS's thresholds (the car's calibration: settings, not plan numbers)."""

    isolation_ohm_per_v: float = 100.0
    derate_temp_c: float = 45.0
    warn_temp_c: float = 55.0
    shutdown_temp_c: float = 60.0
    cell_overvoltage_v: float = 4.15
    precharge_tau_s: float = 0.1
    precharge_timeout_s: float = 0.5

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], device: str) -> Limits:
        values: dict[str, float] = {}
        for key, default in cls().__dict__.items():
            try:
                values[key] = float(settings.get(key, default))
            except (TypeError, ValueError) as err:
                raise EmulatorError(f"settings.{key} must be a number", device=device) from err
            if values[key] <= 0:
                raise EmulatorError(f"settings.{key} must be > 0", device=device)
        limits = cls(**values)
        if not limits.derate_temp_c < limits.warn_temp_c < limits.shutdown_temp_c:
            raise EmulatorError(
                "settings: derate_temp_c < warn_temp_c < shutdown_temp_c", device=device
            )
        return limits


class Battery:
    """The pack and its BMS (called under the emulator's lock)."""

    def __init__(self, limits: Limits, defects: frozenset[str], soc: float) -> None:
        self.limits = limits
        self.defects = defects
        self.soc = soc
        self.current = 0.0  # A, + = discharge
        self.isolation_kohm = 2500.0
        self.cell_temp_max_c = 25.0
        self.cell_voltage_max_v = 4.0
        self.contactor = OPEN
        self.link_v = 0.0
        self.thermal = NORMAL
        self._precharge_s = 0.0

    def set_input(self, name: str, value: float) -> None:
        setattr(self, name, float(value))

    # -- derived state --------------------------------------------------------

    @property
    def pack_v(self) -> float:
        return 330.0 + 0.9 * self.soc - 0.05 * self.current

    @property
    def isolation_fault(self) -> bool:
        if "no_isolation_monitor" in self.defects:
            return False
        return self.isolation_kohm * 1000.0 < self.limits.isolation_ohm_per_v * self.pack_v

    @property
    def overvoltage(self) -> bool:
        if "no_overvoltage_stop" in self.defects:
            return False
        return self.cell_voltage_max_v >= self.limits.cell_overvoltage_v - 1e-9

    @property
    def power_limit(self) -> int:
        return POWER_LIMIT[self.thermal]

    @property
    def charge_blocked(self) -> bool:
        """A fault that forbids charging whatever the pilot allows."""
        return self.isolation_fault or self.overvoltage or self.thermal == SHUTDOWN

    # -- behaviour ------------------------------------------------------------

    def _update_thermal(self) -> None:
        t, lim = self.cell_temp_max_c, self.limits
        if t >= lim.shutdown_temp_c or (self.thermal == SHUTDOWN and t >= lim.derate_temp_c):
            self.thermal = SHUTDOWN  # latched until the pack has cooled below derating
        elif t >= lim.warn_temp_c:
            self.thermal = WARNING
        elif t >= lim.derate_temp_c and "no_thermal_derate" not in self.defects:
            self.thermal = DERATE
        else:
            self.thermal = NORMAL

    def step(self, dt: float, *, hv_wanted: bool, current_a: float) -> None:
        """Advance ``dt`` s: ``hv_wanted`` asks for closed contactors, ``current_a`` flows."""
        self._update_thermal()
        wanted = hv_wanted and self.thermal != SHUTDOWN
        self.current = current_a if self.contactor == CLOSED else 0.0
        self.soc = min(100.0, max(0.0, self.soc - self.current * dt / 3600.0 / PACK_AH * 100.0))
        pack = self.pack_v
        if not wanted:
            self.contactor = OPEN
        elif self.contactor == OPEN:
            if "closes_without_precharge" in self.defects:
                self.contactor = CLOSED  # the link is still at whatever it was
                return
            self.contactor, self._precharge_s = PRECHARGE, 0.0
        elif self.contactor == PRECHARGE:
            self._precharge_s += dt
            # the precharge resistor charges the link capacitor: an RC curve
            self.link_v = pack + (self.link_v - pack) * math.exp(-dt / self.limits.precharge_tau_s)
            if self.link_v >= CLOSE_AT * pack:
                self.contactor = CLOSED
                return  # this tick reports the voltage the contactors closed at
            if self._precharge_s > self.limits.precharge_timeout_s:
                self.contactor = FAULT
        if self.contactor == CLOSED:
            self.link_v = pack
        elif self.contactor in (OPEN, FAULT):
            self.link_v *= math.exp(-dt / DISCHARGE_TAU_S)

    def signals(self) -> dict[str, dict[str, Any]]:
        """Message → signal values, as the BMS reports them."""
        return {
            "BMS_Status": {
                "SoC": round(self.soc, 1),
                "PackVoltage": round(self.pack_v, 2),
                "PackCurrent": round(self.current, 1),
                "ContactorState": self.contactor,
                "LinkVoltage": round(self.link_v, 1),
            },
            # sensors saturate at the ends of their ranges (the DBC's)
            "BMS_Cells": {
                "CellVoltageMin": _clamp(self.cell_voltage_max_v - CELL_VOLTAGE_SPREAD_V, 0, 8.191),
                "CellVoltageMax": _clamp(self.cell_voltage_max_v, 0, 8.191),
                "CellTempMin": _clamp(self.cell_temp_max_c - CELL_TEMP_SPREAD_C, -40, 87.5),
                "CellTempMax": _clamp(self.cell_temp_max_c, -40, 87.5),
            },
            "BMS_Safety": {
                "IsolationResistance": round(_clamp(self.isolation_kohm, 0, 65535)),
                "IsolationFault": int(self.isolation_fault),
                "CellOverVoltage": int(self.overvoltage),
                "ThermalState": self.thermal,
                "PowerLimit": self.power_limit,
            },
        }

    def state(self) -> dict[str, Any]:
        return {
            "soc_percent": self.soc,
            "pack_v": self.pack_v,
            "contactor": CONTACTORS[self.contactor],
            "link_v": self.link_v,
            "isolation_kohm": self.isolation_kohm,
            "isolation_fault": self.isolation_fault,
            "cell_temp_max_c": self.cell_temp_max_c,
            "cell_voltage_max_v": self.cell_voltage_max_v,
            "overvoltage": self.overvoltage,
            "thermal": THERMAL[self.thermal],
            "power_limit_percent": self.power_limit,
        }


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))
