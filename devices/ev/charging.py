"""The car's onboard AC charger (OBC) and charge inlet: it follows the control pilot.

IEC 61851-1: between 10 % and 85 % PWM duty the pilot allows duty × 0.6 A;
below 6 A the car must pause. The inlet reads the pilot off the cable the
bench wired to a wallbox (``devices/charger/pilot.py``); an unwired car is
never plugged in.

Per tick the OBC decides whether it may charge (plugged, a pilot of ≥ 6 A, no
pilot error, the VCU's charge enable, no battery fault), what to ask for
(min(``obc_max_a``, the pilot, the BMS's power limit)), closes S2 (state C)
once the battery's contactors are closed, and draws its request while the
wallbox's contactor is closed. A pilot shorted to earth (state E) ends the
session at once: no current, the contactors open, and no new session starts
while the short lasts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devices.charger.pilot import CarSide, EvseSide, PilotWire

NOT_CONNECTED, CONNECTED, CHARGING, PAUSED, FAULT = 0, 1, 2, 3, 4
CHARGE_STATES = {
    NOT_CONNECTED: "NOT_CONNECTED",
    CONNECTED: "CONNECTED",
    CHARGING: "CHARGING",
    PAUSED: "PAUSED",
    FAULT: "FAULT",
}
PILOT_NONE, PILOT_PWM, PILOT_NO_PWM, PILOT_ERROR = 0, 1, 2, 3
PILOTS = {PILOT_NONE: "NONE", PILOT_PWM: "PWM", PILOT_NO_PWM: "NO_PWM", PILOT_ERROR: "ERROR"}

MIN_CHARGE_A = 6.0  # IEC 61851-1: below this the car pauses
OVERDRAW_DEFECT_PERCENT = 20.0

DEFECTS: Mapping[str, str] = {
    "ignores_pilot_drop": "keeps drawing the highest current the pilot allowed since plug-in",
    "draws_after_pilot_error": "does not notice a pilot shorted to earth: keeps asking for "
    "current with its contactors closed",
    "overdraw": "the onboard charger draws 20 % more than the pilot allows",
}
INPUTS: Mapping[str, str] = {"obc_overdraw_percent": "%"}


class OnboardCharger:
    """The OBC's state (called under the emulator's lock)."""

    def __init__(self, max_a: float, defects: frozenset[str], wire: PilotWire | None) -> None:
        self.max_a = max_a
        self.defects = defects
        self.wire = wire
        self.overdraw_percent = 0.0  # fault injection: a miscalibrated current control
        self.state = NOT_CONNECTED
        self.pilot_status = PILOT_NONE
        self.pilot_a = 0.0  # what the inlet reads off the pilot
        self.request_a = 0.0  # what the car asks for (BMS_Safety.ChargeRequest)
        self.line_a = 0.0  # what flows through the inlet
        self._session_max_a = 0.0  # highest pilot since plug-in (ignores_pilot_drop)
        self._last_good: EvseSide | None = None  # the pilot before an unnoticed short

    def set_input(self, name: str, value: float) -> None:
        self.overdraw_percent = max(0.0, float(value))

    def _read_pilot(self) -> EvseSide:
        evse = self.wire.evse if self.wire is not None else EvseSide()
        if evse.error and "draws_after_pilot_error" in self.defects and evse.plugged:
            return self._last_good or EvseSide(plugged=True)
        self._last_good = evse
        return evse

    def wants_hv(self, *, enabled: bool, blocked: bool) -> bool:
        """Whether a charging session needs the contactors closed now."""
        evse = self._read_pilot()
        return self._may_charge(evse, enabled, blocked)

    def _may_charge(self, evse: EvseSide, enabled: bool, blocked: bool) -> bool:
        return (
            evse.plugged
            and not evse.error
            and enabled
            and not blocked
            and self._followed(evse) >= MIN_CHARGE_A
        )

    def _followed(self, evse: EvseSide) -> float:
        """The pilot current the OBC's control acts on."""
        allowed = evse.allowed_a
        if "ignores_pilot_drop" in self.defects:
            return max(allowed, self._session_max_a)
        return allowed

    def step(self, *, enabled: bool, blocked: bool, power_limit: int, closed: bool) -> None:
        """One tick: read the pilot, decide the request, draw what the supply gives."""
        evse = self._read_pilot()
        if not evse.plugged:
            self._session_max_a = 0.0
            self.pilot_status = PILOT_NONE
        elif evse.error:
            self.pilot_status = PILOT_ERROR
        else:
            self.pilot_status = PILOT_PWM if evse.allowed_a > 0 else PILOT_NO_PWM
        self.pilot_a = evse.allowed_a
        may_charge = self._may_charge(evse, enabled, blocked)
        request = 0.0
        if may_charge:
            request = min(self.max_a * power_limit / 100.0, self._followed(evse))
            if request < MIN_CHARGE_A:
                request = 0.0
        self._session_max_a = max(self._session_max_a, evse.allowed_a)
        self.request_a = request
        requesting = request > 0 and closed
        overdraw = self.overdraw_percent
        if "overdraw" in self.defects:
            overdraw = max(overdraw, OVERDRAW_DEFECT_PERCENT)
        draw = request * (1.0 + overdraw / 100.0) if requesting else 0.0
        if self.wire is not None:
            self.wire.set_car(CarSide(requesting, draw))
            self.line_a = self.wire.line_current_a
        else:
            self.line_a = 0.0
        if not evse.plugged:
            self.state = NOT_CONNECTED
        elif evse.error or blocked or not enabled:
            self.state = FAULT
        elif requesting:
            self.state = CHARGING
        elif self._followed(evse) < MIN_CHARGE_A:
            self.state = PAUSED
        else:
            self.state = CONNECTED

    def signals(self) -> dict[str, Any]:
        return {
            "ChargeState": self.state,
            "PilotStatus": self.pilot_status,
            "ChargeLineCurrent": round(min(self.line_a, 80.0), 1),
            "PilotCurrent": round(min(self.pilot_a, 80.0), 1),
        }

    def state_snapshot(self) -> dict[str, Any]:
        return {
            "charge_state": CHARGE_STATES[self.state],
            "pilot": PILOTS[self.pilot_status],
            "pilot_a": self.pilot_a,
            "request_a": self.request_a,
            "line_a": self.line_a,
            "overdraw_percent": self.overdraw_percent,
            "wired": self.wire is not None,
        }
