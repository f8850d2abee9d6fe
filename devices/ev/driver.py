"""The EV as the bench sees it: the generic CAN-node driver plus car words.

Also the one place that says what the EV's CAN database is and which of its
frames are E2E-protected; the emulator imports both from here, so the two
sides can never disagree.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devices.ev import digital_key
from devices.ev.diagnostics import DTC_DESCRIPTIONS, DTCS
from hil.bench.definition import DeviceDefinition, SignalInfo, StimulusInfo
from hil.bench.driver import Sample
from hil.cannode.definition import can_definition
from hil.cannode.driver import CanNodeDriver, Database
from hil.cannode.e2e import E2EProfile
from hil.errors import ConfigError, DeviceTimeout, ProtocolError, did_you_mean
from hil.transports.can import CanTransport, load_dbc
from hil.uds import plan as uds_plan
from hil.uds import protocol as uds
from hil.uds.client import UdsClient

DBC_PATH = Path(__file__).with_name("ev.dbc")
TYPE_NAME = "ev"
BENCH_NODES = ("HIL",)
CAR_NODES = ("BMS", "VCU", "BCM", "TCU", "OBC")
# message → (counter signal, checksum signal): the safety-relevant frames
E2E_SPEC: Mapping[str, tuple[str, str]] = {
    "DRIVE_Status": ("Counter", "Checksum"),
    "BODY_Status": ("Counter", "Checksum"),
    "BODY_LockCmd": ("Counter", "Checksum"),
    "BMS_Safety": ("Counter", "Checksum"),
}
DOORS = ("FL", "FR", "RL", "RR")
VEHICLE_SIM = "HIL_VehicleSim"
# physical quantities a bench imposes on the car (its actuators; the emulator's INPUTS)
INPUTS: Mapping[str, SignalInfo] = {
    s.name: s
    for s in (
        SignalInfo(
            "isolation_kohm",
            unit="kOhm",
            minimum=0,
            maximum=65535,
            description="HV isolation resistance to chassis (an insulation fault box); 2500",
        ),
        SignalInfo(
            "cell_temp_max_c",
            unit="degC",
            minimum=-40,
            maximum=87.5,
            description="temperature of the hottest cell (a heater / sensor simulator); 25",
        ),
        SignalInfo(
            "cell_voltage_max_v",
            unit="V",
            minimum=0,
            maximum=8.191,
            description="voltage of the highest cell (a cell simulator); 4.0",
        ),
        SignalInfo(
            "obc_overdraw_percent",
            unit="%",
            minimum=0,
            maximum=100,
            description="fault injection: the onboard charger draws this much more than "
            "it asks for (over-draw tests of the wallbox); 0",
        ),
        SignalInfo(
            "bms_silent",
            minimum=0,
            maximum=1,
            description="1: the BMS is cut off the bus (its frames stop); 0",
        ),
    )
}
INPUTS = {**INPUTS, **digital_key.INPUT_INFO}  # the driver-door handle sensor
HOME_DISTANCE_NA = 65535  # NAV_Status.HomeDistance raw all-ones: position not available


def home_distance(settings: Mapping[str, Any], device: str) -> int:
    """The car's distance from home (m) before the rig sets one: ``home_distance_m`` (0)."""
    value = settings.get("home_distance_m", 0)
    if not isinstance(value, int | float) or not 0 <= value <= HOME_DISTANCE_NA:
        raise ConfigError(
            f"{device}: settings.home_distance_m must be 0..65535 m, got {value!r}", device=device
        )
    return round(value)


def uds_ids(settings: Mapping[str, Any]) -> tuple[int, int]:
    """(request id, response id) of the car's diagnostics, the same for both sides."""
    return (
        uds.can_id(settings, "uds_request_id", uds.REQUEST_ID),
        uds.can_id(settings, "uds_response_id", uds.RESPONSE_ID),
    )


@functools.cache
def load_database() -> Database:
    return load_dbc(DBC_PATH)


@functools.cache
def e2e_profile() -> E2EProfile:
    return E2EProfile(load_database(), E2E_SPEC)


