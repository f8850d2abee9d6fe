"""An emulated AC wallbox (IEC 61851-1 control pilot) on a python-can channel.

Behaviour, on every received frame and every 10 ms tick:

* **Limit → duty.** The limit (the hub's ``CurrentLimit``, or the fallback)
  is clamped to ``max_current_a`` (32 A); the PWM duty is limit / 0.6 A per
  %, rounded *down* to the DBC's 0.1 % so the pilot never allows more than
  the limit, and ``AllowedCurrent`` = duty × 0.6 A (6 A → 10 %, 32 A →
  53.3 %). A limit below 6 A pauses: no PWM (duty 100 %), state B,
  ``AllowedCurrent`` 0, ``ChargingEnabled`` 0.
* **Pilot state.** A unplugged; B plugged and not charging; C plugged, PWM
  on and the car demanding current; E pilot shorted to earth (no PWM,
  ``AllowedCurrent`` 0, ``InterruptReason`` PILOT_ERROR, sent at once, and
  no session starts, plugged or not, while the short lasts). F is never
  entered by the emulator.
* **Hub link.** A ``HUB_ChargeLimit`` whose ``HeartbeatCounter`` differs from
  the previous one refreshes the link (a repeated counter is a hung hub: the
  frame is ignored). With no fresh frame for ``hub_timeout_s`` (3 s; the
  emulator acts ``REACTION_S`` early so the fallback is in effect *by* the timeout)
  ``LinkState`` is LOST, ``FallbackActive`` 1 and the limit is
  ``fallback_current_a`` (6 A); a fallback below 6 A pauses with
  ``InterruptReason`` HUB_LOST. At power-on no hub has spoken: the link
  starts LOST, in fallback.
* **Over-draw.** While the contactor is closed and the car draws at least
  ``overdraw_factor`` (1.2) × ``AllowedCurrent`` for more than
  ``overdraw_s`` (2 s), charging is interrupted: ``ChargingEnabled`` 0,
  ``InterruptReason`` OVERDRAW, state B, until the car is unplugged.
* **The car.** A car wired to the inlet (``ev: wiring: {inlet: charger}``)
  shares a ``PilotWire`` with the wallbox: the wallbox puts its plug state,
  duty, pilot error and contactor on it and measures what the car draws;
  state C is the car asking for power (S2), not a demand. Without a wired car
  the wallbox simulates one (``HIL_EVSE_Ctrl``): in state C it draws
  min(``CarCurrentDemand``, allowed), or its whole demand in mode
  IGNORES_PILOT; nothing with the contactor open. ``MeasuredCurrent``
  reports the draw; as a ``PowerSource`` the feed is supply voltage × that current.

Identity (EVSE_Info): ``firmware`` ("1.4.2"), ``serial`` (31002517),
``hw_revision`` (2). EVSE_Config declares the settings above.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from devices.charger.driver import EVSE_NODES, e2e_profile, load_database
from devices.charger.pilot import AMPS_PER_PERCENT, MAX_DUTY, MIN_DUTY, NO_PWM, EvseSide, PilotWire
from hil.cannode.emulator import CanNodeEmulator
from hil.emulation.physics import ElectricalState
from hil.errors import EmulatorError

STATE_A, STATE_B, STATE_C, STATE_E, STATE_F = 0, 1, 2, 4, 5
STATES = {STATE_A: "A", STATE_B: "B", STATE_C: "C", STATE_E: "E", STATE_F: "F"}
NONE, OVERDRAW, PILOT_ERROR, HUB_LOST = 0, 1, 2, 3
REACTION_S = 0.15  # how long before its declared timeout the wallbox acts (≤ 1/4 of it)
REASONS = {NONE: "NONE", OVERDRAW: "OVERDRAW", PILOT_ERROR: "PILOT_ERROR", HUB_LOST: "HUB_LOST"}

WRONG_AMPS_PER_PERCENT = 0.5
MIN_CURRENT_A = 6.0
CHANGE_WINDOW_S = 1.0  # (no_fallback_after_limit_change) a limit change this recent masks
MAX_INSTALLATION_A = MAX_DUTY * AMPS_PER_PERCENT  # 51 A: the top of the duty band


class ChargerEmulator(CanNodeEmulator):
    """The wallbox side of the charger's CAN bus (and the emulated car behind it)."""

    DEFECTS: ClassVar[Mapping[str, str]] = {
        "no_fallback": "keeps the last limit when the hub link is lost (no fallback current)",
        "wrong_duty": "duty computed as amps / 0.5 instead of / 0.6: the pilot allows 20 % more",
        "ignores_pilot_error": "keeps charging on a pilot shorted to earth (no state E)",
        "no_overdraw_interrupt": "never interrupts a car that draws more than allowed",
        # sequence defects (found by exploration, testplans/explore/XE3)
        "no_fallback_after_limit_change": "when the hub link drops within "
        "1 s of a limit change, the pending change masks the timeout: LinkState LOST but the "
        "new limit stays offered (no fallback current)",
        "hub_limit_lost_on_replug": "an unplug clears the session's copy of the hub limit and "
        "only a *changed* limit restores it: after a replug the wallbox offers its maximum",
    }
    INPUTS: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        name: str,
        *,
        interface: str,
        channel: str,
        bus_kwargs: Mapping[str, Any] | None = None,
        defects: Iterable[str] = (),
        time_scale: float = 1.0,
        settings: Mapping[str, Any] | None = None,
        wiring: Mapping[str, object] | None = None,
    ) -> None:
        if wiring:
            raise EmulatorError(
                f"a wallbox has no wiring channels (got {sorted(wiring)}); "
                "wire the car's inlet to it instead (ev: wiring: {inlet: charger})",
                device=name,
            )
        super().__init__(
            name,
            db=load_database(),
            nodes=EVSE_NODES,
            interface=interface,
            channel=channel,
            bus_kwargs=bus_kwargs,
            e2e=e2e_profile(),
            defects=defects,
            time_scale=time_scale,
            settings=settings,
        )
        s = self.settings
        self.max_current_a = self._setting("max_current_a", 32.0, MIN_CURRENT_A, MAX_INSTALLATION_A)
        self.fallback_current_a = self._setting("fallback_current_a", 6.0, 0.0, 80.0)
        self.hub_timeout_s = self._setting("hub_timeout_s", 3.0, 0.1, 25.5)
        self.overdraw_s = self._setting("overdraw_s", 2.0, 0.0, 25.5)
        self.overdraw_factor = self._setting("overdraw_factor", 1.2, 1.0, 10.0)
        try:
            major, minor, patch = (int(p) for p in str(s.get("firmware", "1.4.2")).split("."))
        except ValueError as err:
            raise EmulatorError("settings.firmware must look like '1.4.2'", device=name) from err
        self.set_signals(
            "EVSE_Info",
            SwMajor=major,
            SwMinor=minor,
            SwPatch=patch,
            HwRevision=int(s.get("hw_revision", 2)),
            SerialNumber=int(s.get("serial", 31002517)),
        )
        self.set_signals(
            "EVSE_Config",
            MaxCurrent=self.max_current_a,
            FallbackCurrent=self.fallback_current_a,
            HubTimeout=self.hub_timeout_s,
            OverdrawTime=self.overdraw_s,
        )
        # inputs, from received frames
        self._plugged = False
        self._pilot_short = False
        self._demand = 0.0
        self._car_ignores_pilot = False
        self._hub_limit: float | None = None
        self._hub_seen: float | None = None  # monotonic time of the last fresh hub frame
        self._hub_alive: int | None = None
        self._link_ok = False
        self._limit_changed_at: float | None = None  # monotonic, the last changed hub limit
        self._fallback_masked = False  # (no_fallback_after_limit_change)
        self._hub_limit_stale = False  # (hub_limit_lost_on_replug)
        self._tripped = False  # over-draw interrupt, latched until unplugged
        self._overdraw_since: float | None = None  # monotonic start of an over-draw
        self._wire: PilotWire | None = None  # a wired car, else the simulated one
        # outputs, derived by _evaluate
        self._out: dict[str, Any] = {}
        self._limit = 0.0
        self._evaluate()

    def connect_car(self) -> PilotWire:
        """Plug a wired car's inlet into this wallbox (the bench's ``wiring``)."""
        with self._lock:
            if self._wire is not None:
                raise EmulatorError("a car is already wired to this wallbox", device=self.name)
            self._wire = PilotWire()
            self._evaluate()
            return self._wire

    def disconnect_car(self, wire: PilotWire) -> None:
        """The wired car is gone: the wallbox simulates its own car again."""
        with self._lock:
            if self._wire is wire:
                self._wire = None
                self._evaluate()

    def _stop(self) -> None:
        # A wallbox that loses power drops its pilot (0 V, which a car cannot tell from a
        # short to earth) and its contactor opens: a wired car must not go on seeing the
        # last pilot and live phases of a wallbox that is gone.
        wire = self._wire
        if wire is not None:
            wire.set_evse(EvseSide(self._plugged, NO_PWM, error=True, supply=False))
        super()._stop()

    def _setting(self, key: str, default: float, low: float, high: float) -> float:
        value = float(self.settings.get(key, default))
        if not low <= value <= high:
            raise EmulatorError(
                f"settings.{key} must be within {low:g}..{high:g}, got {value:g}", device=self.name
            )
        return value

    # -- behaviour (worker thread, under _lock) ---------------------------

    def on_message(self, name: str, values: Mapping[str, Any], t: float) -> None:
        if name == "HUB_ChargeLimit":
            alive = int(values["HeartbeatCounter"])
            if alive == self._hub_alive:
                return  # a frozen alive counter: the hub is hung, its frame proves nothing
            self._hub_alive = alive
            limit = float(values["CurrentLimit"])
            now = time.monotonic()
            if self._hub_limit is not None and limit != self._hub_limit:
                self._limit_changed_at = now
                self._hub_limit_stale = False  # a changed limit reaches the session
            self._hub_limit = limit
            self._hub_seen = now
            self._link_ok, self._fallback_masked = True, False
        elif name == "HIL_EVSE_Ctrl":
            plugged = bool(values["PlugState"])
            if not plugged:
                self._tripped = False  # unplugging ends the session and its interrupt
                if self._plugged and self.has("hub_limit_lost_on_replug"):
                    self._hub_limit_stale = True
            self._plugged = plugged
            self._pilot_short = bool(values["PilotFault"])
            self._car_ignores_pilot = bool(values["CarMode"])
            self._demand = float(values["CarCurrentDemand"])
        else:
            return
        self._evaluate()

    def tick(self, dt: float) -> None:
        seen = self._hub_seen
        # a wallbox must have fallen back *by* its declared timeout, so it acts a
        # reaction margin early (like a real EVSE's watchdog), not on the edge
        margin = min(REACTION_S, self.hub_timeout_s / 4)
        late = seen is not None and time.monotonic() - seen >= self.hub_timeout_s - margin
        if self._link_ok and late:
            self._link_ok = False
            changed = self._limit_changed_at
            self._fallback_masked = (
                self.has("no_fallback_after_limit_change")
                and changed is not None
                and seen is not None
                and seen - changed <= CHANGE_WINDOW_S
            )
        self._check_overdraw()
        self._evaluate()

    def _check_overdraw(self) -> None:
        since = self._overdraw_since
        if since is not None and time.monotonic() - since > self.overdraw_s:
            self._tripped = True

    def _track_overdraw(self, out: Mapping[str, Any]) -> None:
        """Note when an over-draw began (exactly, not at the next tick) or ended."""
        allowed, measured = out["AllowedCurrent"], out["MeasuredCurrent"]
        # 1e-6: both are 0.1 A-quantized floats; exactly 20 % more must count
        over = out["PilotState"] == STATE_C and measured >= self.overdraw_factor * allowed - 1e-6
        if not over or self.has("no_overdraw_interrupt"):
            self._overdraw_since = None
        elif self._overdraw_since is None:
            self._overdraw_since = time.monotonic()

    def _evaluate(self) -> None:
        """Derive every EVSE_Status signal from the inputs; send at once on a change."""
        fallback = not self._link_ok and not self.has("no_fallback") and not self._fallback_masked
        if fallback:
            limit = self.fallback_current_a
        elif self._hub_limit is not None and not self._hub_limit_stale:
            limit = self._hub_limit
        else:
            limit = self.max_current_a  # no_fallback and no hub yet: nothing limits it
        limit = min(limit, self.max_current_a)
        pilot_error = self._pilot_short and not self.has("ignores_pilot_error")
        reason = NONE
        if pilot_error:
            reason = PILOT_ERROR
        elif self._tripped:
            reason = OVERDRAW
        elif fallback and limit < MIN_CURRENT_A:
            reason = HUB_LOST
        offering = (
            self._plugged and not pilot_error and not self._tripped and limit >= MIN_CURRENT_A
        )
        duty = self._duty(limit) if offering else NO_PWM
        allowed = self.quantize("EVSE_Status", "AllowedCurrent", duty * AMPS_PER_PERCENT)
        allowed = allowed if offering else 0.0
        wire = self._wire
        car = wire.car if wire is not None else None
        wants = car.requesting if car is not None else self._demand > 0
        charging = offering and wants
        if pilot_error:
            state = STATE_E
        elif not self._plugged:
            state = STATE_A
        else:
            state = STATE_C if charging else STATE_B
        if not charging:
            drawn = 0.0  # the contactor is open
        elif car is not None:
            drawn = car.draw_a  # measured on the phases: whatever the car takes
        elif self._car_ignores_pilot:
            drawn = self._demand
        else:
            drawn = min(self._demand, allowed)
        self._limit = limit
        out = {
            "PilotState": state,
            "ChargingEnabled": int(offering),
            "LinkState": 0 if self._link_ok else 1,
            "FallbackActive": int(fallback),
            "InterruptReason": reason,
            "PilotDuty": duty,
            "AllowedCurrent": allowed,
            "MeasuredCurrent": self.quantize("EVSE_Status", "MeasuredCurrent", drawn),
        }
        self._track_overdraw(out)
        if wire is not None:
            # the short is on the cable whatever the wallbox's firmware makes of it
            wire.set_evse(EvseSide(self._plugged, duty, self._pilot_short, charging))
        if out != self._out:
            self._out = out
            self.set_signals("EVSE_Status", **out)
            self.send_now("EVSE_Status")

    def _duty(self, limit: float) -> float:
        per_percent = WRONG_AMPS_PER_PERCENT if self.has("wrong_duty") else AMPS_PER_PERCENT
        # floor to the DBC's 0.1 %: a rounded-up duty would allow more than the limit
        duty = math.floor(limit / per_percent * 10.0 + 1e-6) / 10.0
        return min(max(duty, MIN_DUTY), MAX_DUTY)

    # -- physics and inspection -----------------------------------------------

    def electrical_state(self, supply_v: float) -> ElectricalState:
        """What an analyzer on the wallbox feed sees: the car's current at ``supply_v``."""
        with self._lock:
            current = float(self._out["MeasuredCurrent"])
        if supply_v <= 0:
            return ElectricalState(0.0, 0.0, 0.0, 1.0)
        # the onboard charger's PFC stage makes the load close to resistive
        return ElectricalState(supply_v, current, supply_v * current, 1.0)

    def state(self) -> dict[str, Any]:
        """A read-only snapshot of the wallbox's internal state."""
        with self._lock:
            out = dict(self._out)
            return {
                "pilot_state": STATES[out["PilotState"]],
                "pilot_duty_percent": out["PilotDuty"],
                "allowed_current_a": out["AllowedCurrent"],
                "measured_current_a": out["MeasuredCurrent"],
                "charging_enabled": bool(out["ChargingEnabled"]),
                "contactor_closed": out["PilotState"] == STATE_C,
                "link_ok": self._link_ok,
                "fallback_active": bool(out["FallbackActive"]),
                "interrupt_reason": REASONS[out["InterruptReason"]],
                "limit_a": self._limit,
                "hub_limit_a": self._hub_limit,
                "plugged": self._plugged,
                "pilot_short": self._pilot_short,
                "car_demand_a": self._demand,
                "car_ignores_pilot": self._car_ignores_pilot,
                "car_wired": self._wire is not None,
                "e2e_rejected": sum(self.e2e_rejected.values()),
                "frames_sent": self.frames_sent,
            }
