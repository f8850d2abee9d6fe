"""The AC wallbox as the bench sees it: the generic CAN-node driver plus charging words.

Also the one place that says what the charger's CAN database is and which of
its frames are E2E-protected; the emulator imports both from here, so the two
sides can never disagree.

The bench plays two nodes: ``HIL`` (plug, pilot fault, the emulated car's
demand) and ``HUB``. On a bench with a real home hub, plans still send
``HUB_ChargeLimit`` frames as a stand-in for it.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hil.bench.definition import DeviceDefinition
from hil.cannode.definition import can_definition
from hil.cannode.driver import CanNodeDriver, Database
from hil.cannode.e2e import E2EProfile
from hil.errors import ConfigError, DeviceError, did_you_mean
from hil.lifecycle import start_thread
from hil.transports.can import CanTransport, load_dbc

DBC_PATH = Path(__file__).with_name("charger.dbc")
TYPE_NAME = "charger"
BENCH_NODES = ("HUB", "HIL")
EVSE_NODES = ("EVSE",)
# message → (counter signal, checksum signal): the safety-relevant frames
E2E_SPEC: Mapping[str, tuple[str, str]] = {"EVSE_Status": ("Counter", "Checksum")}
STATUS = "EVSE_Status"
LIMIT = "HUB_ChargeLimit"
CTRL = "HIL_EVSE_Ctrl"
HEARTBEAT = "HeartbeatCounter"
HEARTBEAT_MODULO = 256


@functools.cache
def load_database() -> Database:
    return load_dbc(DBC_PATH)


@functools.cache
def e2e_profile() -> E2EProfile:
    return E2EProfile(load_database(), E2E_SPEC)


def charger_definition(settings: Mapping[str, Any]) -> DeviceDefinition:
    """The charger's signals and stimuli, from its DBC; opens nothing."""
    definition = can_definition(
        load_database(),
        type_name=TYPE_NAME,
        bench_nodes=BENCH_NODES,
        e2e=e2e_profile(),
        files=(DBC_PATH,),
        capabilities=frozenset(
            {"can", "ac_charging", "control_pilot", "hub_link", "e2e", "overdraw_protection"}
        ),
    )
    # a real wallbox may also meter energy or speak to a cloud backend
    return dataclasses.replace(
        definition, known_capabilities=frozenset({"energy_meter", "ocpp", "three_phase"})
    )


