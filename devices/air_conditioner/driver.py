"""The air conditioner seen from the bench (which plays its Wi-Fi module)."""

from __future__ import annotations

from hil.errors import ConfigError, did_you_mean
from hil.miot.acceptance import AcceptanceModuleDriver


class AirConditionerDriver(AcceptanceModuleDriver):
    """``ac.turn_on("cool", 24)``, ``ac.room_temperature_c``, ``ac.mode`` on top of get/set."""

    def choice(self, signal: str, name: str) -> int:
        """The wire value of enum ``name`` of ``signal`` (``"cool"`` → 0)."""
        choices = self.definition.signals[signal].choices
        if name not in choices:
            raise ConfigError(f"{signal} has no value {name!r}; " + did_you_mean(name, choices))
        return int(choices[name])

    def turn_on(self, mode: str = "auto", target_c: float | None = None) -> None:
        """Set the mode (and set point, if given), then switch the unit on."""
        self.set("air-conditioner.mode", self.choice("air-conditioner.mode", mode))
        if target_c is not None:
            self.set("air-conditioner.target-temperature", target_c)
        self.set("air-conditioner.on", True)

    def turn_off(self) -> None:
        self.set("air-conditioner.on", False)

    def set_fan(self, level: str) -> None:
        """``auto``, ``low``, ``medium`` or ``high``."""
        self.set("air-conditioner.fan-level", self.choice("air-conditioner.fan-level", level))

    @property
    def is_on(self) -> bool:
        return bool(self.get("air-conditioner.on"))

    @property
    def mode(self) -> str:
        """The operating mode's name, read now."""
        sig = "air-conditioner.mode"
        return self.definition.signals[sig].label(self.get(sig))

    @property
    def target_c(self) -> float:
        return float(self.get("air-conditioner.target-temperature"))

    @property
    def room_temperature_c(self) -> float:
        """Room temperature at the indoor unit, read now (°C)."""
        return float(self.get("environment.temperature"))