def ev_definition(settings: Mapping[str, Any]) -> DeviceDefinition:
    """The EV's signals and stimuli, from its DBC; opens nothing.

    ``settings["uds"] is True`` also declares the UDS plan names (``uds.*``
    signals, ``uds_*`` actions). They are opt-in so the definition of a
    plain CAN car stays what existing benches and plans were checked against.
    """
    definition = can_definition(
        load_database(),
        type_name=TYPE_NAME,
        bench_nodes=BENCH_NODES,
        e2e=e2e_profile(),
        files=(DBC_PATH,),
        capabilities=frozenset(
            {
                "can",
                "vehicle_sim",
                "door_locks",
                "battery",
                "e2e",
                "auto_lock",
                "uds",
                "ac_charging",
                "battery_inputs",
                "digital_key",
            }
        ),
    )
    # capabilities other variants of the car may declare in a bench file
    definition = dataclasses.replace(
        definition,
        known_capabilities=frozenset({"uds", "can_fd", "fd_only", "ac_charging", "battery_inputs"}),
    )
    inputs = {
        name: StimulusInfo(name, "input", {"value": info}, info.description)
        for name, info in INPUTS.items()
    }
    definition = dataclasses.replace(definition, stimuli={**definition.stimuli, **inputs})
    if settings.get("uds") is False:  # a variant without diagnostics
        return dataclasses.replace(definition, capabilities=definition.capabilities - {"uds"})
    return dataclasses.replace(
        definition,
        signals={
            **definition.signals,
            **uds_plan.UDS_SIGNALS,
            **uds_plan.dtc_signals(DTCS, DTC_DESCRIPTIONS),
        },
        stimuli={**definition.stimuli, **uds_plan.UDS_STIMULI},
    )


