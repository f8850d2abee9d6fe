"""The ev device: definition names, driver conveniences, emulator rules, defects.

Bench side and emulator meet on a python-can ``virtual`` channel unique to
each test; timing is judged on capture timestamps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from devices.ev import DEVICE_TYPE, EvDriver, EvEmulator
from hil.bench.driver import Driver
from hil.bench.registry import get_device_type
from hil.errors import ConfigError, DeviceTimeout, EmulatorError
from tests.can_pair import can_pair

FAST = 25.0  # m/s²: reaches 20 km/h in about 0.22 s, keeps the suite quick

Car = tuple[EvDriver, EvEmulator]


@contextmanager
def car(defects: tuple[str, ...] = (), **settings: object) -> Iterator[Car]:
    with can_pair(DEVICE_TYPE, defects, settings, definition_settings={}) as (driver, emu):
        assert isinstance(driver, EvDriver)
        assert isinstance(emu, EvEmulator)
        yield driver, emu


@pytest.fixture
def ev() -> Iterator[Car]:
    with car() as pair:
        yield pair


def at_least(kmh: float) -> Callable[[float], bool]:
    return lambda v: v >= kmh


# -- definition and registry ----------------------------------------------


def test_registered_and_named_as_plans_expect() -> None:
    assert get_device_type("ev") is DEVICE_TYPE
    d = DEVICE_TYPE.definition({})
    assert d.signals["DRIVE_Status.VehicleSpeed"].unit == "km/h"
    assert set(d.signals["DRIVE_Status.Gear"].choices) == {"P", "R", "N", "D", "SNA"}
    for door in ("FL", "FR", "RL", "RR"):
        assert dict(d.signals[f"BODY_Status.Lock{door}"].choices) == {"UNLOCKED": 0, "LOCKED": 1}
    assert dict(d.signals["BODY_Status.LockResult"].choices) == {
        "NONE": 0,
        "ACCEPTED": 1,
        "REFUSED": 2,
    }
    assert [d.signals[f"BMS_Status.{s}"].unit for s in ("SoC", "PackVoltage", "PackCurrent")] == [
        "%",
        "V",
        "A",
    ]
    assert set(d.signals["BMS_Status.ContactorState"].choices) == {
        "OPEN",
        "PRECHARGE",
        "CLOSED",
        "FAULT",
    }
    assert {"HIL_VehicleSim", "BODY_LockCmd"} <= set(d.stimuli)
    messages = {s for s, info in d.stimuli.items() if info.kind == "message"}
    assert messages == {"HIL_VehicleSim", "BODY_LockCmd"}
    inputs = {s for s, info in d.stimuli.items() if info.kind == "input"}
    assert inputs == {
        "isolation_kohm",
        "cell_temp_max_c",
        "cell_voltage_max_v",
        "obc_overdraw_percent",
        "bms_silent",
        "handle_touch",  # the digital key's driver-door handle sensor
    }
    assert set(EvEmulator.INPUTS) == inputs
    sim = d.stimuli["HIL_VehicleSim"].fields
    assert (set(sim), sim["TargetSpeed"].unit, sim["Accel"].unit) == (
        {"TargetSpeed", "Gear", "Accel", "HomeDistance", "HvRequest"},
        "km/h",
        "m/s²",
    )
    lock = d.stimuli["BODY_LockCmd"].fields
    assert set(lock) == {"LockRequest", "Source", "E2EFault"}
    assert set(lock["Source"].choices) == {"KEY", "PHONE", "APP", "INTERIOR"}
    assert set(DEVICE_TYPE.defects) == set(EvEmulator.DEFECTS)


def test_unknown_defect_is_refused() -> None:
    with pytest.raises(EmulatorError, match="did you mean 'no_auto_lock'"):
        EvEmulator("ev", interface="virtual", channel="unused", defects=["no_autolock"])


# -- identity and reading ---------------------------------------------------


def test_identity_and_initial_state(ev: Car) -> None:
    driver, emu = ev
    assert isinstance(driver, Driver)
    assert driver.identity() == {
        "model": "EV VCU",
        "serial": "0020261125",
        "firmware": "2.3.1",
        "hardware": "rev 3",
    }
    assert (driver.speed, driver.gear, driver.all_locked) == (0.0, "P", False)
    assert driver.lock_states == dict.fromkeys(("FL", "FR", "RL", "RR"), "UNLOCKED")
    driver.wait_for("BMS_Status.ContactorState", "CLOSED", 1.0)
    assert 79.0 < driver.read("BMS_Status.SoC").value <= 80.0
    assert 300.0 < driver.read("BMS_Status.PackVoltage").value < 420.0
    assert emu.endpoint == {"interface": "virtual", "channel": emu.channel}


def test_identity_from_settings() -> None:
    with car(firmware="4.0.12", serial=77, hw_revision=9) as (driver, _):
        assert driver.identity() == {
            "model": "EV VCU",
            "serial": "0000000077",
            "firmware": "4.0.12",
            "hardware": "rev 9",
        }


# -- driving, auto-lock, lock requests -----------------------------------------


def test_drive_ramps_speed_and_auto_locks_within_one_tick(ev: Car) -> None:
    driver, emu = ev
    t0 = driver.drive(30, accel=FAST)
    crossed = driver.wait_for("DRIVE_Status.VehicleSpeed", at_least(20), 2.0, since=t0)
    locked = driver.wait_for("BODY_Status.LockFL", "LOCKED", 0.5, since=t0)
    assert locked.t - crossed.t < 0.015  # the same 10 ms tick, judged on capture times
    assert driver.all_locked
    assert driver.gear == "D"
    # 0 → 20 km/h at 25 m/s² takes 0.22 s
    assert 0.15 < crossed.t - t0 < 0.5
    top = driver.wait_for("DRIVE_Status.VehicleSpeed", at_least(30), 2.0)
    assert top.value == pytest.approx(30, abs=0.08)
    # current flows once the contactors have closed (precharge, about 0.3 s after power-on)
    driver.wait_for("BMS_Status.PackCurrent", lambda a: a > 5.0, 1.0)
    assert emu.state()["locks"] == dict.fromkeys(("FL", "FR", "RL", "RR"), "LOCKED")


def test_vehicle_sim_fields_are_sticky(ev: Car) -> None:
    driver, emu = ev
    driver.drive(10, gear="R", accel=FAST)
    t = driver.stimulate("HIL_VehicleSim", {"TargetSpeed": 3})  # gear and accel kept
    driver.wait_for("DRIVE_Status.Gear", "R", 1.0, since=t)
    driver.wait_for("DRIVE_Status.VehicleSpeed", lambda v: abs(v - 3) < 0.1, 2.0, since=t)
    assert emu.state()["accel_ms2"] == FAST
    assert not driver.all_locked  # R never auto-locks


def test_home_distance_is_set_by_the_rig_and_kept_while_driving() -> None:
    with car(home_distance_m=1200) as (driver, emu):
        assert driver.read("NAV_Status.HomeDistance").value == 1200
        t = driver.drive(5, accel=FAST)  # a drive without HomeDistance keeps the setting
        driver.wait_for("DRIVE_Status.Gear", "D", 1.0, since=t)
        assert driver.read("NAV_Status.HomeDistance").value == 1200
        t = driver.stimulate("HIL_VehicleSim", {"HomeDistance": 40})
        driver.wait_for("NAV_Status.HomeDistance", 40, 1.0, since=t)
        t = driver.stimulate("HIL_VehicleSim", {"TargetSpeed": 0})
        driver.wait_for("DRIVE_Status.VehicleSpeed", 0, 2.0, since=t)
        assert driver.read("NAV_Status.HomeDistance").value == 40
        t = driver.stimulate("HIL_VehicleSim", {"HomeDistance": 65535})  # no GNSS fix
        driver.wait_for("NAV_Status.HomeDistance", 65535, 1.0, since=t)
        assert emu.state()["home_distance_m"] == 65535
    with pytest.raises(ConfigError, match="home_distance_m"):
        EvEmulator("ev", interface="virtual", channel="unused", settings={"home_distance_m": -1})


def test_park_brakes_to_a_stop(ev: Car) -> None:
    driver, _ = ev
    driver.drive(8, accel=FAST)  # 8 km/h is a whole number of 0.08 km/h steps
    driver.wait_for("DRIVE_Status.VehicleSpeed", at_least(8), 2.0)
    t = driver.drive(0, gear="P", accel=FAST)
    driver.wait_for("DRIVE_Status.VehicleSpeed", 0, 1.0, since=t)
    assert driver.gear == "P"


def test_unlock_refused_while_moving_accepted_when_slow(ev: Car) -> None:
    driver, _ = ev
    driver.drive(12, accel=FAST)
    driver.wait_for("DRIVE_Status.VehicleSpeed", at_least(12), 2.0)
    t = driver.request_lock()
    driver.wait_for("BODY_Status.LockResult", "ACCEPTED", 0.2, since=t)
    assert driver.all_locked
    t = driver.request_unlock()
    refused = driver.wait_for("BODY_Status.LockResult", "REFUSED", 0.2, since=t)
    assert refused.t - t < 0.05
    assert driver.all_locked
    driver.drive(0, accel=FAST)
    driver.wait_for("DRIVE_Status.VehicleSpeed", 0, 2.0)
    t = driver.request_unlock(source="APP")
    driver.wait_for("BODY_Status.LockResult", "ACCEPTED", 0.2, since=t)
    assert driver.lock_states == dict.fromkeys(("FL", "FR", "RL", "RR"), "UNLOCKED")


def test_lock_commands_with_bad_e2e_are_ignored(ev: Car) -> None:
    driver, emu = ev
    lock = {"LockRequest": 1, "Source": 0}
    t = driver.stimulate("BODY_LockCmd", lock)  # counter 0
    driver.wait_for("BODY_Status.LockFL", "LOCKED", 0.5, since=t)
    t = driver.stimulate("BODY_LockCmd", {"LockRequest": 2, "Source": 1})  # counter 1
    driver.wait_for("BODY_Status.LockFL", "UNLOCKED", 0.5, since=t)
    t = driver.send_message("BODY_LockCmd", lock, counter=1)  # repeated
    driver.send_message("BODY_LockCmd", lock, counter=15)  # behind the last one: stale
    driver.send_message("BODY_LockCmd", lock, counter=2, checksum=0x42)  # corrupt
    with pytest.raises(DeviceTimeout, match="last value seen: UNLOCKED"):
        driver.wait_for("BODY_Status.LockFL", "LOCKED", 0.3, since=t)
    # The rejected frames did not move the reference: the next real one counts.
    t = driver.stimulate("BODY_LockCmd", lock)  # counter 2
    driver.wait_for("BODY_Status.LockFL", "LOCKED", 0.5, since=t)
    assert emu.state()["e2e_rejected"] == 3
    assert set(emu.state()["e2e_rejected_by_reason"]) == {
        "BODY_LockCmd: repeated counter",
        "BODY_LockCmd: stale counter",
        "BODY_LockCmd: checksum",
    }


# -- defects ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("REPEATED_COUNTER", "BODY_LockCmd: repeated counter"),
        ("STALE_COUNTER", "BODY_LockCmd: stale counter"),
        ("BAD_CHECKSUM", "BODY_LockCmd: checksum"),
    ],
)
def test_e2e_fault_field_sends_the_broken_frame_a_plan_asks_for(fault: str, reason: str) -> None:
    with car() as (driver, emu):
        t = driver.stimulate("BODY_LockCmd", {"LockRequest": "LOCK", "Source": "KEY"})
        driver.wait_for("BODY_Status.LockFL", "LOCKED", 0.5, since=t)
        t = driver.stimulate(
            "BODY_LockCmd", {"LockRequest": "UNLOCK", "Source": "PHONE", "E2EFault": fault}
        )
        with pytest.raises(DeviceTimeout):
            driver.wait_for("BODY_Status.LockFL", "UNLOCKED", 0.3, since=t)
        assert emu.e2e_rejected == {reason: 1}
        code = "U042283" if fault == "BAD_CHECKSUM" else "U042282"
        assert driver.read(f"uds.dtc.{code}").value != 0
        # a fault is a one-shot: the next frame is valid and counts
        t = driver.stimulate("BODY_LockCmd", {"LockRequest": "UNLOCK", "Source": "PHONE"})
        driver.wait_for("BODY_Status.LockFL", "UNLOCKED", 0.5, since=t)
        with pytest.raises(ConfigError, match="E2EFault has no value 'LATE'"):
            driver.stimulate("BODY_LockCmd", {"LockRequest": "LOCK", "E2EFault": "LATE"})


def test_defect_accepts_stale_counter_still_drops_bad_checksums() -> None:
    with car(("accepts_stale_counter",)) as (driver, emu):
        t = driver.stimulate("BODY_LockCmd", {"LockRequest": 1, "Source": 0})
        driver.wait_for("BODY_Status.LockFL", "LOCKED", 0.5, since=t)
        t = driver.stimulate("BODY_LockCmd", {"LockRequest": 2, "E2EFault": "BAD_CHECKSUM"})
        with pytest.raises(DeviceTimeout):
            driver.wait_for("BODY_Status.LockFL", "UNLOCKED", 0.3, since=t)
        t = driver.stimulate("BODY_LockCmd", {"LockRequest": 2, "E2EFault": "REPEATED_COUNTER"})
        driver.wait_for("BODY_Status.LockFL", "UNLOCKED", 0.5, since=t)
        assert driver.read("uds.dtc.U042282").value == 0  # it did not even notice


def test_bms_silent_times_out_within_three_cycles_and_recovers() -> None:
    with car() as (driver, emu):
        driver.wait_for("VCU_Status.BatteryTimeout", "OK", 1.0)
        last = driver.read("BMS_Status.SoC")
        t = time.time()
        emu.set_input("bms_silent", 1)
        flagged = driver.wait_for("VCU_Status.BatteryTimeout", "TIMEOUT", 0.5, since=t)
        final = driver.samples("BMS_Status.SoC", last.t)[-1]
        assert 0.2 <= flagged.t - final.t <= 0.3  # 2.5 cycles after the last frame
        frame = driver.frames("VCU_Status", flagged.t)[0][1]
        assert (frame["PowerLimit"], frame["ChargeEnable"]) == (0, 0)
        assert frame["BatterySoC"] == pytest.approx(102.3)
        assert driver.read("uds.dtc.U011187").value != 0
        t = time.time()
        emu.set_input("bms_silent", 0)
        driver.wait_for("VCU_Status.BatteryTimeout", "OK", 0.5, since=t)
    with car(("no_timeout_detection",)) as (driver, emu):
        driver.wait_for("VCU_Status.BatteryTimeout", "OK", 1.0)
        t = time.time()
        emu.set_input("bms_silent", 1)
        with pytest.raises(DeviceTimeout, match="last value seen: OK"):
            driver.wait_for("VCU_Status.BatteryTimeout", "TIMEOUT", 0.5, since=t)
        assert driver.read("VCU_Status.PowerLimit").value == 100  # stale, not safe


def test_defect_no_auto_lock() -> None:
    with car(("no_auto_lock",)) as (driver, emu):
        t0 = driver.drive(30, accel=FAST)
        crossed = driver.wait_for("DRIVE_Status.VehicleSpeed", at_least(20), 2.0, since=t0)
        with pytest.raises(DeviceTimeout, match="LockFL: no value == 'LOCKED' within 0.5 s"):
            driver.wait_for("BODY_Status.LockFL", "LOCKED", 0.5, since=crossed.t)
        assert "UNLOCKED" in emu.state()["locks"].values()


def test_defect_slow_auto_lock_misses_a_500_ms_deadline() -> None:
    with car(("slow_auto_lock",)) as (driver, _):
        t0 = driver.drive(30, accel=FAST)
        crossed = driver.wait_for("DRIVE_Status.VehicleSpeed", at_least(20), 2.0, since=t0)
        locked = driver.wait_for("BODY_Status.LockFL", "LOCKED", 2.0, since=crossed.t)
        assert 0.95 < locked.t - crossed.t < 1.2


def test_defect_unlock_while_moving() -> None:
    with car(("unlock_while_moving",)) as (driver, _):
        driver.drive(16, accel=FAST)
        driver.wait_for("DRIVE_Status.VehicleSpeed", at_least(16), 2.0)
        driver.request_lock()
        t = driver.request_unlock()
        driver.wait_for("BODY_Status.LockResult", "ACCEPTED", 0.2, since=t)
        driver.wait_for("BODY_Status.LockFL", "UNLOCKED", 0.2, since=t)


def test_defect_bad_checksum_frames_are_dropped_by_the_driver() -> None:
    with car(("bad_checksum",)) as (driver, _):
        driver.wait_for("DRIVE_Status.Gear", "P", 1.0)  # other frames are fine
        with pytest.raises(DeviceTimeout, match="no BODY_Status frame"):
            driver.read("BODY_Status.LockFL")
        assert driver.e2e_errors >= 1
        assert set(driver.e2e_error_details) == {"BODY_Status: checksum"}


# -- error paths ----------------------------------------------------------------


def test_convenience_errors_name_what_would_work(ev: Car) -> None:
    driver, _ = ev
    with pytest.raises(ConfigError, match="expected one of 'D', 'N', 'P', 'R'"):
        driver.drive(10, gear="d")
    with pytest.raises(ConfigError, match="did you mean 'PHONE'"):
        driver.request_unlock(source="PHONES")
    with pytest.raises(ConfigError, match="did you mean 'DRIVE_Status.VehicleSpeed'"):
        driver.wait_for("DRIVE_Status.VehicleSped", 0, 0.1)
    with pytest.raises(DeviceTimeout, match="last value seen: 0"):
        driver.wait_for("DRIVE_Status.VehicleSpeed", at_least(50), 0.05)
