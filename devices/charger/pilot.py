"""The charging cable between an emulated wallbox and an emulated car: physics, not CAN.

IEC 61851-1 puts two things on the cable besides the phases: the **control
pilot**, a ±12 V PWM the wallbox drives and the car loads (9 V: connected,
state B; 6 V: the car closed S2 and asks for power, state C; 0 V: pilot
shorted to earth, state E), and the **current** the car's onboard charger
draws once the wallbox's contactor is closed. A bench wires a car's inlet to
a wallbox (``ev: wiring: {inlet: charger}``); both emulators then share one
``PilotWire`` instead of the wallbox simulating a car of its own.

Each side writes only its own half and reads the other's; every access holds
the wire's lock alone (a leaf lock: never taken while calling out), so the two
emulators' worker threads cannot deadlock on it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

AMPS_PER_PERCENT = 0.6  # IEC 61851-1, 10 %..85 % duty
MIN_DUTY, MAX_DUTY, NO_PWM = 10.0, 85.0, 100.0


@dataclass(frozen=True)
class EvseSide:
    """What the wallbox puts on the cable."""

    plugged: bool = False  # the cable is in the car's inlet
    duty: float = NO_PWM  # PWM duty, %; 100 = no PWM (+9 V DC)
    error: bool = False  # pilot shorted to earth (state E): no pilot at all
    supply: bool = False  # the wallbox's contactor is closed: the phases are live

    @property
    def allowed_a(self) -> float:
        """The current the pilot allows (duty × 0.6 A in the 10–85 % band, else 0)."""
        if self.error or not self.plugged or not MIN_DUTY <= self.duty <= MAX_DUTY:
            return 0.0
        return self.duty * AMPS_PER_PERCENT


@dataclass(frozen=True)
class CarSide:
    """What the car does on the cable."""

    requesting: bool = False  # S2 closed: state C, the car asks for power
    draw_a: float = 0.0  # what the onboard charger draws while the supply is live


class PilotWire:
    """One charging cable: the wallbox's half and the car's half."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._evse = EvseSide()
        self._car = CarSide()

    def set_evse(self, side: EvseSide) -> None:
        with self._lock:
            self._evse = side

    def set_car(self, side: CarSide) -> None:
        with self._lock:
            self._car = side

    @property
    def evse(self) -> EvseSide:
        with self._lock:
            return self._evse

    @property
    def car(self) -> CarSide:
        with self._lock:
            return self._car

    @property
    def line_current_a(self) -> float:
        """What flows: the car's draw while the wallbox's contactor is closed, else 0."""
        with self._lock:
            return self._car.draw_a if self._evse.supply and self._evse.plugged else 0.0


@runtime_checkable
class Socket(Protocol):
    """A wallbox a car's inlet can be wired to (the charger emulator)."""

    name: str

    def connect_car(self) -> PilotWire: ...

    def disconnect_car(self, wire: PilotWire) -> None: ...
