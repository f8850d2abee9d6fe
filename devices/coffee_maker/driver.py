"""The coffee maker seen from the bench (which plays its Wi-Fi module)."""

from __future__ import annotations

from hil.errors import ConfigError, did_you_mean
from hil.miot.acceptance import AcceptanceModuleDriver


class CoffeeMakerDriver(AcceptanceModuleDriver):
    """``coffee.brew("lungo")``, ``coffee.status``, ``coffee.water_level`` on top of get/set."""

    def brew(self, recipe: str) -> None:
        """Start a cup (``espresso``, ``lungo``, ``americano``); -4004 when busy or dry."""
        choices = self.definition.signals["coffee-maker.recipe"].choices
        if recipe not in choices:
            raise ConfigError(f"no recipe {recipe!r}; " + did_you_mean(recipe, choices))
        self.action("coffee-maker.brew", recipe=choices[recipe])

    @property
    def status(self) -> str:
        """``idle``, ``heating``, ``brewing``, ``done`` or ``error``, read now."""
        sig = "coffee-maker.status"
        return self.definition.signals[sig].label(self.get(sig))

    @property
    def water_level(self) -> int:
        """Tank level, read now (%)."""
        return int(self.get("coffee-maker.water-level"))

    def switch(self, on: bool) -> None:
        """Switch on, or off (which aborts a brew)."""
        self.set("coffee-maker.on", on)

    def brews_done(self, since: float) -> list[float]:
        """Capture timestamps of the ``brew-done`` events at or after ``since``."""
        return [s.t for s in self.samples("coffee-maker.brew-done", since) if s.t >= since]
