"""The car's digital key: the unlock rule on the module, then end to end on CAN.

The module tests use real phone emulators (not opened: their radio is plain
state) and step the module as the car's 10 ms tick does. The bench tests
open the emulated bench with a phone linked to the car, touch the handle and
judge the unlock on the BODY_Status frames the bench captured.
"""

from __future__ import annotations

import pytest

import devices.phone as phone_type
from devices.ev.digital_key import (
    NONE,
    RANGE_NA,
    REJECTED_NO_PHONE,
    REJECTED_RANGE,
    REJECTED_UNPAIRED,
    RSSI_NONE,
    SLOW_UNLOCK_S,
    UNLOCKED,
    DigitalKey,
)
from devices.phone.emulator import PhoneEmulator
from hil.errors import EmulatorError
from hil.miot.spec import load_spec_cached


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
