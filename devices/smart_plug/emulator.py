"""An emulated metering smart plug: relay, overcurrent trip, power metering.

The appliance behind the plug is a bench input (``load_current``, in A):
it flows only while the relay is closed. The plug's own metering and the
analyzer wired to it (``electrical_state``) see the same physics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from hil.emulation.physics import ElectricalState
from hil.errors import EmulatorError
from hil.miot.codec import Value
from hil.miot.mcu import MiotMcuEmulator
from hil.miot.spec import MiotSpec

ON = "switch.on"
FAULT = "switch.fault"
OVERLOAD_CURRENT = "switch.overload-current"
POWER = "power-consumption.electric-power"
CURRENT = "power-consumption.electric-current"

ELECTRONICS_W = 0.9  # relay coil, metering chip and Wi-Fi module with the relay closed
ELECTRONICS_PF = 0.5
STANDBY_PF = 0.3  # a small switched-mode supply: mostly reactive, spiky current
STANDBY_CREST = 2.8
HIGH_STANDBY_W = 0.65


class SmartPlugEmulator(MiotMcuEmulator):
    """The MCU of a 10 A metering plug, on a pty.

    Settings: ``trip_current_a`` (10), ``trip_delay_s`` (0.5), ``standby_w``
    (0.32), ``supply_v`` (230, what its own meter assumes), ``load_power_factor``
    (1.0), ``initial_on`` (false), ``poll_period_s`` (0.2).
    """

    DEFECTS: ClassVar[Mapping[str, str]] = {
        "no_overcurrent_trip": "the relay stays closed whatever the load draws",
        "high_standby": f"draws {HIGH_STANDBY_W} W instead of the set standby power "
        "with the relay open",
        "slow_poll": "polls get_down every 400 ms (the rule is 100–200 ms)",
        "no_overload_event": "trips on overcurrent but never sends the overload event",
        "meter_gain_error": "its own power/current meter reads 15 % high (the mains draw is right)",
    }
    INPUTS: ClassVar[Mapping[str, str]] = {"load_current": "A"}

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
        self.trip_current_a = float(s.get("trip_current_a", 10.0))
        self.trip_delay_s = float(s.get("trip_delay_s", 0.5))
        self.standby_w = (
            HIGH_STANDBY_W if self.has("high_standby") else float(s.get("standby_w", 0.32))
        )
        self.supply_v = float(s.get("supply_v", 230.0))
        self.load_pf = float(s.get("load_power_factor", 1.0))
        if self.has("slow_poll"):
            self.poll_period = 0.4
        self._load_a = 0.0
        self._over_since: float | None = None
        self.trips = 0
        if s.get("initial_on", False):
            self.update(ON, True)
        self._meter()

    # ----- physics

    @property
    def relay_closed(self) -> bool:
        return self.value(ON) is True

    @property
    def load_current_a(self) -> float:
        with self._lock:
            return self._load_a

    def _apply_input(self, name: str, value: float) -> None:
        if value < 0:
            raise EmulatorError(f"load_current must be >= 0 A, got {value}", device=self.name)
        with self._lock:
            self._load_a = float(value)

    def electrical_state(self, supply_v: float) -> ElectricalState:
        """What an analyzer on the plug's mains input sees at ``supply_v``."""
        with self._lock:
            closed, load = self.relay_closed, self._load_a
        if supply_v <= 0:
            return ElectricalState(0.0, 0.0, 0.0, 1.0)
        if not closed:
            current = self.standby_w / (supply_v * STANDBY_PF)
            return ElectricalState(
                supply_v, current, self.standby_w, STANDBY_PF, current_crest_factor=STANDBY_CREST
            )
        i_electronics = ELECTRONICS_W / (supply_v * ELECTRONICS_PF)
        power = ELECTRONICS_W + supply_v * load * self.load_pf
        current = load + i_electronics  # in phase enough that magnitudes add
        return ElectricalState(supply_v, current, power, min(1.0, power / (supply_v * current)))

    def _property_written(self, name: str, old: Value, new: Value) -> None:
        if name == ON:
            with self._lock:
                self._over_since = None  # a fresh close restarts the trip timer
            if new is True:
                self.update(FAULT, 0)

    def _tick(self, now: float) -> None:
        with self._lock:
            load = self._load_a
            over = (
                self.relay_closed
                and load > self.trip_current_a  # exactly the rated current never trips
                and not self.has("no_overcurrent_trip")
            )
            if not over:
                self._over_since = None
            elif self._over_since is None:
                self._over_since = now
            elif now - self._over_since >= self.trip_delay_s:
                self._over_since = None
                self._trip(load)
        self._meter()

    def _trip(self, load: float) -> None:
        self.trips += 1
        self.update(ON, False)
        self.update(FAULT, 1)
        self.update(OVERLOAD_CURRENT, round(load, 3))
        if not self.has("no_overload_event"):
            self.emit("switch.overload", **{"overload-current": round(load, 3)})

    def _meter(self) -> None:
        # rounded to the meter's resolution so an unchanged load is not re-reported
        st = self.electrical_state(self.supply_v)
        gain = 1.15 if self.has("meter_gain_error") else 1.0
        self.update(POWER, round(st.power_w * gain, 2))
        self.update(CURRENT, round(st.current_a * gain, 3))

    def state(self) -> dict[str, Any]:
        out = super().state()
        with self._lock:
            out.update(
                relay_closed=self.relay_closed,
                load_current_a=self._load_a,
                trips=self.trips,
                overcurrent_since=self._over_since,
                standby_w=self.standby_w,
            )
        return out