class ChargerDriver(CanNodeDriver):
    """Set the hub's limit, plug the emulated car, watch the wallbox's status.

    >>> charger.plug(True)                                      # doctest: +SKIP
    >>> charger.set_limit(16)                                   # doctest: +SKIP
    >>> charger.wait_for("EVSE_Status.AllowedCurrent", 16, 0.5)  # doctest: +SKIP

    ``HUB_ChargeLimit.HeartbeatCounter`` is filled with the next alive-counter
    value whenever a caller leaves it out, so every frame refreshes the link.
    """

    PULSE = "EVSE_Status"

    def __init__(
        self, name: str, transport: CanTransport, definition: DeviceDefinition | None = None
    ) -> None:
        super().__init__(
            name,
            transport,
            load_database(),
            definition or charger_definition({}),
            e2e=e2e_profile(),
            sticky=(LIMIT, CTRL),
        )
        self._send_lock = threading.Lock()
        self._alive = -1
        self._beat_stop = threading.Event()
        self._beat_thread: threading.Thread | None = None

    def identity(self) -> dict[str, str]:
        """Model, serial, firmware and hardware from the EVSE_Info frame (bounded wait)."""
        v = {
            s: int(self.read(f"EVSE_Info.{s}").value)
            for s in ("SwMajor", "SwMinor", "SwPatch", "HwRevision", "SerialNumber")
        }
        return {
            "model": "AC wallbox",
            "serial": f"{v['SerialNumber']:010d}",
            "firmware": f"{v['SwMajor']}.{v['SwMinor']}.{v['SwPatch']}",
            "hardware": f"rev {v['HwRevision']}",
        }

    # -- reading ----------------------------------------------------------

    def label(self, signal: str, value: Any) -> str:
        return self.definition.signals[signal].label(value)

    def _status(self, signal: str) -> Any:
        return self.read(f"{STATUS}.{signal}").value

    def _status_label(self, signal: str) -> str:
        return self.label(f"{STATUS}.{signal}", self._status(signal))

    @property
    def allowed_current(self) -> float:
        """Latest current the pilot allows, A (0 when paused or in error)."""
        return float(self._status("AllowedCurrent"))

    @property
    def measured_current(self) -> float:
        """Latest current the car draws, A."""
        return float(self._status("MeasuredCurrent"))

    @property
    def pilot_duty(self) -> float:
        """Latest PWM duty, % (100 = no PWM)."""
        return float(self._status("PilotDuty"))

    @property
    def pilot_state(self) -> str:
        """Latest IEC 61851-1 pilot state letter (A, B, C, E, F)."""
        return self._status_label("PilotState")

    @property
    def charging_enabled(self) -> bool:
        return bool(self._status("ChargingEnabled"))

    @property
    def link_state(self) -> str:
        """OK or LOST (the hub heartbeat)."""
        return self._status_label("LinkState")

    @property
    def fallback_active(self) -> bool:
        return bool(self._status("FallbackActive"))

    @property
    def interrupt_reason(self) -> str:
        """NONE, OVERDRAW, PILOT_ERROR or HUB_LOST."""
        return self._status_label("InterruptReason")

    # -- stimulating --------------------------------------------------------

    def send_message(
        self,
        name: str,
        values: Mapping[str, Any],
        *,
        counter: int | None = None,
        checksum: int | None = None,
        corrupt: bool = False,
    ) -> float:
        """As the generic driver; a hub frame without a heartbeat gets the next one."""
        with self._send_lock:  # the heartbeat thread sends too
            if name == LIMIT and HEARTBEAT not in values:
                self._alive = (self._alive + 1) % HEARTBEAT_MODULO
                values = {**values, HEARTBEAT: self._alive}
            elif name == LIMIT:
                self._alive = int(values[HEARTBEAT]) % HEARTBEAT_MODULO
            return super().send_message(
                name, values, counter=counter, checksum=checksum, corrupt=corrupt
            )

    def _code(self, field: str, name: str) -> Any:
        choices = self.definition.stimuli[CTRL].fields[field].choices
        if name not in choices:
            raise ConfigError(
                f"{self.name}: {CTRL}.{field} has no value {name!r}; "
                + did_you_mean(name, choices),
                device=self.name,
            )
        return choices[name]

    def set_limit(self, amps: float) -> float:
        """The hub sets the charge current limit (< 6 A pauses); capture time."""
        return self.stimulate(LIMIT, {"CurrentLimit": amps})

    def heartbeat(self) -> float:
        """The hub's alive frame: the last limit again, with the next counter."""
        return self.stimulate(LIMIT, {})

    def plug(self, plugged: bool = True) -> float:
        return self.stimulate(CTRL, {"PlugState": self._code("PlugState", _plug(plugged))})

    def pilot_fault(self, on: bool = True) -> float:
        """Short the control pilot to earth (``on``) or remove the short."""
        fault = "SHORT_TO_EARTH" if on else "NONE"
        return self.stimulate(CTRL, {"PilotFault": self._code("PilotFault", fault)})

    def car_demand(self, amps: float, *, ignore_pilot: bool = False) -> float:
        """What the emulated car wants to draw; ``ignore_pilot`` makes it over-draw."""
        mode = "IGNORES_PILOT" if ignore_pilot else "FOLLOWS_PILOT"
        return self.stimulate(
            CTRL, {"CarCurrentDemand": amps, "CarMode": self._code("CarMode", mode)}
        )

    def start_heartbeat(self, period_s: float = 1.0) -> None:
        """Keep the hub link alive from a background thread until stopped or closed."""
        if period_s <= 0:
            raise ConfigError(f"{self.name}: heartbeat period must be > 0", device=self.name)
        self.stop_heartbeat()
        self._beat_stop.clear()

        def beat() -> None:
            while not self._beat_stop.wait(period_s):
                try:
                    self.heartbeat()
                except DeviceError:  # the transport went away: the link is gone anyway
                    return

        self._beat_thread = start_thread(beat, f"hub-{self.name}")

    def stop_heartbeat(self) -> None:
        """Stop the background heartbeat (the link will be LOST after the timeout)."""
        self._beat_stop.set()
        thread, self._beat_thread = self._beat_thread, None
        if thread is not None:
            thread.join(timeout=2.0)

    # -- waiting --------------------------------------------------------------

    def close(self) -> None:
        self.stop_heartbeat()
        super().close()


def _plug(plugged: bool) -> str:
    return "PLUGGED" if plugged else "UNPLUGGED"
