"""An emulated metering smart plug: relay, overcurrent trip, power metering,
welded-relay protection.

The appliance behind the plug is a bench input (``load_current``, in A):
it flows only while the relay's contacts are closed and the secondary
cut-off is not open. The plug's own metering and the analyzer wired to it
(``electrical_state``) see the same physics.

Welded relay (scenario A5): the bench input ``relay_welded`` welds the
contacts shut. The MCU senses its contacts (``relay-feedback``); contacts
still closed ``weld_confirm_s`` after it commanded them open mean a weld:
it opens the secondary cut-off (a second, series contact), reports
``fault = welded-relay`` and raises ``relay-fault``.
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
FEEDBACK = "switch.relay-feedback"
CUTOFF = "switch.cutoff"
POWER = "power-consumption.electric-power"
CURRENT = "power-consumption.electric-current"

ELECTRONICS_W = 0.9  # relay coil, metering chip and Wi-Fi module with the relay closed
ELECTRONICS_PF = 0.5
STANDBY_PF = 0.3  # a small switched-mode supply: mostly reactive, spiky current
STANDBY_CREST = 2.8
HIGH_STANDBY_W = 0.65
FAULT_NONE, FAULT_OVERLOAD, FAULT_WELDED = 0, 1, 2
FLOOD_INTERVAL_S = 0.2  # report_flood: a report per property per poll
WRONG_ERROR_CODE = -4003  # a result code where an error code (-9999…-5000) belongs


class SmartPlugEmulator(MiotMcuEmulator):
    """The MCU of a 10 A metering plug, on a pty.

    Settings: ``trip_current_a`` (10), ``trip_delay_s`` (0.5), ``weld_confirm_s``
    (0.2), ``standby_w`` (0.32), ``supply_v`` (230, what its own meter assumes),
    ``load_power_factor`` (1.0), ``initial_on`` (false), ``poll_period_s`` (0.2).
    The trip and weld delays are the plug's own reaction times: never scaled.
    """

    DEFECTS: ClassVar[Mapping[str, str]] = {
        "no_overcurrent_trip": "the relay stays closed whatever the load draws",
        "high_standby": f"draws {HIGH_STANDBY_W} W instead of the set standby power "
        "with the relay open",
        "slow_poll": "polls get_down every 400 ms (the rule is 100–200 ms)",
        "no_overload_event": "trips on overcurrent but never sends the overload event",
        "meter_gain_error": "its own power/current meter reads 15 % high (the mains draw is right)",
        "no_weld_detection": "never checks its relay's contacts: a welded relay keeps the "
        "outlet live while switched off, with no fault",
        "report_flood": "re-reports power and current at every poll (5 a second), unchanged or not",
        "bad_error_code": f"answers unknown downlink methods with error code {WRONG_ERROR_CODE} "
        "(outside -9999…-5000)",
    }
    INPUTS: ClassVar[Mapping[str, str]] = {"load_current": "A", "relay_welded": ""}

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
        self.weld_confirm_s = float(s.get("weld_confirm_s", 0.2))
        self.standby_w = (
            HIGH_STANDBY_W if self.has("high_standby") else float(s.get("standby_w", 0.32))
        )
        self.supply_v = float(s.get("supply_v", 230.0))
        self.load_pf = float(s.get("load_power_factor", 1.0))
        if self.has("slow_poll"):
            self.poll_period = 0.4
        if self.has("report_flood"):
            self.report_interval = FLOOD_INTERVAL_S
        if self.has("bad_error_code"):
            self.unknown_method_code = WRONG_ERROR_CODE
        self._load_a = 0.0
        self._over_since: float | None = None
        self._welded = False
        self._weld_since: float | None = None  # contacts closed while commanded open, since
        self._cutoff = False
        self.trips = 0
        self.weld_faults = 0
        if s.get("initial_on", False):
            self.update(ON, True)
        self._meter()

    # ----- physics

    @property
    def relay_closed(self) -> bool:
        """The relay is commanded closed (``switch.on``)."""
        return self.value(ON) is True

    @property
    def contacts_closed(self) -> bool:
        """The relay's contacts touch: commanded closed, or welded."""
        with self._lock:
            return self.relay_closed or self._welded

    @property
    def conducting(self) -> bool:
        """The load is fed: contacts closed and the secondary cut-off not open."""
        with self._lock:
            return self.contacts_closed and not self._cutoff

    @property
    def load_current_a(self) -> float:
        with self._lock:
            return self._load_a

    def _apply_input(self, name: str, value: float) -> None:
        if name == "relay_welded":
            with self._lock:
                self._welded = value >= 0.5
            return
        if value < 0:
            raise EmulatorError(f"load_current must be >= 0 A, got {value}", device=self.name)
        with self._lock:
            self._load_a = float(value)

    def electrical_state(self, supply_v: float) -> ElectricalState:
        """What an analyzer on the plug's mains input sees at ``supply_v``."""
        with self._lock:
            closed, load = self.conducting, self._load_a
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
        if name != ON:
            return
        with self._lock:
            self._over_since = None  # a fresh close restarts the trip timer
            if new is True and not self._welded:
                # a switch-on re-arms the cut-off once the contacts have opened again
                self._cutoff = False
                self.update(CUTOFF, False)
                self.update(FAULT, FAULT_NONE)
            elif new is True and self.value(FAULT) == FAULT_OVERLOAD:
                self.update(FAULT, FAULT_NONE)

    def _tick(self, now: float) -> None:
        with self._lock:
            self.update(FEEDBACK, self.contacts_closed)
            self._watch_contacts(now)
            load = self._load_a
            over = (
                self.relay_closed
                and self.conducting
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
        if self.has("report_flood"):
            self.republish(POWER)
            self.republish(CURRENT)

    def _watch_contacts(self, now: float) -> None:
        """Contacts still closed while commanded open: a weld; cut the outlet."""
        stuck = self._welded and not self.relay_closed and not self._cutoff
        if not stuck or self.has("no_weld_detection"):
            self._weld_since = None
            return
        if self._weld_since is None:
            self._weld_since = now
        elif now - self._weld_since >= self.weld_confirm_s:
            self._weld_since = None
            self._cutoff = True
            self.weld_faults += 1
            self.update(CUTOFF, True)
            self.update(FAULT, FAULT_WELDED)
            self.emit("switch.relay-fault", fault=FAULT_WELDED)

    def _trip(self, load: float) -> None:
        self.trips += 1
        self.update(ON, False)
        self.update(FAULT, FAULT_OVERLOAD)
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
                welded=self._welded,
                cutoff=self._cutoff,
                weld_faults=self.weld_faults,
                load_current_a=self._load_a,
                trips=self.trips,
                overcurrent_since=self._over_since,
                standby_w=self.standby_w,
            )
        return out
