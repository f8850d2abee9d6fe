"""An emulated tunable-white ceiling light MCU: switch, dimming, scenes.

The LED driver draws ``standby_w`` while the light is off and up to
``max_w`` at full brightness, in proportion to the brightness.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from hil.emulation.physics import ElectricalState
from hil.miot.codec import Value
from hil.miot.mcu import ActionRefused, MiotMcuEmulator
from hil.miot.spec import MiotSpec

ON = "light.on"
BRIGHTNESS = "light.brightness"
COLOR_TEMPERATURE = "light.color-temperature"
SCENE = "light.scene-id"

# scene-id → (brightness %, colour temperature K); ids as in spec.yaml
SCENES: Mapping[int, tuple[int, int]] = {
    1: (100, 4000),  # reading
    2: (40, 2700),  # relax
    3: (80, 5000),  # morning
    4: (5, 2700),  # night
    5: (70, 3000),  # welcome
}
NO_SCENE = 0
STANDBY_PF = 0.3
LED_PF = 0.9  # a driver with passive power-factor correction


class LightsEmulator(MiotMcuEmulator):
    """The light's MCU, on a pty.

    Settings: ``standby_w`` (0.3), ``max_w`` (9, at 100 %),
    ``initial_brightness`` (100), ``initial_color_temperature`` (4000),
    ``poll_period_s`` (0.2).
    """

    DEFECTS: ClassVar[Mapping[str, str]] = {
        "stuck_off": "accepts 'on' and scenes but stays dark (reports on = false, draws standby)",
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
        self.standby_w = float(s.get("standby_w", 0.3))
        self.max_w = float(s.get("max_w", 9.0))
        self.update(BRIGHTNESS, int(s.get("initial_brightness", 100)))
        self.update(COLOR_TEMPERATURE, int(s.get("initial_color_temperature", 4000)))

    # ----- what tests look at

    @property
    def lit(self) -> bool:
        return self.value(ON) is True

    @property
    def brightness(self) -> int:
        return int(self.value(BRIGHTNESS))

    def state(self) -> dict[str, Any]:
        out = super().state()
        out.update(lit=self.lit, power_w=self.electrical_state(230.0).power_w)
        return out

    # ----- power

    def electrical_state(self, supply_v: float) -> ElectricalState:
        """Standby while off; proportional to brightness while on."""
        if not self.lit:
            watts, pf = self.standby_w, STANDBY_PF
        else:
            watts = self.standby_w + (self.max_w - self.standby_w) * self.brightness / 100
            pf = LED_PF
        return ElectricalState.drawing(supply_v, watts, pf)

    # ----- hooks

    def _property_written(self, name: str, old: Value, new: Value) -> None:
        with self._lock:
            if name == ON and new is True and self.has("stuck_off"):
                self.update(ON, False)
            elif name in (BRIGHTNESS, COLOR_TEMPERATURE):
                self.update(SCENE, NO_SCENE)  # a manual change leaves the scene

    def _on_action(self, name: str, args: Mapping[str, Value]) -> Mapping[str, Value]:
        if name != "light.apply-scene":
            raise ActionRefused(-4003)
        scene = int(args["scene-id"])
        if scene not in SCENES:
            raise ActionRefused(-4006)  # "none" is a state, not a scene to apply
        brightness, kelvin = SCENES[scene]
        with self._lock:
            self.update(BRIGHTNESS, brightness)
            self.update(COLOR_TEMPERATURE, kelvin)
            self.update(SCENE, scene)
            self.update(ON, not self.has("stuck_off"))
        return {}
