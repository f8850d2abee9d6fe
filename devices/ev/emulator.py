"""An emulated EV (BMS, VCU, BCM, TCU, OBC) on a python-can channel.

Behaviour, per 10 ms tick:

* **Drive** (``drive.py``): speed and gear follow ``HIL_VehicleSim``.
* **Auto-lock.** When the reported speed is ≥ ``settings["auto_lock_kmh"]``
  (20) in D and any door is unlocked, all doors lock in the same tick and
  BODY_Status goes out at once (it is also sent every 100 ms).
* **Lock requests** (BODY_LockCmd, E2E-verified; stale/repeated counters and
  bad checksums are dropped and counted, and set a DTC): LOCK locks all doors;
  UNLOCK unlocks all doors unless the speed is above
  ``settings["unlock_max_kmh"]`` (5), in which case ``LockResult`` is
  REFUSED and the locks stay as they are. Accepted requests report ACCEPTED.
* **Battery** (``battery.py``): cells, isolation monitor, thermal derating,
  over-voltage, contactors with precharge on ``HvRequest`` (the rig's
  ignition, ON by default) or a charging session. Pack current follows speed,
  acceleration and charging; SoC integrates it.
* **Charging** (``charging.py``): with the inlet wired to a wallbox
  (``wiring: {inlet: charger}``) the onboard charger follows the control pilot.
* **VCU.** Watches the BMS's 100 ms frame: none for 2.5 cycles (so flagged
  *within* 3) → ``VCU_Status.BatteryTimeout``, DTC U0111-87 and safe defaults
  (SoC not available, no drive power, charging disabled) until it returns.
* **Position.** NAV_Status.HomeDistance (m, 100 ms) is the distance from home
  the rig last set (``HIL_VehicleSim.HomeDistance``); before that
  ``settings["home_distance_m"]`` (0: parked at home). 65535 = not available.

Physical inputs (a bench's actuators; ``set`` in a plan): ``isolation_kohm``,
``cell_temp_max_c``, ``cell_voltage_max_v``, ``obc_overdraw_percent``, and
``bms_silent`` (1: the BMS is cut off the bus, its frames stop).

Identity (VCU_Info): ``settings["firmware"]`` ("2.3.1"), ``settings["serial"]``
(20261125), ``settings["hw_revision"]`` (3). Diagnostics: ``diagnostics.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import can

from devices.charger.pilot import PilotWire, Socket
from devices.ev import battery, charging, digital_key, vcu
from devices.ev import diagnostics as diag
from devices.ev.battery import Battery, Limits
from devices.ev.charging import OnboardCharger
from devices.ev.drive import GEAR_D, GEARS, PARK_DRIVE_NEUTRAL, Drive
from devices.ev.driver import (
    CAR_NODES,
    DOORS,
    e2e_profile,
    home_distance,
    load_database,
    uds_ids,
)
from hil.cannode.e2e import CHECKSUM
from hil.cannode.emulator import CanNodeEmulator
from hil.emulation.base import Emulator
from hil.errors import EmulatorError
from hil.uds.server import UdsServer

UNLOCKED, LOCKED = 0, 1
RESULT_NONE, RESULT_ACCEPTED, RESULT_REFUSED = 0, 1, 2
RESULTS = {RESULT_NONE: "NONE", RESULT_ACCEPTED: "ACCEPTED", RESULT_REFUSED: "REFUSED"}
REQ_LOCK, REQ_UNLOCK = 1, 2

SLOW_AUTO_LOCK_DELAY_S = 1.0
AUX_LOAD_A = 5.0  # 12 V system and coolant pumps, from the pack
MAINS_V, OBC_EFFICIENCY = 230.0, 0.92
BMS_MESSAGES = frozenset({"BMS_Status", "BMS_Cells", "BMS_Safety"})
MEASURED = frozenset({"LinkVoltage", "PackVoltage", "PackCurrent", "SoC", "BatterySoC"})
CHANGE_SENT = ("BMS_Status", "BMS_Safety", "OBC_Status", "VCU_Status")  # cyclic and on change


class EvEmulator(CanNodeEmulator):
    """The car side of the EV's CAN bus."""

    DEFECTS: ClassVar[Mapping[str, str]] = {
        "no_auto_lock": "doors never auto-lock when driving off",
        "slow_auto_lock": "doors auto-lock 1.0 s after the speed threshold is crossed",
        "unlock_while_moving": "unlock requests are accepted at any speed",
        "bad_checksum": "BODY_Status is sent with a wrong E2E checksum",
        "no_security_lockout": "UDS security access never answers 0x36/0x37: no attempt limit",
        "s3_never_expires": "the UDS extended session never falls back to default (no S3 timeout)",
        "accepts_stale_counter": "the BCM acts on lock commands with a repeated or stale "
        "E2E counter (checksums are still checked)",
        # sequence defects (found by exploration, testplans/explore/XE1)
        "unlock_after_neutral_shift": "after shifting P → D → N the BCM reads 'not in D' as "
        "parked: a phone unlock is accepted while the car coasts at speed",
        "auto_lock_off_after_double_unlock": "two unlock requests in a row switch the "
        "speed auto-lock off (a personalisation shortcut left enabled)",
        **battery.DEFECTS,
        **charging.DEFECTS,
        **vcu.DEFECTS,
        **digital_key.DEFECTS,
    }
    INPUTS: ClassVar[Mapping[str, str]] = {
        **battery.INPUTS,
        **charging.INPUTS,
        "bms_silent": "",
        **digital_key.INPUTS,
    }

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
        wiring: Mapping[str, Emulator] | None = None,
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
        self._charger, self._wire = self._inlet(wiring or {})
        self.drive = Drive()
        self._hv_request = True  # the rig's ignition (HIL_VehicleSim.HvRequest)
        self._locks = [UNLOCKED] * len(DOORS)
        self._result = RESULT_NONE
        self._autolock_since: float | None = None
        self._unlocks_in_a_row = 0  # (auto_lock_off_after_double_unlock) the shortcut's count
        self._home_distance = home_distance(s, name)
        self._bms_silent = False
        self.vcu = vcu.BatteryWatch(self.defects)
        self.battery = Battery(Limits.from_settings(s, name), self.defects, float(s.get("soc", 80)))
        self.obc = OnboardCharger(float(s.get("obc_max_a", 32.0)), self.defects, self._wire)
        self.resets = 0
        self.uds: UdsServer | None = None
        if bool(s.get("uds", True)):
            self.uds = diag.uds_server(
                name,
                self,
                s,
                firmware=f"{major}.{minor}.{patch}",
                ids=uds_ids(s),
                defects=self.defects,
                send=self._send_frame,
            )
        self._published: dict[str, dict[str, Any]] = {}
        # the BCM's passive entry: phones' radios, the handle sensor (devices/ev/digital_key.py)
        self.digital_key = digital_key.DigitalKey(name, s, self.has)
        self._publish()

    def _inlet(self, wiring: Mapping[str, Emulator]) -> tuple[Socket | None, PilotWire | None]:
        unknown = sorted(set(wiring) - {"inlet"})
        if unknown:
            raise EmulatorError(
                f"the car's only wiring channel is 'inlet' (its charge port), got {unknown}",
                device=self.name,
            )
        charger = wiring.get("inlet")
        if charger is None:
            return None, None
        if not isinstance(charger, Socket):
            raise EmulatorError(
                f"the car's inlet is wired to {charger.name!r}, which is not a wallbox",
                device=self.name,
            )
        return charger, charger.connect_car()

    # -- diagnostics hooks (diag.Car) ------------------------------------------

    def soc_percent(self) -> float:
        with self._lock:
            return self.battery.soc

    def isolation_kohm(self) -> float:
        with self._lock:
            return self.battery.isolation_kohm

    def uds_allowed(self, sid: int) -> bool:
        # a real VCU refuses resets and actuator tests while the car moves
        with self._lock:
            return sid not in (0x11, 0x31) or self.drive.reported <= 0.0

    def on_reset(self, kind: int) -> None:
        with self._lock:
            self.resets += 1

    def _dtc(self, code: int) -> None:
        if self.uds is not None:
            self.uds.ecu.dtcs.set(code)

    def _send_frame(self, frame: can.Message) -> None:
        bus = self._bus
        if bus is not None:
            bus.send(frame)

    def _start(self) -> None:
        super()._start()
        if self.uds is not None:
            self.uds.start(self.spawn, self.stopping)

    def _stop(self) -> None:
        if self.uds is not None:
            self.uds.stop()
        if self._charger is not None and self._wire is not None:
            self._charger.disconnect_car(self._wire)
        super()._stop()

    def on_frame(self, frame: can.Message) -> bool:
        # diagnostic frames are not in the DBC: the UDS server takes them
        return self.uds is not None and self.uds.feed(frame)

    def on_rejected(self, message: str, reason: str) -> None:
        if message != "BODY_LockCmd" or self.tolerates(message, reason):
            return
        self._dtc(diag.DTC_LOCKCMD_CHECKSUM if reason == CHECKSUM else diag.DTC_LOCKCMD_COUNTER)

    def tolerates(self, name: str, reason: str) -> bool:
        return reason != CHECKSUM and self.has("accepts_stale_counter")

    # -- physical inputs ----------------------------------------------------

    def _apply_input(self, name: str, value: float) -> None:
        with self._lock:
            if name == "bms_silent":
                self._bms_silent = bool(value)
            elif name in digital_key.INPUTS:
                self.digital_key.set_input(name, value)
            elif name in battery.INPUTS:
                self.battery.set_input(name, value)
            else:
                self.obc.set_input(name, value)

    def silenced(self, name: str) -> bool:
        return self._bms_silent and name in BMS_MESSAGES

    # -- behaviour (worker thread, under _lock) ---------------------------

    def tick(self, dt: float) -> None:
        accel_ms2 = self.drive.step(dt, self._quantize_speed)
        if self.vcu.check(dt, self.sent_at.get(vcu.BMS_FRAME)):
            self._dtc(diag.DTC_BMS_TIMEOUT)
        bat, obc = self.battery, self.obc
        enabled = not self.vcu.timed_out
        blocked = bat.charge_blocked
        charge_hv = obc.wants_hv(enabled=enabled, blocked=blocked)
        drive_a = AUX_LOAD_A + 0.15 * self.drive.speed + max(accel_ms2, 0.0) * 20.0
        charge_a = obc.line_a * MAINS_V * OBC_EFFICIENCY / max(bat.pack_v, 1.0)
        bat.step(dt, hv_wanted=self._hv_request or charge_hv, current_a=drive_a - charge_a)
        obc.step(
            enabled=enabled,
            blocked=blocked,
            power_limit=bat.power_limit,
            closed=bat.contactor == battery.CLOSED,
        )
        self._battery_dtcs()
        self._auto_lock()
        self._digital_key()
        self._publish()

    def _digital_key(self) -> None:
        moving = self.drive.reported > self.unlock_max_kmh
        if self.digital_key.step(time.monotonic(), moving=moving):
            self._locks[DOORS.index("FL")] = UNLOCKED  # the driver door only
            self._result = RESULT_ACCEPTED
            self.send_now("BODY_Status")
        status = self.digital_key.signals()
        if status != self.signals(digital_key.MESSAGE):  # cyclic, and at once on change
            self.set_signals(digital_key.MESSAGE, **status)
            self.send_now(digital_key.MESSAGE)

    def _battery_dtcs(self) -> None:
        bat = self.battery
        if bat.isolation_fault:
            self._dtc(diag.DTC_ISOLATION)
        if bat.overvoltage:
            self._dtc(diag.DTC_CELL_OVERVOLTAGE)
        if bat.thermal == battery.SHUTDOWN:
            self._dtc(diag.DTC_CELL_OVERTEMP)

    def _quantize_speed(self, kmh: float) -> float:
        return self.quantize("DRIVE_Status", "VehicleSpeed", kmh)

    def _auto_lock(self) -> None:
        wanted = (
            not self.has("no_auto_lock")
            and not (self.has("auto_lock_off_after_double_unlock") and self._unlocks_in_a_row >= 2)
            and self.drive.gear == GEAR_D
            and self.drive.reported >= self.auto_lock_kmh
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
            self.drive.command(
                float(values["TargetSpeed"]), int(values["Gear"]), float(values["Accel"])
            )
            self._home_distance = int(values["HomeDistance"])
            self._hv_request = bool(values["HvRequest"])
        elif name == "BODY_LockCmd":
            request = int(values["LockRequest"])
            if request == REQ_LOCK:
                self._unlocks_in_a_row = 0
                self._set_locks(LOCKED)
                self._result = RESULT_ACCEPTED
            elif request == REQ_UNLOCK:
                self._unlocks_in_a_row += 1
                moving = self.drive.reported > self.unlock_max_kmh and not self._parked_by_shift()
                if moving and not self.has("unlock_while_moving"):
                    self._result = RESULT_REFUSED
                else:
                    self._set_locks(UNLOCKED)
                    self._result = RESULT_ACCEPTED
            else:
                return
            self._publish()
            self.send_now("BODY_Status")

    def _parked_by_shift(self) -> bool:
        """(unlock_after_neutral_shift) P → D → N taken for parking, whatever the speed."""
        shifts = self.drive.shifts
        return self.has("unlock_after_neutral_shift") and shifts == PARK_DRIVE_NEUTRAL

    def corrupt_checksum(self, name: str) -> bool:
        return name == "BODY_Status" and self.has("bad_checksum")

    def _set_locks(self, state: int) -> None:
        if any(lock != state for lock in self._locks):
            self._locks = [state] * len(DOORS)
            self._publish()
            self.send_now("BODY_Status")

    def _publish(self) -> None:
        self.set_signals("DRIVE_Status", VehicleSpeed=self.drive.reported, Gear=self.drive.gear)
        self.set_signals(
            "BODY_Status",
            LockResult=self._result,
            **{f"Lock{door}": lock for door, lock in zip(DOORS, self._locks, strict=True)},
        )
        frames = self.battery.signals()
        frames["BMS_Safety"]["ChargeRequest"] = round(self.obc.request_a, 1)
        frames["OBC_Status"] = self.obc.signals()
        frames["VCU_Status"] = self.vcu.status(self.battery, receiving=not self._bms_silent)
        frames["NAV_Status"] = {"HomeDistance": self._home_distance}
        for message, values in frames.items():
            self.set_signals(message, **values)
        for message in CHANGE_SENT:
            # measured values drift every tick: only a change of state is an event
            key = {k: v for k, v in frames[message].items() if k not in MEASURED}
            if self._published.get(message, key) != key:
                self.send_now(message)
            self._published[message] = key

    # -- inspection ---------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """A read-only snapshot of the car's internal state."""
        with self._lock:
            snapshot = {
                "speed_kmh": self.drive.speed,
                "reported_speed_kmh": self.drive.reported,
                "target_kmh": self.drive.target,
                "accel_ms2": self.drive.accel,
                "gear": GEARS.get(self.drive.gear, str(self.drive.gear)),
                "hv_request": self._hv_request,
                "locks": {
                    door: "LOCKED" if lock else "UNLOCKED"
                    for door, lock in zip(DOORS, self._locks, strict=True)
                },
                "lock_result": RESULTS[self._result],
                "soc_percent": self.battery.soc,
                "contactor": battery.CONTACTORS[self.battery.contactor],
                "battery": self.battery.state(),
                "charging": self.obc.state_snapshot(),
                "bms_silent": self._bms_silent,
                "battery_timeout": self.vcu.timed_out,
                "home_distance_m": self._home_distance,
                "digital_key": self.digital_key.state(),
                "e2e_rejected": sum(self.e2e_rejected.values()),
                "e2e_rejected_by_reason": self.e2e_rejected,
                "sim_time_s": self.sim_time,
                "frames_sent": self.frames_sent,
                "resets": self.resets,
            }
        # outside _lock: the UDS server takes its own lock, then ours (conditions)
        snapshot["uds"] = self.uds.state() if self.uds is not None else None
        return snapshot
