"""The fridge seen from the bench (which plays its Wi-Fi module)."""

from __future__ import annotations

from hil.miot.acceptance import AcceptanceModuleDriver


class FridgeDriver(AcceptanceModuleDriver):
    """``fridge.door_open``, ``fridge.alarm_times(since)``, ``fridge.temperature_c``."""

    @property
    def door_open(self) -> bool:
        """Door state, read now (a real ``get_properties``)."""
        return bool(self.get("fridge.door"))

    @property
    def temperature_c(self) -> float:
        """Compartment temperature, read now (°C)."""
        return float(self.get("fridge.temperature"))

    @property
    def compressor_running(self) -> bool:
        return bool(self.get("fridge.compressor"))

    def set_target(self, celsius: int) -> None:
        """Compartment set point, 2–8 °C."""
        self.set("fridge.target-temperature", celsius)

    def alarm_times(self, since: float) -> list[float]:
        """Capture timestamps of the door alarms received at or after ``since``."""
        return [s.t for s in self.samples("fridge.door-alarm", since) if s.t >= since]
