"""An emulated built-in oven MCU: thermostat, remote-preheat policy, safe states.

Three safety rules are modelled (scenarios A2, A4, A6):

- a remote ``preheat`` is accepted only when the policy allows it, someone is
  home (``home.occupancy``, written by the hub), or someone pressed the oven's
  own button (bench input ``local_confirm``) within ``confirm_window_s``;
  otherwise it is answered ``-4004`` and ``remote-refused`` is raised;
- when the module stops answering ``get_down`` for more than
  ``link_timeout_s`` the oven switches off, reports ``fault = link-lost``
  and stays off when the link comes back;
- after a mains interruption (bench input ``mains``) the MCU reboots (it
  announces its model again) with everything off and ``fault =
  power-failure``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from hil.emulation.physics import ElectricalState
from hil.miot.codec import Line, Value
from hil.miot.mcu import ActionRefused, MiotMcuEmulator
from hil.miot.spec import MiotSpec

ON = "oven.on"
MODE = "oven.mode"
TARGET = "oven.target-temperature"
TEMPERATURE = "oven.temperature"
HEATER = "oven.heater"
DOOR = "oven.door"
FAULT = "oven.fault"
POLICY = "home.remote-preheat-policy"
OCCUPANCY = "home.occupancy"
POWER = "power-consumption.electric-power"

# wire values, as in spec.yaml
MODE_OFF, MODE_PREHEAT, MODE_KEEP_WARM = 0, 1, 4
FAULT_NONE, FAULT_LINK, FAULT_POWER = 0, 1, 2
POLICY_ALLOW = 1
REFUSED = -4004  # the protocol's "internal error": the oven will not do it

STANDBY_PF = 0.3  # small switched-mode supply: mostly reactive, spiky current
STANDBY_CREST = 2.8
HEATING_PF = 0.99  # a resistive element
HIGH_NETWORK_W = 2.5


class OvenEmulator(MiotMcuEmulator):
    """The MCU of a 2.5 kW oven, on a pty.

    Durations and rates are in plan seconds: at ``time_scale`` 0.1 the cavity
    heats ten times faster on the wall clock and the 600 s confirmation window
    lasts 60 s. ``link_timeout_s`` is a wire rule and is never scaled.
    """

    DEFECTS: ClassVar[Mapping[str, str]] = {
        "preheat_when_away": "accepts a remote preheat with nobody home and no local confirmation",
        "resume_after_mains": "after a mains interruption it resumes the programme it was running",
        "heats_on_link_loss": "keeps heating (and reports no fault) when the link goes silent",
        "display_stays_on": "the clock display cannot be switched off (standby always "
        "includes the display's draw)",
        "network_standby_high": f"its Wi-Fi module draws {HIGH_NETWORK_W} W in networked "
        "standby instead of the set network_w",
        # sequence defect (found by exploration, testplans/explore/XE2)
        "preheat_after_occupancy_bounce": "after a leave → arrive bounce the away guard stops "
        "following occupancy: the next leave is missed and a remote preheat is accepted",
    }
    # display: the clock/status display (the oven's own menu); network: the Wi-Fi
    # module associated to the home network and idle (networked standby)
    INPUTS: ClassVar[Mapping[str, str]] = {
        **{"door": "", "local_confirm": "", "mains": ""},
        **{"display": "", "network": ""},
    }

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
        self.standby_w = float(s.get("standby_w", 0.4))
        # low-power modes (EU 2023/826): what the display and the idle network add
        self.display_w = float(s.get("display_w", 0.3))
        self.network_w = (
            HIGH_NETWORK_W if self.has("network_standby_high") else float(s.get("network_w", 1.2))
        )
        self.display = self.has("display_stays_on")
        self.network = False
        self.heating_w = float(s.get("heating_w", 2500.0))
        self.nominal_v = float(s.get("nominal_v", 230.0))
        self.heat_rate = float(s.get("heat_rate_c_per_s", 1.0))
        self.cool_rate = float(s.get("cool_rate_c_per_s", 0.1))
        self.ambient_c = float(s.get("ambient_c", 23.0))
        self.hysteresis_c = float(s.get("hysteresis_c", 2.0))
        self.keep_warm_c = float(s.get("keep_warm_c", 70.0))
        self.max_temperature_c = float(s.get("max_temperature_c", 250.0))
        self.confirm_window_s = float(s.get("confirm_window_s", 600.0))
        self.link_timeout_s = float(s.get("link_timeout_s", 1.0))
        self._temp = float(s.get("initial_temperature_c", self.ambient_c))
        self._last_tick: float | None = None
        self._last_down: float | None = None  # when the module last answered a poll
        self.link_ok = True
        self.link_faults = 0
        self._mains = True
        self._reboot = False  # set by the bench thread, done on the MCU thread
        self._before_outage: tuple[Value, Value, Value] | None = None
        self._confirmed_at: float | None = None  # local button, not yet used
        self._awaiting: tuple[float, int] | None = None  # refused request a button may confirm
        self._preheat_done = False
        # the occupancy the remote-preheat guard acts on (follows home.occupancy; see
        # preheat_after_occupancy_bounce), and whether a leave has been seen
        self._guard_home = False
        self._guard_follows = True
        self._left = False
        self.update(TARGET, 180)
        self._report_temperature()

    # ----- what tests look at

    @property
    def heater_on(self) -> bool:
        """The element is energised (never during a mains interruption)."""
        return self._mains and self.value(HEATER) is True

    @property
    def temperature_c(self) -> float:
        with self._lock:
            return self._temp

    @property
    def mains(self) -> bool:
        return self._mains

    def state(self) -> dict[str, Any]:
        out = super().state()
        with self._lock:
            out.update(
                temperature_c=self._temp,
                heater_on=self.heater_on,
                mains=self._mains,
                link_ok=self.link_ok,
                link_faults=self.link_faults,
                confirmed_at=self._confirmed_at,
                awaiting_confirmation=self._awaiting,
            )
        return out

    # ----- power

    def electrical_state(self, supply_v: float) -> ElectricalState:
        """What an analyzer on the oven's mains feed sees at ``supply_v``."""
        if supply_v <= 0 or not self._mains:
            return ElectricalState(max(supply_v, 0.0), 0.0, 0.0, 1.0)
        if self.heater_on:
            current = self.heating_w / (supply_v * HEATING_PF)
            return ElectricalState(supply_v, current, self.heating_w, HEATING_PF)
        watts = self.standby_w + self.display_w * self.display + self.network_w * self.network
        current = watts / (supply_v * STANDBY_PF)
        return ElectricalState(
            supply_v, current, watts, STANDBY_PF, current_crest_factor=STANDBY_CREST
        )

    # ----- bench inputs

    def _apply_input(self, name: str, value: float) -> None:
        on = value >= 0.5
        with self._lock:
            if name == "display":
                self.display = on or self.has("display_stays_on")
            elif name == "network":
                self.network = on
            elif name == "door":
                if self._mains:
                    self.update(DOOR, on)
            elif name == "local_confirm":
                if on and self._mains:
                    self._local_confirm(time.monotonic())
            elif on and not self._mains:
                self._mains, self._reboot = True, True
            elif not on and self._mains:
                self._before_outage = (self.value(ON), self.value(MODE), self.value(TARGET))
                # a dead MCU sends and hears nothing; its values are reset at reboot,
                # so the module is told what changed once it is back
                self._mains = False

    def _local_confirm(self, now: float) -> None:
        window = self.confirm_window_s * self.time_scale
        if self._awaiting is not None and now - self._awaiting[0] <= window:
            # the user at the oven confirms the remote request it is showing
            self._start_preheat(self._awaiting[1])
            return
        self._awaiting = None
        self._confirmed_at = now

    # ----- the link and the mains (workarounds: the base has no hooks for them)

    def _downlink(self, line: Line) -> None:
        with self._lock:
            self._last_down = time.monotonic()
        super()._downlink(line)

    def _send(self, command: str, *args: Value) -> None:
        if self._mains:
            super()._send(command, *args)

    def _receive(self, raw: bytes) -> None:
        if self._mains:
            super()._receive(raw)

    def _do_reboot(self) -> None:
        # the MCU restarts from its boot handshake, as a real one does on power-up
        self._stage, self._next_send, self._net = "model", 0.0, "offline"
        self._last_down, self.link_ok = None, True
        self._confirmed_at, self._awaiting = None, None
        self.update(HEATER, False)
        self.update(DOOR, False)
        before = self._before_outage
        if self.has("resume_after_mains") and before is not None:
            self.update(ON, before[0])
            self.update(MODE, before[1])
            self.update(TARGET, before[2])
            return
        self.update(ON, False)
        self.update(MODE, MODE_OFF)
        self.update(FAULT, FAULT_POWER)

    def _watch_link(self, now: float) -> None:
        if not self.booted:
            return
        if self._last_down is None:
            self._last_down = now  # the link exists from the end of the handshake
        silent = now - self._last_down > self.link_timeout_s
        if silent and self.link_ok:
            self.link_ok = False
            self.link_faults += 1
            if not self.has("heats_on_link_loss"):
                self._switch_off(FAULT_LINK)
        elif not silent:
            self.link_ok = True  # the fault stays until the next command: no auto-resume

    # ----- hooks

    def _property_written(self, name: str, old: Value, new: Value) -> None:
        with self._lock:
            if name == ON:
                if new is False:
                    self.update(MODE, MODE_OFF)
                else:
                    self.update(FAULT, FAULT_NONE)
            elif name == OCCUPANCY:
                self._follow_occupancy(new is True)
            elif name == MODE and new != MODE_OFF:
                self.update(ON, True)
                self.update(FAULT, FAULT_NONE)
                self._preheat_done = False

    def _follow_occupancy(self, home: bool) -> None:
        if self._guard_follows:
            self._guard_home = home
        if not home:
            self._left = True
        elif self._left and self.has("preheat_after_occupancy_bounce"):
            # the arrival after a leave re-registers the occupancy listener, wrongly:
            # from here on the guard keeps "home" whatever the hub writes
            self._guard_follows = False

    def _on_action(self, name: str, args: Mapping[str, Value]) -> Mapping[str, Value]:
        if name != "oven.preheat":
            raise ActionRefused(-4003)
        target = int(args["target-temperature"])
        now = time.monotonic()
        window = self.confirm_window_s * self.time_scale
        with self._lock:
            confirmed = self._confirmed_at is not None and now - self._confirmed_at <= window
            allowed = (
                self.value(POLICY) == POLICY_ALLOW
                or (self.value(OCCUPANCY) is True if self._guard_follows else self._guard_home)
                or confirmed
                or self.has("preheat_when_away")
            )
            if not allowed:
                self._awaiting = (now, target)
                self.emit("oven.remote-refused", **{"target-temperature": target})
                raise ActionRefused(REFUSED)
            self._start_preheat(target)
        return {}

    def _start_preheat(self, target: int) -> None:
        self._confirmed_at, self._awaiting = None, None  # one confirmation, one preheat
        self._preheat_done = False
        self.update(TARGET, target)
        self.update(ON, True)
        self.update(MODE, MODE_PREHEAT)
        self.update(FAULT, FAULT_NONE)

    def _switch_off(self, fault: int) -> None:
        self.update(HEATER, False)
        self.update(MODE, MODE_OFF)
        self.update(ON, False)
        self.update(FAULT, fault)

    def _tick(self, now: float) -> None:
        with self._lock:
            dt = 0.0 if self._last_tick is None else now - self._last_tick
            self._last_tick = now
            if self._reboot:
                self._reboot = False
                self._do_reboot()
            if self._mains:
                self._watch_link(now)
                self._expire(now)
                self._thermostat()
            self._heat(dt / self.time_scale)

    def _expire(self, now: float) -> None:
        window = self.confirm_window_s * self.time_scale
        if self._awaiting is not None and now - self._awaiting[0] > window:
            self._awaiting = None
        if self._confirmed_at is not None and now - self._confirmed_at > window:
            self._confirmed_at = None

    def _thermostat(self) -> None:
        mode = self.value(MODE)
        target = float(self.value(TARGET))
        if mode == MODE_KEEP_WARM:
            target = min(target, self.keep_warm_c)
        target = min(target, self.max_temperature_c)
        heating = self.value(ON) is True and mode != MODE_OFF
        if not heating or self._temp >= target:
            self.update(HEATER, False)
        elif self._temp <= target - self.hysteresis_c:
            self.update(HEATER, True)
        if self._temp >= self.max_temperature_c:
            self.update(HEATER, False)  # the envelope holds whatever else is wrong
        if heating and mode == MODE_PREHEAT and self._temp >= target and not self._preheat_done:
            self._preheat_done = True
            self.emit("oven.preheat-done", temperature=round(self._temp, 1))

    def _heat(self, dt: float) -> None:
        if self._mains and self.heater_on:
            self._temp = min(self._temp + self.heat_rate * dt, self.max_temperature_c + 5.0)
        else:
            self._temp = max(self.ambient_c, self._temp - self.cool_rate * dt)
        if self._mains:  # a dead MCU measures nothing
            self._report_temperature()
            # the oven meters its own draw at the nominal voltage (the hub sums it)
            self.update(POWER, round(self.electrical_state(self.nominal_v).power_w, 1))

    def _report_temperature(self) -> None:
        # rounded to the sensor's resolution so a steady cavity is not re-reported
        self.update(TEMPERATURE, round(self._temp, 1))
