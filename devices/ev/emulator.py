"""An emulated EV (BMS, VCU, BCM) on a python-can channel.

Behaviour, per 10 ms tick:

* **Drive.** In D or R the speed moves toward ``TargetSpeed`` at ``Accel``
  (m/s²; 0 means the default 3 m/s²). In N the car coasts down at 0.5 m/s²
  (rolling resistance); in P it brakes to a stop at ``Accel``. The reported
  gear follows the command at once. ``VehicleSpeed`` is unsigned: R reports
  the magnitude.
* **Auto-lock.** When the reported speed is ≥ ``settings["auto_lock_kmh"]``
  (20) in D and any door is unlocked, all doors lock in the same tick and
  BODY_Status goes out at once (it is also sent every 100 ms).
* **Lock requests** (BODY_LockCmd, E2E-verified; stale/repeated counters and
  bad checksums are dropped and counted): LOCK locks all doors; UNLOCK
  unlocks all doors unless the speed is above
  ``settings["unlock_max_kmh"]`` (5), in which case ``LockResult`` is
  REFUSED and the locks stay as they are. Accepted requests report ACCEPTED.
* **Battery.** Contactors go OPEN → PRECHARGE → CLOSED in the first 0.3 s;
  pack current follows speed and acceleration, SoC integrates it.

**Position.** NAV_Status.HomeDistance (m, 100 ms) is the distance from home
the rig last set (``HIL_VehicleSim.HomeDistance``); before that
``settings["home_distance_m"]`` (0: parked at home). 65535 = not available.

Identity (VCU_Info): ``settings["firmware"]`` ("2.3.1"), ``settings["serial"]``
(20261125), ``settings["hw_revision"]`` (3).

**Diagnostics** (``hil.uds``, unless ``settings["uds"]`` is false): a UDS
server on ``uds_request_id`` 0x7E0 → ``uds_response_id`` 0x7E8 answers F189
(firmware), F18C (serial, 10 digits), F190 (``vin``), F193 (hardware
revision), D001 (SoC, 0.1 %/bit) and D0FF (needs security access). Routines:
0x0201 lock actuator test (extended session), 0x0301 insulation test
(extended + security, answers 0x78 then the result after 0.2 s). ECU reset
and routine starts are refused (0x22) while the car moves. A BODY_LockCmd
dropped by E2E sets DTC U0422 with failure type 0x83 (checksum, 0xC42283)
or 0x82 (counter, 0xC42282). ``uds_s3_s`` (5), ``uds_lockout_s`` (10) and
``uds_secret`` tune the session and security rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import can

from devices.ev.driver import (
    CAR_NODES,
    DOORS,
    e2e_profile,
    home_distance,
    load_database,
    uds_ids,
)
from hil.cannode.emulator import CanNodeEmulator
from hil.errors import EmulatorError
from hil.uds import protocol as uds
from hil.uds.ecu import Did, EcuOptions, Nrc, Routine, UdsEcu
from hil.uds.server import UdsServer

GEAR_P, GEAR_R, GEAR_N, GEAR_D = 0, 1, 2, 3
GEARS = {GEAR_P: "P", GEAR_R: "R", GEAR_N: "N", GEAR_D: "D", 7: "SNA"}
UNLOCKED, LOCKED = 0, 1
RESULT_NONE, RESULT_ACCEPTED, RESULT_REFUSED = 0, 1, 2
RESULTS = {RESULT_NONE: "NONE", RESULT_ACCEPTED: "ACCEPTED", RESULT_REFUSED: "REFUSED"}
REQ_LOCK, REQ_UNLOCK = 1, 2
CONTACTORS = {0: "OPEN", 1: "PRECHARGE", 2: "CLOSED", 3: "FAULT"}

DEFAULT_ACCEL = 3.0  # m/s²
COAST_DECEL = 0.5  # m/s², rolling resistance in N
SLOW_AUTO_LOCK_DELAY_S = 1.0
PACK_AH = 150.0

DEFAULT_VIN = "HILEV000000000001"
LOCK_CMD_ID = 0x210
DTC_LOCKCMD_CHECKSUM = 0xC42283  # U0422-83: invalid data from BCM, protection value wrong
DTC_LOCKCMD_COUNTER = 0xC42282  # U0422-82: alive/sequence counter incorrect
DID_SOC, DID_PROTECTED = 0xD001, 0xD0FF
RID_LOCK_TEST, RID_INSULATION = 0x0201, 0x0301
INSULATION_TEST_S = 0.2


class EvEmulator(CanNodeEmulator):
    """The car side of the EV's CAN bus."""

    DEFECTS: ClassVar[Mapping[str, str]] = {
        "no_auto_lock": "doors never auto-lock when driving off",
        "slow_auto_lock": "doors auto-lock 1.0 s after the speed threshold is crossed",
        "unlock_while_moving": "unlock requests are accepted at any speed",
        "bad_checksum": "BODY_Status is sent with a wrong E2E checksum",
        "no_security_lockout": "UDS security access never answers 0x36/0x37: no attempt limit",
        "s3_never_expires": "the UDS extended session never falls back to default (no S3 timeout)",
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
    ) -> None:
        super().__init__(
            name,
            db=load_database(),
            nodes=CAR_NODES,
            interface=interface,
            channel=channel,
            bus_kwargs=bus_kwargs,
            e2e=e2e_profile(),
            defects=defects,
            time_scale=time_scale,
            settings=settings,
        )
        s = self.settings
        self.auto_lock_kmh = float(s.get("auto_lock_kmh", 20.0))
        self.unlock_max_kmh = float(s.get("unlock_max_kmh", 5.0))
        try:
            major, minor, patch = (int(p) for p in str(s.get("firmware", "2.3.1")).split("."))
        except ValueError as err:
            raise EmulatorError("settings.firmware must look like '2.3.1'", device=name) from err
        self.set_signals(
            "VCU_Info",
            SwMajor=major,
            SwMinor=minor,
            SwPatch=patch,
            HwRevision=int(s.get("hw_revision", 3)),
            SerialNumber=int(s.get("serial", 20261125)),
        )
        self._speed = 0.0  # km/h, unquantized
        self._reported = 0.0  # km/h as the DBC carries it
        self._target = 0.0
        self._accel = DEFAULT_ACCEL
        self._gear = GEAR_P
        self._locks = [UNLOCKED] * len(DOORS)
        self._result = RESULT_NONE
        self._soc = float(s.get("soc", 80.0))
        self._current = 0.0
        self._contactor = 0
        self._autolock_since: float | None = None
        self._home_distance = home_distance(s, name)
        self.resets = 0
        self.uds: UdsServer | None = None
        if bool(s.get("uds", True)):
            self.uds = self._uds_server(f"{major}.{minor}.{patch}")
        self._publish()

    # -- diagnostics ----------------------------------------------------------

    def _uds_server(self, firmware: str) -> UdsServer:
        s = self.settings
        request_id, response_id = uds_ids(s)
        options = EcuOptions(
            s3_s=float(s.get("uds_s3_s", uds.S3_S)),
            lockout_s=float(s.get("uds_lockout_s", uds.LOCKOUT_S)),
            secret=int(s.get("uds_secret", uds.DEFAULT_SECRET)),
            lockout=not self.has("no_security_lockout"),
            s3=not self.has("s3_never_expires"),
            conditions=self._uds_allowed,
            on_reset=self._on_reset,
        )
        ecu = UdsEcu(options)
        vin = str(s.get("vin", DEFAULT_VIN))
        serial = int(s.get("serial", 20261125))
        for did, text in (
            (uds.DID_SOFTWARE_VERSION, firmware),
            (uds.DID_SERIAL_NUMBER, f"{serial:010d}"),
            (uds.DID_VIN, vin),
            (0xF193, str(int(s.get("hw_revision", 3)))),
        ):
            ecu.add_did(Did(did, _constant(text.encode("ascii"))))
        ecu.add_did(Did(DID_SOC, self._soc_did))
        ecu.add_did(Did(DID_PROTECTED, lambda: b"\x5a", security=True))
        ecu.add_routine(Routine(RID_LOCK_TEST, start=self._lock_test, results=lambda _: b"\x02"))
        ecu.add_routine(
            Routine(
                RID_INSULATION,
                start=self._insulation_test,
                security=True,
                duration_s=INSULATION_TEST_S,
            )
        )
        return UdsServer(
            self.name, ecu, send=self._send_frame, request_id=request_id, response_id=response_id
        )

    def _soc_did(self) -> bytes:
        with self._lock:
            return round(self._soc * 10).to_bytes(2, "big")

    def _send_frame(self, frame: can.Message) -> None:
        bus = self._bus
        if bus is not None:
            bus.send(frame)

    def _uds_allowed(self, sid: int) -> bool:
        # a real VCU refuses resets and actuator tests while the car moves
        with self._lock:
            return sid not in (0x11, 0x31) or self._reported <= 0.0

    def _on_reset(self, kind: int) -> None:
        with self._lock:
            self.resets += 1

    def _lock_test(self, option: bytes) -> bytes:
        if option not in (b"", b"\x00"):
            raise Nrc(uds.OUT_OF_RANGE)
        return b"\x01"  # running

    def _insulation_test(self, option: bytes) -> bytes:
        return b"\x00" + (2500).to_bytes(2, "big")  # passed, 2500 kOhm

    def _start(self) -> None:
        super()._start()
        if self.uds is not None:
            self.uds.start(self.spawn, self.stopping)

    def _stop(self) -> None:
        if self.uds is not None:
            self.uds.stop()
        super()._stop()

    def on_frame(self, frame: can.Message) -> bool:
        # diagnostic frames are not in the DBC: the UDS server takes them
        return self.uds is not None and self.uds.feed(frame)

    def on_rejected(self, message: str, reason: str) -> None:
        if self.uds is not None and message == "BODY_LockCmd":
            code = DTC_LOCKCMD_CHECKSUM if "checksum" in reason else DTC_LOCKCMD_COUNTER
            self.uds.ecu.dtcs.set(code)

    # -- behaviour (worker thread, under _lock) ---------------------------

    def tick(self, dt: float) -> None:
        self._contactor = 0 if self.sim_time < 0.1 else 1 if self.sim_time < 0.3 else 2
        before = self._speed
        self._speed = _approach(self._speed, *self._goal(), dt)
        self._reported = self.quantize("DRIVE_Status", "VehicleSpeed", self._speed)
        accel_ms2 = (self._speed - before) / 3.6 / dt if dt > 0 else 0.0
        self._current = 5.0 + 0.15 * self._speed + max(accel_ms2, 0.0) * 20.0
        self._soc = max(0.0, self._soc - self._current * dt / 3600.0 / PACK_AH * 100.0)
        self._auto_lock()
        self._publish()

    def _goal(self) -> tuple[float, float]:
        """(target km/h, rate m/s²) for the current gear."""
        if self._gear in (GEAR_D, GEAR_R):
            return self._target, self._accel
        if self._gear == GEAR_N:
            return 0.0, COAST_DECEL
        return 0.0, self._accel

    def _auto_lock(self) -> None:
        wanted = (
            not self.has("no_auto_lock")
            and self._gear == GEAR_D
            and self._reported >= self.auto_lock_kmh
            and UNLOCKED in self._locks
        )
        if not wanted:
            self._autolock_since = None
            return
        if self.has("slow_auto_lock"):
            if self._autolock_since is None:
                self._autolock_since = self.sim_time
            if self.sim_time - self._autolock_since < SLOW_AUTO_LOCK_DELAY_S:
                return
        self._set_locks(LOCKED)
        self._autolock_since = None

    def on_message(self, name: str, values: Mapping[str, Any], t: float) -> None:
        if name == "HIL_VehicleSim":
            self._target = float(values["TargetSpeed"])
            self._gear = int(values["Gear"])
            accel = float(values["Accel"])
            self._accel = accel if accel > 0 else DEFAULT_ACCEL
            self._home_distance = int(values["HomeDistance"])
        elif name == "BODY_LockCmd":
            request = int(values["LockRequest"])
            if request == REQ_LOCK:
                self._set_locks(LOCKED)
                self._result = RESULT_ACCEPTED
            elif request == REQ_UNLOCK:
                moving = self._reported > self.unlock_max_kmh
                if moving and not self.has("unlock_while_moving"):
                    self._result = RESULT_REFUSED
                else:
                    self._set_locks(UNLOCKED)
                    self._result = RESULT_ACCEPTED
            else:
                return
            self._publish()
            self.send_now("BODY_Status")

    def corrupt_checksum(self, name: str) -> bool:
        return name == "BODY_Status" and self.has("bad_checksum")

    def _set_locks(self, state: int) -> None:
        if any(lock != state for lock in self._locks):
            self._locks = [state] * len(DOORS)
            self._publish()
            self.send_now("BODY_Status")

    def _publish(self) -> None:
        self.set_signals("DRIVE_Status", VehicleSpeed=self._reported, Gear=self._gear)
        self.set_signals(
            "BODY_Status",
            LockResult=self._result,
            **{f"Lock{door}": lock for door, lock in zip(DOORS, self._locks, strict=True)},
        )
        self.set_signals(
            "BMS_Status",
            SoC=round(self._soc, 1),
            PackVoltage=round(330.0 + 0.9 * self._soc - 0.05 * self._current, 2),
            PackCurrent=round(self._current, 1),
            ContactorState=self._contactor,
        )
        self.set_signals("NAV_Status", HomeDistance=self._home_distance)

    # -- inspection ---------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """A read-only snapshot of the car's internal state."""
        with self._lock:
            snapshot = {
                "speed_kmh": self._speed,
                "reported_speed_kmh": self._reported,
                "target_kmh": self._target,
                "accel_ms2": self._accel,
                "gear": GEARS.get(self._gear, str(self._gear)),
                "locks": {
                    door: "LOCKED" if lock else "UNLOCKED"
                    for door, lock in zip(DOORS, self._locks, strict=True)
                },
                "lock_result": RESULTS[self._result],
                "soc_percent": self._soc,
                "home_distance_m": self._home_distance,
                "contactor": CONTACTORS[self._contactor],
                "e2e_rejected": sum(self.e2e_rejected.values()),
                "e2e_rejected_by_reason": self.e2e_rejected,
                "sim_time_s": self.sim_time,
                "frames_sent": self.frames_sent,
                "resets": self.resets,
            }
        # outside _lock: the UDS server takes its own lock, then ours (conditions)
        snapshot["uds"] = self.uds.state() if self.uds is not None else None
        return snapshot


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _approach(speed: float, target: float, rate_ms2: float, dt: float) -> float:
    """``speed`` moved toward ``target`` by at most ``rate`` (m/s²) over ``dt``."""
    step = rate_ms2 * 3.6 * dt
    if speed < target:
        return min(target, speed + step)
    return max(target, speed - step)
