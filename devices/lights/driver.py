"""The ceiling light seen from the bench (which plays its Wi-Fi module)."""

from __future__ import annotations

from hil.errors import ConfigError, did_you_mean
from hil.miot.acceptance import AcceptanceModuleDriver


class LightsDriver(AcceptanceModuleDriver):
    """``light.turn_on(brightness=60)``, ``light.apply_scene("relax")``, ``light.is_on``."""

    def turn_on(self, brightness: int | None = None, color_temperature: int | None = None) -> None:
        """Switch on, optionally at a brightness (1–100 %) and colour temperature (K)."""
        if brightness is not None:
            self.set("light.brightness", brightness)
        if color_temperature is not None:
            self.set("light.color-temperature", color_temperature)
        self.set("light.on", True)

    def turn_off(self) -> None:
        self.set("light.on", False)

    def apply_scene(self, scene: str) -> None:
        """``reading``, ``relax``, ``morning``, ``night`` or ``welcome``."""
        choices = dict(self.definition.signals["light.scene-id"].choices)
        choices.pop("none", None)  # a state, not a scene one can apply
        if scene not in choices:
            raise ConfigError(f"no scene {scene!r}; " + did_you_mean(scene, choices))
        self.action("light.apply-scene", **{"scene-id": choices[scene]})

    @property
    def is_on(self) -> bool:
        """Light state, read now."""
        return bool(self.get("light.on"))

    @property
    def brightness(self) -> int:
        return int(self.get("light.brightness"))

    @property
    def color_temperature(self) -> int:
        return int(self.get("light.color-temperature"))
