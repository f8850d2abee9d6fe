"""The smart plug seen from the bench (which plays its Wi-Fi module)."""

from __future__ import annotations

from hil.miot.acceptance import AcceptanceModuleDriver


class SmartPlugDriver(AcceptanceModuleDriver):
    """``plug.switch(True)``, ``plug.is_on``, ``plug.power_w`` on top of get/set."""

    @property
    def is_on(self) -> bool:
        """Relay state, read from the plug now (a real ``get_properties``)."""
        return bool(self.get("switch.on"))

    def switch(self, on: bool) -> None:
        """Close (``True``) or open the relay."""
        self.set("switch.on", on)

    @property
    def power_w(self) -> float:
        """Active power the plug measures, read now (W)."""
        return float(self.get("power-consumption.electric-power"))

    @property
    def current_a(self) -> float:
        """RMS current the plug measures, read now (A)."""
        return float(self.get("power-consumption.electric-current"))
