"""A fault on the UART wire from the Wi-Fi module to the appliance MCU (scenario A4).

Every MIoT appliance has the bench input ``serial_link``: ``ok``, ``silent``
(nothing the module sends reaches the MCU: a cut RX line, a hung module) or
``garbled`` (every byte arrives corrupted: noise, a wrong baud rate). It
acts on the module → MCU direction only, so the bench still hears the MCU
and judges its reaction (safe state, error report) on capture timestamps
while the fault lasts. The module keeps answering as usual; its transcript
shows those answers, and the plan's stimulus record says when the wire
failed.

The fault sits where the wire does: between the emulator's pty and the MCU's
line parser. Nothing above it knows the link is faulty — the MCU has to
notice, exactly as a real one behind a real broken wire. On a lab bench the
input needs an actuator (a relay or noise injector in the RX line, or an
emulator in another process), like every physical input.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from hil.bench.definition import SignalInfo
from hil.errors import EmulatorError

WIRE_INPUT = "serial_link"
OK, SILENT, GARBLED = 0, 1, 2
WIRE_STATES: Mapping[str, int] = {"ok": OK, "silent": SILENT, "garbled": GARBLED}
WIRE_INPUT_INFO = SignalInfo(
    WIRE_INPUT,
    "enum",
    choices=WIRE_STATES,
    description="the UART wire from the module to the MCU: ok, silent (nothing arrives) or "
    "garbled (every byte corrupted); the MCU's own transmissions still reach the bench",
)

_TERMINATOR = 0x0D
_NOISE = 0x20  # flips case and turns separators into control bytes: no line survives


class WireFault:
    """The state of one wire; ``carry`` is what arrives at the MCU's receiver."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._lock = threading.Lock()
        self._state = OK
        self.since: float | None = None  # when the current fault began (monotonic)

    @property
    def state(self) -> int:
        return self._state

    def set(self, value: float) -> None:
        """Apply the bench input (a wire state's number, as ``SignalInfo`` coerced it)."""
        state = int(value)
        if state != value or state not in WIRE_STATES.values():
            names = ", ".join(f"{n} ({v})" for n, v in WIRE_STATES.items())
            raise EmulatorError(
                f"{WIRE_INPUT} must be one of {names}, got {value!r}", device=self.device
            )
        with self._lock:
            if state != self._state:
                self._state = state
                self.since = None if state == OK else time.monotonic()

    def carry(self, data: bytes) -> bytes:
        """The bytes that reach the MCU when the module sent ``data``."""
        state = self._state
        if state == OK:
            return data
        if state == SILENT:
            return b""
        # terminators survive, so the MCU sees as many (undecodable) lines as were sent
        return bytes(b if b == _TERMINATOR else b ^ _NOISE for b in data)