class EvDriver(CanNodeDriver):
    """Drive the EV's rest-bus simulation and watch its status frames.

    >>> ev.drive(30)                                   # doctest: +SKIP
    >>> ev.wait_for("BODY_Status.LockFL", "LOCKED", 0.5)  # doctest: +SKIP
    """

    PULSE = "DRIVE_Status"  # the VCU's 10 ms frame (E11 silences only the BMS)

    def __init__(
        self,
        name: str,
        transport: CanTransport,
        definition: DeviceDefinition | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = dict(settings or {})
        super().__init__(
            name,
            transport,
            load_database(),
            definition or ev_definition(self.settings),
            e2e=e2e_profile(),
            sticky=(VEHICLE_SIM,),
        )
        # the rig starts where the car is: a first drive() must not move it home
        sim = self._defaults(self.message(VEHICLE_SIM))
        sim["HomeDistance"] = home_distance(self.settings, name)
        self._last_sent[VEHICLE_SIM] = sim
        self._uds: UdsClient | None = None

    # -- diagnostics ----------------------------------------------------------

    @property
    def uds(self) -> UdsClient:
        """The car's UDS client (started on first use, closed with the driver)."""
        if self._uds is None:
            request_id, response_id = uds_ids(self.settings)
            self._uds = UdsClient(
                self.name, self.transport, request_id=request_id, response_id=response_id
            )
        return self._uds

    @property
    def has_uds(self) -> bool:
        return "uds" in self.definition.capabilities

    def identity(self) -> dict[str, str]:
        """Firmware, serial, hardware over UDS (F189, F18C, F193); else from VCU_Info."""
        if self.has_uds:
            try:
                dids = (uds.DID_SOFTWARE_VERSION, uds.DID_SERIAL_NUMBER, 0xF193)
                firmware, serial, hw = (str(self.uds.read_did(d)) for d in dids)
            except (DeviceTimeout, ProtocolError):
                pass  # an ECU without diagnostics: the identity frame still tells
            else:
                return {
                    "model": "EV VCU",
                    "serial": serial,
                    "firmware": firmware,
                    "hardware": f"rev {hw}",
                }
        return self.identity_from_frame()

    def identity_from_frame(self) -> dict[str, str]:
        """Model, serial and firmware from the VCU_Info frame (bounded wait)."""
        get = {s: int(self.read(f"VCU_Info.{s}").value) for s in ("SwMajor", "SwMinor", "SwPatch")}
        serial = int(self.read("VCU_Info.SerialNumber").value)
        hw = int(self.read("VCU_Info.HwRevision").value)
        return {
            "model": "EV VCU",
            "serial": f"{serial:010d}",
            "firmware": f"{get['SwMajor']}.{get['SwMinor']}.{get['SwPatch']}",
            "hardware": f"rev {hw}",
        }

    # -- plans: uds.* signals and uds_* actions beside the CAN names --------

    def samples(self, signal: str, since: float) -> list[Sample]:
        if uds_plan.is_uds(signal):
            uds_plan.check_signal(self.name, signal)
            return uds_plan.samples(self._uds, signal, since)
        return super().samples(signal, since)

    def read(self, signal: str) -> Sample:
        if uds_plan.is_uds(signal):
            return uds_plan.read(self.uds, self.name, signal)
        return super().read(signal)

    def stimulate(self, stimulus: str, values: Mapping[str, Any]) -> float:
        if uds_plan.is_uds(stimulus):
            return uds_plan.stimulate(self.uds, self.name, stimulus, values)
        return super().stimulate(stimulus, values)

    def write_evidence(self, directory: Path) -> list[Path]:
        paths = super().write_evidence(directory)
        if self._uds is not None:
            paths.append(self._uds.write_jsonl(Path(directory) / f"{self.name}.uds.jsonl"))
        return paths

    def close(self) -> None:
        if self._uds is not None:
            self._uds.close()
        super().close()

    # -- reading ----------------------------------------------------------

    def label(self, signal: str, value: Any) -> str:
        return self.definition.signals[signal].label(value)

    @property
    def speed(self) -> float:
        """Latest vehicle speed, km/h."""
        return float(self.read("DRIVE_Status.VehicleSpeed").value)

    @property
    def gear(self) -> str:
        """Latest gear name (P, R, N, D or SNA)."""
        return self.label("DRIVE_Status.Gear", self.read("DRIVE_Status.Gear").value)

    @property
    def lock_states(self) -> dict[str, str]:
        """Door → LOCKED/UNLOCKED, from the newest valid BODY_Status."""
        out = {}
        for door in DOORS:
            signal = f"BODY_Status.Lock{door}"
            out[door] = self.label(signal, self.read(signal).value)
        return out

    @property
    def all_locked(self) -> bool:
        return all(state == "LOCKED" for state in self.lock_states.values())

    @property
    def lock_result(self) -> str:
        return self.label("BODY_Status.LockResult", self.read("BODY_Status.LockResult").value)

    # -- stimulating --------------------------------------------------------

    def _code(self, stimulus: str, field: str, name: str) -> Any:
        choices = self.definition.stimuli[stimulus].fields[field].choices
        if name not in choices:
            raise ConfigError(
                f"{self.name}: {stimulus}.{field} has no value {name!r}; "
                + did_you_mean(name, choices),
                device=self.name,
            )
        return choices[name]

    def drive(self, speed_kmh: float, gear: str = "D", accel: float = 3.0) -> float:
        """Ask the rig for ``speed_kmh`` in ``gear`` at ``accel`` m/s²; capture time."""
        return self.stimulate(
            VEHICLE_SIM,
            {
                "TargetSpeed": speed_kmh,
                "Gear": self._code(VEHICLE_SIM, "Gear", gear),
                "Accel": accel,
            },
        )

    def _lock_cmd(self, request: str, source: str) -> float:
        return self.stimulate(
            "BODY_LockCmd",
            {
                "LockRequest": self._code("BODY_LockCmd", "LockRequest", request),
                "Source": self._code("BODY_LockCmd", "Source", source),
            },
        )

    def request_lock(self, source: str = "KEY") -> float:
        return self._lock_cmd("LOCK", source)

    def request_unlock(self, source: str = "PHONE") -> float:
        return self._lock_cmd("UNLOCK", source)

    # -- waiting --------------------------------------------------------------
