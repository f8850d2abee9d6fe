"""The car's digital key: the unlock rule on the module, then end to end on CAN.

The module tests use real phone emulators (not opened: their radio is plain
state) and step the module as the car's 10 ms tick does. The CAN tests run
the car's emulator on a virtual channel with its real driver, link an opened
phone to it as the bench does, touch the handle and judge the unlock on the
BODY_Status and KEY_Status frames the driver captured.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import devices.ev as ev_type
import devices.phone as phone_type
from devices.ev.digital_key import (
    NONE,
    RANGE_NA,
    REJECTED_MOVING,
    REJECTED_NO_PHONE,
    REJECTED_RANGE,
    REJECTED_UNPAIRED,
    RSSI_NONE,
    SLOW_UNLOCK_S,
    UNLOCKED,
    DigitalKey,
)
from devices.ev.driver import EvDriver
from devices.ev.emulator import EvEmulator
from devices.phone.emulator import PhoneEmulator
from hil.bench.links import LinkedDevice
from hil.bench.registry import EmulatorContext
from hil.errors import EmulatorError
from hil.miot.spec import load_spec_cached
from tests.can_pair import can_pair


def make_phone(name: str = "phone", **settings: object) -> PhoneEmulator:
    return PhoneEmulator(name, load_spec_cached(phone_type.SPEC_PATH), settings=settings)


def make_key(*defects: str, **settings: object) -> DigitalKey:
    return DigitalKey("ev", settings, lambda d: d in defects)


@pytest.fixture
def phone() -> PhoneEmulator:
    return make_phone()


def touch(key: DigitalKey, now: float = 0.0) -> bool:
    """A hand on the handle, one tick, the hand off; True if the door unlocked."""
    key.set_input("handle_touch", 1.0)
    unlocked = key.step(now)
    key.set_input("handle_touch", 0.0)
    return unlocked


# ----- the rule


def test_paired_phone_within_one_metre_unlocks_on_the_touch(phone: PhoneEmulator) -> None:
    key = make_key()
    key.attach(phone)
    phone.set_input("distance", 0.6)
    assert key.step(0.0) is False  # no touch, no unlock
    assert touch(key, 0.01) is True
    assert key.signals()["LastResult"] == UNLOCKED
    assert key.decisions == [("UNLOCKED", "phone")]


def test_the_unlock_range_is_the_cars_setting(phone: PhoneEmulator) -> None:
    key = make_key(key_unlock_range_m=2.0)
    key.attach(phone)
    phone.set_input("distance", 1.5)
    assert touch(key) is True
    strict = make_key()
    strict.attach(phone)
    assert touch(strict) is False
    assert strict.signals()["LastResult"] == REJECTED_RANGE


def test_one_touch_decides_once(phone: PhoneEmulator) -> None:
    key = make_key()
    key.attach(phone)
    phone.set_input("distance", 0.5)
    key.set_input("handle_touch", 1.0)
    assert key.step(0.0) is True
    assert key.step(0.01) is False  # still touching: no second decision
    key.set_input("handle_touch", 1.0)
    assert key.step(0.02) is False
    assert len(key.decisions) == 1


@pytest.mark.parametrize("distance", [1.2, 5.0, 25.0])
def test_paired_phone_further_than_one_metre_is_rejected(
    phone: PhoneEmulator, distance: float
) -> None:
    key = make_key()
    key.attach(phone)
    phone.set_input("distance", distance)
    assert touch(key) is False
    assert key.signals()["LastResult"] == REJECTED_RANGE


def test_unpaired_phone_never_unlocks(phone: PhoneEmulator) -> None:
    key = make_key()
    key.attach(phone)
    phone.set_input("distance", 0.3)
    phone.set_input("paired", 0.0)
    assert touch(key) is False
    status = key.signals()
    assert status["LastResult"] == REJECTED_UNPAIRED
    assert status["PhoneDetected"] == 1 and status["Paired"] == 0


def test_relayed_phone_looks_near_over_ble_but_ranges_far(phone: PhoneEmulator) -> None:
    key = make_key()
    key.attach(phone)
    phone.set_input("distance", 15.0)
    phone.set_input("relay", 1.0)
    key.step(0.0)
    status = key.signals()
    assert status["BleRssi"] >= -60  # as if the phone stood at the door
    assert status["RangedDistance"] == pytest.approx(15.0)
    assert touch(key) is False
    assert key.signals()["LastResult"] == REJECTED_RANGE


def test_nobody_there(phone: PhoneEmulator) -> None:
    key = make_key()
    assert touch(key) is False
    assert key.signals() == {
        "PhoneDetected": 0,
        "Paired": 0,
        "HandleTouch": 0,
        "LastResult": REJECTED_NO_PHONE,
        "BleRssi": RSSI_NONE,
        "RangedDistance": RANGE_NA,
    }
    key.attach(phone)
    phone.set_input("distance", 200.0)  # out of BLE range
    assert touch(key) is False
    assert key.signals()["LastResult"] == REJECTED_NO_PHONE


def test_any_qualifying_phone_unlocks() -> None:
    key = make_key()
    stranger, owner = make_phone("stranger", paired=False), make_phone("owner")
    stranger.set_input("distance", 0.2)
    owner.set_input("distance", 0.8)
    key.attach(stranger)
    key.attach(owner)
    assert touch(key) is True
    assert key.decisions == [("UNLOCKED", "owner")]
    key.detach(owner)
    assert key.phones == ["stranger"]
    assert touch(key) is False


def test_status_reports_the_handle_and_the_nearest_phone(phone: PhoneEmulator) -> None:
    key = make_key()
    key.attach(phone)
    phone.set_input("distance", 3.25)
    key.step(0.0)
    assert key.signals()["LastResult"] == NONE
    key.set_input("handle_touch", 1.0)
    key.step(0.01)
    status = key.signals()
    assert status["HandleTouch"] == 1
    assert status["RangedDistance"] == pytest.approx(3.25)
    assert status["BleRssi"] == round(-59 - 20 * 0.5118833609788743)  # 20 log10(3.25)


def test_nothing_unlocks_while_the_car_moves(phone: PhoneEmulator) -> None:
    key = make_key("key_slow_unlock")
    key.attach(phone)
    phone.set_input("distance", 0.5)
    key.set_input("handle_touch", 1.0)
    assert key.step(0.0, moving=True) is False
    assert key.signals()["LastResult"] == REJECTED_MOVING
    key.set_input("handle_touch", 0.0)
    # an unlock decided at a standstill is dropped when the car moves off before it
    key.set_input("handle_touch", 1.0)
    assert key.step(1.0) is False
    assert key.step(1.0 + SLOW_UNLOCK_S, moving=True) is False
    assert key.step(2.0 + SLOW_UNLOCK_S) is False
    assert key.signals()["LastResult"] == REJECTED_MOVING


# ----- the defects


def test_defect_key_accepts_unpaired(phone: PhoneEmulator) -> None:
    key = make_key("key_accepts_unpaired")
    key.attach(phone)
    phone.set_input("distance", 0.3)
    phone.set_input("paired", 0.0)
    assert touch(key) is True


def test_defect_key_relay_attack(phone: PhoneEmulator) -> None:
    key = make_key("key_relay_attack")
    key.attach(phone)
    phone.set_input("distance", 15.0)
    assert touch(key) is False  # without the relay the weak signal still says far
    phone.set_input("relay", 1.0)
    assert touch(key, 0.1) is True


def test_defect_key_slow_unlock(phone: PhoneEmulator) -> None:
    key = make_key("key_slow_unlock")
    key.attach(phone)
    phone.set_input("distance", 0.5)
    assert touch(key, 10.0) is False
    assert key.step(10.0 + SLOW_UNLOCK_S - 0.05) is False
    assert key.step(10.0 + SLOW_UNLOCK_S) is True
    assert key.signals()["LastResult"] == UNLOCKED


# ----- bad input


def test_only_a_phone_radio_can_attach() -> None:
    key = make_key()
    with pytest.raises(EmulatorError, match="has no radio the digital key can sense"):
        key.attach(object())


@pytest.mark.parametrize("bad", [0, -1, "near", float("nan"), True])
def test_settings_are_checked(bad: object) -> None:
    with pytest.raises(EmulatorError, match="key_unlock_range_m must be a number > 0"):
        make_key(key_unlock_range_m=bad)


# ----- end to end: the car on CAN, a phone linked to it as the bench links it


@pytest.fixture
def car_and_phone() -> Iterator[tuple[EvDriver, EvEmulator, PhoneEmulator]]:
    with can_pair(ev_type.DEVICE_TYPE) as (driver, emu):
        assert isinstance(driver, EvDriver) and isinstance(emu, EvEmulator)
        link = LinkedDevice("ev", "ev", {"interface": "virtual"}, emulator=emu)
        dtype = phone_type.DEVICE_TYPE
        assert dtype.emulator is not None
        ctx = EmulatorContext(
            "phone", dtype.definition({}), (), 1.0, {}, {}, links={"car": (link,)}
        )
        phone = dtype.emulator(ctx)
        assert isinstance(phone, PhoneEmulator)
        with phone:
            assert emu.digital_key.phones == ["phone"]  # it registered itself at open
            driver.request_lock()
            driver.wait_for("BODY_Status.LockFL", "LOCKED", 1.0)
            yield driver, emu, phone
        assert emu.digital_key.phones == []  # and left at close


def test_handle_touch_unlocks_the_driver_door_on_can(
    car_and_phone: tuple[EvDriver, EvEmulator, PhoneEmulator],
) -> None:
    driver, emu, phone = car_and_phone
    t_near = time.time()
    phone.set_input("distance", 0.5)
    driver.wait_for("KEY_Status.RangedDistance", lambda v: v <= 0.6, 1.0, since=t_near)
    t_touch = time.time()
    emu.set_input("handle_touch", 1.0)
    unlocked = driver.wait_for("BODY_Status.LockFL", "UNLOCKED", 0.5, since=t_touch)
    assert unlocked.t - t_touch < 0.5
    assert driver.lock_states == {
        "FL": "UNLOCKED",
        "FR": "LOCKED",
        "RL": "LOCKED",
        "RR": "LOCKED",
    }
    assert driver.lock_result == "ACCEPTED"
    driver.wait_for("KEY_Status.LastResult", "UNLOCKED", 0.5, since=t_touch)
    driver.wait_for("KEY_Status.HandleTouch", "TOUCHED", 0.5, since=t_touch)
    assert emu.state()["digital_key"]["result"] == "UNLOCKED"


def test_relayed_phone_is_reported_and_refused_on_can(
    car_and_phone: tuple[EvDriver, EvEmulator, PhoneEmulator],
) -> None:
    driver, emu, phone = car_and_phone
    t_relay = time.time()
    phone.set_input("distance", 15.0)
    phone.set_input("relay", 1.0)
    driver.wait_for("KEY_Status.BleRssi", lambda v: v >= -60, 1.0, since=t_relay)
    driver.wait_for("KEY_Status.RangedDistance", lambda v: 14.9 <= v <= 15.1, 1.0, since=t_relay)
    assert driver.read("KEY_Status.PhoneDetected").value == 1
    t_touch = time.time()
    emu.set_input("handle_touch", 1.0)
    driver.wait_for("KEY_Status.LastResult", "REJECTED_RANGE", 0.5, since=t_touch)
    assert driver.all_locked


def test_handle_touch_is_an_ev_input_for_plans() -> None:
    definition = ev_type.DEVICE_TYPE.definition({})
    assert definition.stimuli["handle_touch"].kind == "input"
    assert "digital_key" in definition.capabilities
    assert definition.signals["KEY_Status.LastResult"].choices["REJECTED_UNPAIRED"] == 2
    assert set(EvEmulator.DEFECTS) >= {"key_accepts_unpaired", "key_relay_attack"}


def test_a_touch_while_driving_unlocks_nothing_on_can(
    car_and_phone: tuple[EvDriver, EvEmulator, PhoneEmulator],
) -> None:
    driver, emu, phone = car_and_phone
    phone.set_input("distance", 0.5)  # the owner's phone, in the car
    t_drive = driver.drive(30, accel=25)
    driver.wait_for("DRIVE_Status.VehicleSpeed", lambda v: v >= 20, 3.0, since=t_drive)
    t_touch = time.time()
    emu.set_input("handle_touch", 1.0)
    driver.wait_for("KEY_Status.LastResult", "REJECTED_MOVING", 0.5, since=t_touch)
    assert driver.all_locked
