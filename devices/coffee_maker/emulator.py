"""An emulated coffee maker MCU: a brew is heating, then brewing, then done.

``brew`` is answered at once (the result does not wait for the cup); the
phases show in ``status`` and the end in the ``brew-done`` event. Each
recipe takes water from the tank; the tank is refilled by the bench input
``water_level``. Durations are in plan seconds and run at the bench's
``time_scale``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from hil.emulation.physics import ElectricalState
from hil.errors import EmulatorError
from hil.miot.codec import Value
from hil.miot.mcu import ActionRefused, MiotMcuEmulator
from hil.miot.spec import MiotSpec

ON = "coffee-maker.on"
STATUS = "coffee-maker.status"
WATER = "coffee-maker.water-level"
RECIPE = "coffee-maker.recipe"
DONE_EVENT = "coffee-maker.brew-done"

# wire values, as in spec.yaml
IDLE, HEATING, BREWING, DONE, ERROR = 0, 1, 2, 3, 4
# recipe → tank percentage one cup takes (espresso, lungo, americano)
WATER_USE: Mapping[int, int] = {1: 5, 2: 10, 3: 20}
REFUSED = -4004
STANDBY_PF = 0.3
HEATER_PF = 0.99  # a resistive thermoblock


class CoffeeMakerEmulator(MiotMcuEmulator):
    """The coffee maker's MCU, on a pty.

    Settings: ``standby_w`` (0.3), ``heating_w`` (1450, heating and brewing:
    the thermoblock heats the water as it flows), ``heat_s`` (15),
    ``brew_s`` (25), ``initial_water_level`` (100 %), ``poll_period_s`` (0.2).
    """

    DEFECTS: ClassVar[Mapping[str, str]] = {
        "brew_without_water": "starts a brew even when the tank holds too little water for it",
    }
    INPUTS: ClassVar[Mapping[str, str]] = {"water_level": "%"}

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
        self.heating_w = float(s.get("heating_w", 1450.0))
        self.heat_s = float(s.get("heat_s", 15.0))
        self.brew_s = float(s.get("brew_s", 25.0))
        self._phase_end: float | None = None  # MCU clock (monotonic)
        self.cups = 0
        self.dry_brews = 0  # brews started without enough water (defect)
        self.update(WATER, int(s.get("initial_water_level", 100)))

    # ----- what tests look at

    @property
    def status(self) -> int:
        return int(self.value(STATUS))

    @property
    def heating(self) -> bool:
        return self.status in (HEATING, BREWING)

    def state(self) -> dict[str, Any]:
        out = super().state()
        with self._lock:
            out.update(status=self.status, phase_end=self._phase_end, cups=self.cups)
        return out

    # ----- power

    def electrical_state(self, supply_v: float) -> ElectricalState:
        """The thermoblock while heating or brewing, standby otherwise."""
        watts, pf = (self.heating_w, HEATER_PF) if self.heating else (self.standby_w, STANDBY_PF)
        return ElectricalState.drawing(supply_v, watts, pf)

    # ----- bench input

    def _apply_input(self, name: str, value: float) -> None:
        if not 0 <= value <= 100:
            raise EmulatorError(f"water_level must be 0–100 %, got {value}", device=self.name)
        with self._lock:
            self.update(WATER, round(value))
            if self.status == ERROR:
                self.update(STATUS, IDLE)  # refilled: ready again

    # ----- hooks

    def _property_written(self, name: str, old: Value, new: Value) -> None:
        if name == ON and new is False:
            with self._lock:
                self._phase_end = None  # switching off aborts a brew
                self.update(STATUS, IDLE)

    def _on_action(self, name: str, args: Mapping[str, Value]) -> Mapping[str, Value]:
        if name != "coffee-maker.brew":
            raise ActionRefused(-4003)
        recipe = int(args["recipe"])
        with self._lock:
            if self.heating:
                raise ActionRefused(REFUSED)  # one cup at a time
            if int(self.value(WATER)) < WATER_USE[recipe]:
                if not self.has("brew_without_water"):
                    self.update(STATUS, ERROR)
                    raise ActionRefused(REFUSED)
                self.dry_brews += 1
            self.update(ON, True)
            self.update(RECIPE, recipe)
            self.update(STATUS, HEATING)
            self._phase_end = time.monotonic() + self.heat_s * self.time_scale
        return {}

    def _tick(self, now: float) -> None:
        with self._lock:
            if self._phase_end is None or now < self._phase_end:
                return
            if self.status == HEATING:
                self.update(STATUS, BREWING)
                self._phase_end = now + self.brew_s * self.time_scale
                return
            self._phase_end = None
            recipe = int(self.value(RECIPE))
            self.update(WATER, max(0, int(self.value(WATER)) - WATER_USE[recipe]))
            self.update(STATUS, DONE)
            self.cups += 1
            self.emit(DONE_EVENT, recipe=recipe)
