"""The hub's home automation rules: what it concludes and what it asks appliances to do.

Pure logic, no I/O: the emulator feeds it the car's position and gear (from
the car's CAN), the appliances' reports and the phones' commands (from the
hub API), and executes the ``Call``s and ``Notice``s it returns.

Appliances are known by the kind word of their MIoT model (``chunmi.oven.v2``
→ ``oven``), as a real hub knows a device by its model, and addressed by
MIoT property and action names (``light.on``, ``coffee-maker.brew``).

Rules (the hub's README has the table):

* **geofence**: the car is home when ``NAV_Status.HomeDistance`` ≤
  ``geofence_m``; the first observation sets the state, later changes are
  arrival and leaving edges;
* **occupancy** = the car is home or a phone says someone is; a *change*
  (never the first observation) is written to every appliance that has
  ``home.occupancy`` (oven, robot vacuum), so a plan that writes occupancy
  itself is not overridden;
* **welcome home**: after an arrival, once the car is in P inside the
  geofence: lights on, air conditioner cooling to ``welcome_ac_c``;
* **leaving**: the car leaves with the oven on → the phones are told, and the
  oven is switched off when ``leaving_oven_off`` (the default);
* **good morning** (phone command): lights on, the coffee maker brewing and,
  only if someone is home, the oven preheating (occupancy asserted first, so
  the oven's own remote-preheat policy agrees);
* **vacuum**: never sweeping while someone is home: on arrival, or when a
  vacuum reports sweeping with someone home, pause then dock;
* **door alarm**: a fridge ``door-alarm`` event is forwarded to the phones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hil import hublink

GEAR_P = 0
SCENES = ("welcome_home", "good_morning")
AC_MODES = {"cool": 0, "heat": 1, "fan": 2, "auto": 3, "dry": 4}
VACUUM_SWEEPING, VACUUM_PAUSED = 1, 2
OCCUPANCY = "home.occupancy"


def kind_of(model: str) -> str:
    """``vendor.kind.vN`` → ``kind`` (the MIoT model's device-kind word)."""
    parts = model.split(".")
    return parts[1] if len(parts) == 3 else model


@dataclass
class Appliance:
    device: str
    model: str
    props: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return kind_of(self.model)


@dataclass(frozen=True)
class Call:
    """Something the hub asks one appliance to do, and why (for the record and scenes)."""

    device: str
    call: dict[str, Any]
    purpose: str


@dataclass(frozen=True)
class Notice:
    category: str
    device: str
    text: str


Outcome = list[Call | Notice]


class Home:
    """What the hub knows about the home, and its rules."""

    def __init__(self, settings: Mapping[str, Any], defects: frozenset[str]) -> None:
        self.defects = defects
        self.geofence_m = float(settings.get("geofence_m", 100.0))
        self.welcome_ac_c = float(settings.get("welcome_ac_c", 24.0))
        self.welcome_ac_mode = AC_MODES[str(settings.get("welcome_ac_mode", "cool"))]
        self.leaving_oven_off = bool(settings.get("leaving_oven_off", True))
        self.morning_recipe = int(settings.get("morning_recipe", 1))
        self.morning_oven_c = int(settings.get("morning_oven_c", 180))
        self.appliances: dict[str, Appliance] = {}
        self.car_home: bool | None = None
        self.gear: int | None = None
        self.phone_home: bool | None = None
        self.occupied: bool | None = None
        self.scene = "none"
        self.scene_count = 0
        self._welcome_armed = False

    # --- inputs ----------------------------------------------------------------------

    def connected(self, device: str, model: str) -> None:
        self.appliances.setdefault(device, Appliance(device, model)).model = model

    def gone(self, device: str) -> None:
        self.appliances.pop(device, None)

    def car(self, distance_m: float | None, gear: int | None) -> Outcome:
        """The car's distance from home (``None``: not available) and gear."""
        out: Outcome = []
        if gear is not None:
            self.gear = gear
        if distance_m is not None:
            home = distance_m <= self.geofence_m
            before, self.car_home = self.car_home, home
            if before is not None and home != before:
                out += self._arrived() if home else self._left()
        out += self._occupancy()
        if self._welcome_armed and self.car_home and self.gear == GEAR_P:
            self._welcome_armed = False
            out += self._welcome()
        return out

    def phone(self, home: bool) -> Outcome:
        self.phone_home = home
        return self._occupancy()

    def report(self, device: str, body: Mapping[str, Any]) -> Outcome:
        appliance = self.appliances.get(device)
        if appliance is None:
            return []
        name = str(body["name"])
        if body["kind"] == "property":
            appliance.props[name] = body.get("value")
            if (
                appliance.kind == "vacuum"
                and name == "vacuum.status"
                and body.get("value") == VACUUM_SWEEPING
                and self.occupied
            ):
                return self._stop_vacuum(appliance, "someone is home")
            return []
        if name == "fridge.door-alarm" and "drops_door_alarm" not in self.defects:
            return [Notice("door_alarm", device, f"{device}: the door has been open too long")]
        return []

    def run_scene(self, scene: str) -> Outcome:
        """A scene by name (a phone command); ``ValueError`` for an unknown one."""
        if scene == "good_morning":
            return self._good_morning()
        if scene == "welcome_home":
            return self._welcome()
        raise ValueError(f"unknown scene {scene!r}; expected one of {list(SCENES)}")

    # --- derived -------------------------------------------------------------------------

    def of_kind(self, kind: str) -> list[Appliance]:
        return [a for a in self.appliances.values() if a.kind == kind]

    def _occupancy(self) -> Outcome:
        known = [v for v in (self.car_home, self.phone_home) if v is not None]
        occupied = any(known) if known else None
        before, self.occupied = self.occupied, occupied
        if before is None or occupied is None or occupied == before:
            return []
        # a change, never the first observation: plans that write it stay in charge
        out: Outcome = [
            Call(a.device, hublink.call_set(OCCUPANCY, occupied), "occupancy")
            for a in self.appliances.values()
            if a.kind in ("oven", "vacuum")
        ]
        if occupied:
            for vacuum in self.of_kind("vacuum"):
                if vacuum.props.get("vacuum.status") in (VACUUM_SWEEPING, VACUUM_PAUSED):
                    out += self._stop_vacuum(vacuum, "someone arrived")
        return out

    # --- rules ---------------------------------------------------------------------------------

    def _arrived(self) -> Outcome:
        self._welcome_armed = "no_welcome_scene" not in self.defects
        return []

    def _left(self) -> Outcome:
        self._welcome_armed = False
        self._ran("leaving")
        out: Outcome = []
        for oven in self.of_kind("oven"):
            if oven.props.get("oven.on") is not True and oven.props.get("oven.heater") is not True:
                continue
            if "no_leaving_notice" not in self.defects:
                out.append(
                    Notice(
                        "left_home_oven_on", oven.device, f"{oven.device} is on and nobody is home"
                    )
                )
            if self.leaving_oven_off:
                out.append(Call(oven.device, hublink.call_set("oven.on", False), "leaving"))
        return out

    def _welcome(self) -> Outcome:
        self._ran("welcome_home")
        out: Outcome = [
            Call(a.device, hublink.call_set("light.on", True), "welcome_home")
            for a in self.of_kind("light")
        ]
        for ac in self.of_kind("aircondition"):
            out += [
                Call(
                    ac.device,
                    hublink.call_set("air-conditioner.mode", self.welcome_ac_mode),
                    "welcome_home",
                ),
                Call(
                    ac.device,
                    hublink.call_set("air-conditioner.target-temperature", self.welcome_ac_c),
                    "welcome_home",
                ),
                Call(ac.device, hublink.call_set("air-conditioner.on", True), "welcome_home"),
            ]
        return out

    def _good_morning(self) -> Outcome:
        self._ran("good_morning")
        out: Outcome = [
            Call(a.device, hublink.call_set("light.on", True), "good_morning")
            for a in self.of_kind("light")
        ]
        if "morning_scene_incomplete" not in self.defects:
            out += [
                Call(
                    a.device,
                    hublink.call_action("coffee-maker.brew", {"recipe": self.morning_recipe}),
                    "good_morning",
                )
                for a in self.of_kind("coffee")
            ]
        if self.occupied:  # A2: a remote preheat only with someone at home
            for oven in self.of_kind("oven"):
                out += [
                    Call(oven.device, hublink.call_set(OCCUPANCY, True), "good_morning"),
                    Call(
                        oven.device,
                        hublink.call_action(
                            "oven.preheat", {"target-temperature": self.morning_oven_c}
                        ),
                        "good_morning",
                    ),
                ]
        return out

    def _stop_vacuum(self, vacuum: Appliance, why: str) -> Outcome:
        out: Outcome = [
            Call(vacuum.device, hublink.call_action("vacuum.pause", {}), "vacuum"),
            Notice("vacuum_stopped", vacuum.device, f"{vacuum.device} stopped: {why}"),
        ]
        if "vacuum_not_docked" not in self.defects:
            out.insert(1, Call(vacuum.device, hublink.call_action("vacuum.dock", {}), "vacuum"))
        vacuum.props["vacuum.status"] = VACUUM_PAUSED  # until it reports again: no repeat
        return out

    def _ran(self, scene: str) -> None:
        self.scene = scene
        self.scene_count += 1
