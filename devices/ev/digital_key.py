"""The car's digital key module: BLE and UWB anchors, and the driver-door handle sensor.

A phone carrying a paired digital key unlocks the driver door when someone
touches its handle — only if the phone's UWB-ranged distance is within
``key_unlock_range_m`` (1 m). BLE finds the phone and carries the
credential; its signal strength says little about distance (a relay attack
makes a phone far away look near), so the decision rests on UWB
time-of-flight ranging, which a relay cannot shorten.

The radio is physics, not a protocol: phones register themselves with the
module (``attach``; an emulated phone does it at open when the bench
``links`` it to the car) and the module reads each phone's real distance,
whether its BLE link is relayed, and whether it holds a paired key, every
time it ranges (each 10 ms tick). The module reports what it senses in
``KEY_Status`` (100 ms and on change) and asks its host, the BCM, to unlock
the driver door.

Physical input: ``handle_touch`` (1: a hand on the driver-door handle). On a
bench with a real car it needs a real actuator, like any physical input.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from hil.bench.definition import SignalInfo
from hil.errors import EmulatorError

MESSAGE = "KEY_Status"
NONE, UNLOCKED, REJECTED_UNPAIRED, REJECTED_RANGE, REJECTED_NO_PHONE, REJECTED_MOVING = range(6)
RESULTS = {
    NONE: "NONE",
    UNLOCKED: "UNLOCKED",
    REJECTED_UNPAIRED: "REJECTED_UNPAIRED",
    REJECTED_RANGE: "REJECTED_RANGE",
    REJECTED_NO_PHONE: "REJECTED_NO_PHONE",
    REJECTED_MOVING: "REJECTED_MOVING",
}
RSSI_NONE = -128  # KEY_Status.BleRssi when no phone is heard
RANGE_NA = 655.35  # KEY_Status.RangedDistance raw all-ones: no UWB range
SLOW_UNLOCK_S = 1.2

DEFECTS: Mapping[str, str] = {
    "key_accepts_unpaired": "the digital key unlocks for any phone in range, paired or not",
    "key_relay_attack": "the digital key judges distance by BLE signal strength, not by UWB "
    "ranging: a relayed phone far away unlocks",
    "key_slow_unlock": f"the digital key unlocks the driver door {SLOW_UNLOCK_S:g} s after the "
    "handle touch",
}
INPUTS: Mapping[str, str] = {"handle_touch": ""}
INPUT_INFO: Mapping[str, SignalInfo] = {
    "handle_touch": SignalInfo(
        "handle_touch",
        "bool",
        description="a hand on the driver-door handle (true) or not; the digital key "
        "decides at the touch",
    ),
}


@runtime_checkable
class KeyPhone(Protocol):
    """What the anchors sense of a phone (an emulated phone's radio)."""

    name: str

    @property
    def distance_m(self) -> float: ...

    @property
    def relayed(self) -> bool: ...

    @property
    def key_paired(self) -> bool: ...


@dataclass(frozen=True)
class Sighting:
    """One phone as the anchors measured it on one tick."""

    phone: str
    paired: bool
    rssi_dbm: float
    uwb_m: float | None  # None: out of UWB range


class DigitalKey:
    """The key module; its host (the car's emulator) ticks it under its own lock.

    Settings (the car's): ``key_unlock_range_m`` (1.0), ``key_ble_min_dbm``
    (−90: weakest BLE signal it connects to), ``key_ble_ref_dbm`` (−59: a
    phone's signal at 1 m), ``key_uwb_range_m`` (50), ``key_relay_near_m``
    (0.5: how near a relayed phone looks, the attacker's box at the door).
    """

    def __init__(
        self, device: str, settings: Mapping[str, Any], has: Callable[[str], bool]
    ) -> None:
        self.device = device
        self.has = has
        self.unlock_range_m = _positive(settings, "key_unlock_range_m", 1.0, device)
        self.uwb_range_m = _positive(settings, "key_uwb_range_m", 50.0, device)
        self.relay_near_m = _positive(settings, "key_relay_near_m", 0.5, device)
        self.ble_min_dbm = float(settings.get("key_ble_min_dbm", -90.0))
        self.ble_ref_dbm = float(settings.get("key_ble_ref_dbm", -59.0))
        self._lock = threading.Lock()
        self._phones: list[KeyPhone] = []
        self._touch = False
        self._touched = False  # a touch not yet decided
        self._unlock_at: float | None = None
        self._result = NONE
        self._sightings: tuple[Sighting, ...] = ()
        self.decisions: list[tuple[str, str | None]] = []  # (result, phone), for tests

    # ----- phones and the handle (any thread)

    def attach(self, phone: Any) -> None:
        """A phone comes into the car's radio world (emulated phones call this at open)."""
        if not isinstance(phone, KeyPhone):
            raise EmulatorError(
                f"{type(phone).__name__} has no radio the digital key can sense "
                "(distance_m, relayed, key_paired)",
                device=self.device,
            )
        with self._lock:
            if phone not in self._phones:
                self._phones.append(phone)

    def detach(self, phone: Any) -> None:
        with self._lock:
            if phone in self._phones:
                self._phones.remove(phone)

    @property
    def phones(self) -> list[str]:
        with self._lock:
            return [p.name for p in self._phones]

    def set_input(self, name: str, value: float) -> None:
        touch = value >= 0.5
        with self._lock:
            if touch and not self._touch:
                self._touched = True  # decided on the next tick
            self._touch = touch

    # ----- the host's tick (its CAN thread)

    def step(self, now: float, *, moving: bool = False) -> bool:
        """Range every phone, decide a pending touch; True when the driver door unlocks now.

        ``moving``: the car is faster than its unlock limit; nothing unlocks then
        (a touch is refused, and so is an unlock still pending from before).
        """
        with self._lock:
            phones = list(self._phones)
            touched, self._touched = self._touched, False
        self._sightings = tuple(self._sense(p) for p in phones)
        if moving and (touched or self._unlock_at is not None):
            self._unlock_at, self._result = None, REJECTED_MOVING
            self.decisions.append((RESULTS[REJECTED_MOVING], None))
            return False
        if touched and self._unlock_at is None:
            result, phone = self._decide()
            self.decisions.append((RESULTS[result], phone))
            if result == UNLOCKED:
                delay = SLOW_UNLOCK_S if self.has("key_slow_unlock") else 0.0
                self._unlock_at = now + delay
            else:
                self._result = result
        if self._unlock_at is not None and now >= self._unlock_at:
            self._unlock_at = None
            self._result = UNLOCKED
            return True
        return False

    def signals(self) -> dict[str, Any]:
        """What ``KEY_Status`` carries now."""
        heard = [s for s in self._sightings if s.rssi_dbm >= self.ble_min_dbm]
        strongest = max(heard, key=lambda s: s.rssi_dbm, default=None)
        ranged = [s for s in heard if s.uwb_m is not None]
        nearest = min(ranged, key=lambda s: s.uwb_m or 0.0, default=strongest)
        with self._lock:
            touch = self._touch
        return {
            "PhoneDetected": int(bool(heard)),
            "Paired": int(nearest is not None and nearest.paired),
            "HandleTouch": int(touch),
            "LastResult": self._result,
            "BleRssi": RSSI_NONE if strongest is None else max(-127, round(strongest.rssi_dbm)),
            "RangedDistance": RANGE_NA
            if nearest is None or nearest.uwb_m is None
            else min(round(nearest.uwb_m, 2), RANGE_NA - 0.01),
        }

    def state(self) -> dict[str, Any]:
        return {
            "phones": self.phones,
            "result": RESULTS[self._result],
            "pending_unlock": self._unlock_at is not None,
            "sightings": [s.__dict__ for s in self._sightings],
        }

    # ----- the physics and the rule

    def _rssi(self, distance_m: float) -> float:
        # free-space path loss (exponent 2) from the 1 m reference level
        return self.ble_ref_dbm - 20.0 * math.log10(max(distance_m, 0.1))

    def _sense(self, phone: KeyPhone) -> Sighting:
        real = phone.distance_m
        # a relay forwards the BLE packets from a box at the door; UWB time of
        # flight still measures the real path, which a relay can only lengthen
        ble_m = self.relay_near_m if phone.relayed else real
        uwb = real if real <= self.uwb_range_m else None
        return Sighting(phone.name, phone.key_paired, self._rssi(ble_m), uwb)

    def _distance(self, s: Sighting) -> float | None:
        if self.has("key_relay_attack"):
            # the defect: distance estimated from signal strength
            return float(10 ** ((self.ble_ref_dbm - s.rssi_dbm) / 20.0))
        return s.uwb_m

    def _decide(self) -> tuple[int, str | None]:
        heard = [s for s in self._sightings if s.rssi_dbm >= self.ble_min_dbm]
        if not heard:
            return REJECTED_NO_PHONE, None
        trusted = [s for s in heard if s.paired or self.has("key_accepts_unpaired")]
        if not trusted:
            return REJECTED_UNPAIRED, heard[0].phone
        for s in trusted:
            distance = self._distance(s)
            if distance is not None and distance <= self.unlock_range_m:
                return UNLOCKED, s.phone
        return REJECTED_RANGE, trusted[0].phone


def _positive(settings: Mapping[str, Any], key: str, default: float, device: str) -> float:
    value = settings.get(key, default)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise EmulatorError(f"settings.{key} must be a number > 0, got {value!r}", device=device)
    return float(value)
