"""The oven seen from the bench (which plays its Wi-Fi module)."""

from __future__ import annotations

from hil.errors import ConfigError, did_you_mean
from hil.miot.module import MiotModuleDriver


class OvenDriver(MiotModuleDriver):
    """``oven.preheat(200)``, ``oven.set_occupancy(False)``, ``oven.heater_on`` and more."""

    def choice(self, signal: str, name: str) -> int:
        """The wire value of enum ``name`` of ``signal`` (``"bake"`` → 2)."""
        choices = self.definition.signals[signal].choices
        if name not in choices:
            raise ConfigError(f"{signal} has no value {name!r}; " + did_you_mean(name, choices))
        return int(choices[name])

    def label(self, signal: str) -> str:
        """The enum name of ``signal``, read now (``"link-lost"``)."""
        return self.definition.signals[signal].label(self.get(signal))

    def preheat(self, target_c: int) -> None:
        """Remote preheat; ``ProtocolError`` with code -4004 when the policy refuses it."""
        self.action("oven.preheat", **{"target-temperature": target_c})

    def set_mode(self, mode: str) -> None:
        """``off``, ``preheat``, ``bake``, ``grill`` or ``keep_warm``."""
        self.set("oven.mode", self.choice("oven.mode", mode))

    def set_occupancy(self, home: bool) -> None:
        """What the hub tells the oven: is someone at home?"""
        self.set("home.occupancy", home)

    def set_policy(self, policy: str) -> None:
        """``refuse_when_away`` or ``allow``."""
        sig = "home.remote-preheat-policy"
        self.set(sig, self.choice(sig, policy))

    @property
    def heater_on(self) -> bool:
        """Heating element energised, read now."""
        return bool(self.get("oven.heater"))

    @property
    def temperature_c(self) -> float:
        """Cavity temperature, read now (°C)."""
        return float(self.get("oven.temperature"))

    @property
    def mode(self) -> str:
        return self.label("oven.mode")

    @property
    def fault(self) -> str:
        """``none``, ``link-lost``, ``power-failure`` or ``over-temperature``."""
        return self.label("oven.fault")
