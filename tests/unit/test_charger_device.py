"""The charger device: definition names, driver conveniences, wallbox rules, defects.

Bench side and emulator meet on a python-can ``virtual`` channel unique to
each test; timing is judged on capture timestamps. Timeouts are shortened
through settings (the defaults are 3 s hub timeout, 2 s over-draw) to keep
the suite quick.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import can
import pytest

from devices.charger import DEVICE_TYPE, ChargerDriver, ChargerEmulator
from devices.charger.driver import DBC_PATH, e2e_profile, load_database
from devices.ev import DEVICE_TYPE as EV_TYPE
from devices.ev import EvDriver, EvEmulator
from hil.bench.driver import Driver
from hil.cannode.e2e import crc8_j1850
from hil.cannode.emulator import ROBUSTNESS_DEFECTS
from hil.emulation.physics import PowerSource
from hil.errors import ConfigError, DeviceTimeout, EmulatorError
from hil.transports.can import load_dbc
from tests.can_pair import can_pair

Box = tuple[ChargerDriver, ChargerEmulator]

STATE = "EVSE_Status.PilotState"
DUTY = "EVSE_Status.PilotDuty"
ALLOWED = "EVSE_Status.AllowedCurrent"
MEASURED = "EVSE_Status.MeasuredCurrent"
ENABLED = "EVSE_Status.ChargingEnabled"
LINK = "EVSE_Status.LinkState"
REASON = "EVSE_Status.InterruptReason"
QUICK = {"hub_timeout_s": 0.3, "overdraw_s": 0.3}


@contextmanager
def wallbox(defects: tuple[str, ...] = (), /, **settings: object) -> Iterator[Box]:
    with can_pair(DEVICE_TYPE, defects, settings, definition_settings={}) as (driver, emu):
        assert isinstance(driver, ChargerDriver)
        assert isinstance(emu, ChargerEmulator)
        yield driver, emu


@pytest.fixture
def box() -> Iterator[Box]:
    with wallbox() as pair:
        yield pair


def charging(driver: ChargerDriver, limit: float = 16.0) -> tuple[float, float]:
    """Plug the car, set the hub's limit, wait for state C and a live link.

    Returns the hub frame's capture time and a moment just after the status
    frame that shows it applied: ``wait_for`` also offers the last value
    before ``since``, so a wait from there sees that frame and what followed,
    never an older one still in flight when the limit was sent.
    """
    driver.plug(True)
    t = driver.set_limit(limit)
    driver.wait_for(STATE, "C", 0.5, since=t)
    ok = driver.wait_for(LINK, "OK", 0.5, since=t)
    return t, ok.t + 1e-6


# -- definition --------------------------------------------------------------


def test_definition_names_as_plans_expect() -> None:
    d = DEVICE_TYPE.definition({})
    assert (DEVICE_TYPE.name, DEVICE_TYPE.transport, d.transport) == ("charger", "can", "can")
    assert dict(d.signals[STATE].choices) == {"A": 0, "B": 1, "C": 2, "E": 4, "F": 5}
    assert dict(d.signals[REASON].choices) == {
        "NONE": 0,
        "OVERDRAW": 1,
        "PILOT_ERROR": 2,
        "HUB_LOST": 3,
    }
    assert dict(d.signals[LINK].choices) == {"OK": 0, "LOST": 1}
    assert [d.signals[s].unit for s in (DUTY, ALLOWED, MEASURED)] == ["%", "A", "A"]
    assert d.signals["EVSE_Config.HubTimeout"].unit == "s"
    assert set(d.stimuli) == {"HUB_ChargeLimit", "HIL_EVSE_Ctrl"}
    assert set(d.stimuli["HUB_ChargeLimit"].fields) == {"CurrentLimit", "HeartbeatCounter"}
    ctrl = d.stimuli["HIL_EVSE_Ctrl"].fields
    assert set(ctrl) == {"PlugState", "PilotFault", "CarMode", "CarCurrentDemand"}
    assert dict(ctrl["PilotFault"].choices) == {"NONE": 0, "SHORT_TO_EARTH": 1}
    assert ctrl["CarCurrentDemand"].unit == "A"
    assert "Counter" not in d.stimuli  # E2E fields are the driver's job, not the plan's
    assert "ac_charging" in d.capabilities
    assert set(DEVICE_TYPE.defects) == {
        "no_fallback",
        "wrong_duty",
        "ignores_pilot_error",
        "no_overdraw_interrupt",
        "no_fallback_after_limit_change",  # sequence defects, found by exploration (XE3)
        "hub_limit_lost_on_replug",
    } | set(ROBUSTNESS_DEFECTS)  # every CAN node's, found by protocol fuzzing
    ids = {m.frame_id for m in load_database().messages}
    ev = load_dbc(DBC_PATH.parent.parent / "ev" / "ev.dbc")
    assert not ids & {m.frame_id for m in ev.messages}  # both can share one bus


def test_bad_defects_and_settings_are_refused() -> None:
    with pytest.raises(EmulatorError, match="did you mean 'wrong_duty'"):
        ChargerEmulator("c", interface="virtual", channel="unused", defects=["wrong_dutty"])
    with pytest.raises(EmulatorError, match=r"max_current_a must be within 6..51, got 63"):
        ChargerEmulator("c", interface="virtual", channel="unused", settings={"max_current_a": 63})
    with pytest.raises(EmulatorError, match="firmware must look like"):
        ChargerEmulator("c", interface="virtual", channel="unused", settings={"firmware": "x"})


# -- identity and initial state -----------------------------------------------


def test_identity_config_and_power_on_state(box: Box) -> None:
    driver, emu = box
    assert isinstance(driver, Driver)
    assert driver.identity() == {
        "model": "AC wallbox",
        "serial": "0031002517",
        "firmware": "1.4.2",
        "hardware": "rev 2",
    }
    assert driver.read("EVSE_Config.MaxCurrent").value == 32.0
    assert driver.read("EVSE_Config.HubTimeout").value == 3.0
    # no hub has spoken yet: fallback from power-on, nobody plugged in
    assert (driver.pilot_state, driver.link_state, driver.fallback_active) == ("A", "LOST", True)
    assert (driver.pilot_duty, driver.allowed_current, driver.charging_enabled) == (
        100.0,
        0.0,
        False,
    )
    assert emu.endpoint == {"interface": "virtual", "channel": emu.channel}
    assert emu.state()["limit_a"] == 6.0


def test_identity_from_settings() -> None:
    with wallbox(firmware="2.0.7", serial=42, hw_revision=5, max_current_a=16) as (driver, _):
        assert driver.identity()["serial"] == "0000000042"
        assert driver.identity()["firmware"] == "2.0.7"
        assert driver.read("EVSE_Config.MaxCurrent").value == 16.0


# -- duty ↔ amps -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "duty", "allowed"),
    [(6, 10.0, 6.0), (9.6, 16.0, 9.6), (16, 26.6, 16.0), (31.8, 53.0, 31.8), (32, 53.3, 32.0)],
)
def test_duty_follows_the_limit(box: Box, limit: float, duty: float, allowed: float) -> None:
    driver, emu = box
    driver.plug(True)
    t = driver.set_limit(limit)
    got = driver.wait_for(DUTY, duty, 0.5, since=t)
    assert got.t - t < 0.05  # sent on change, not at the next cycle
    assert driver.allowed_current == pytest.approx(allowed)
    assert driver.allowed_current <= limit + 0.05  # never more than the hub allowed
    assert (driver.pilot_state, driver.link_state, driver.fallback_active) == ("C", "OK", False)
    # the car (32 A demand by default) takes what the pilot allows
    assert driver.measured_current == pytest.approx(allowed)
    assert emu.electrical_state(230.0).power_w == pytest.approx(230.0 * allowed)


def test_below_6_a_pauses_and_resumes(box: Box) -> None:
    driver, _ = box
    charging(driver, 16)
    t = driver.set_limit(5.9)
    driver.wait_for(STATE, "B", 0.5, since=t)
    assert (driver.pilot_duty, driver.allowed_current, driver.measured_current) == (100, 0, 0)
    assert (driver.charging_enabled, driver.interrupt_reason) == (False, "NONE")
    t = driver.set_limit(10)
    driver.wait_for(ALLOWED, 10.0, 0.5, since=t)
    assert driver.pilot_state == "C"


def test_limit_clamped_to_the_installation_maximum() -> None:
    with wallbox(max_current_a=16) as (driver, _):
        driver.plug(True)
        t = driver.set_limit(32)
        driver.wait_for(DUTY, 26.6, 0.5, since=t)
        assert driver.allowed_current == pytest.approx(16.0)


def test_plug_states_and_car_demand(box: Box) -> None:
    driver, emu = box
    driver.set_limit(16)
    t = driver.car_demand(0)
    driver.wait_for(STATE, "A", 0.5, since=t)
    t = driver.plug(True)
    driver.wait_for(STATE, "B", 0.5, since=t)  # connected, the car wants nothing
    assert driver.charging_enabled  # PWM is offered all the same
    t = driver.car_demand(10)
    driver.wait_for(STATE, "C", 0.5, since=t)
    driver.wait_for(MEASURED, 10.0, 0.5, since=t)
    t = driver.plug(False)
    driver.wait_for(STATE, "A", 0.5, since=t)
    assert emu.state()["measured_current_a"] == 0.0
    assert isinstance(emu, PowerSource)
    assert emu.electrical_state(230.0).power_w == 0.0


def test_plans_generic_stimulus_path(box: Box) -> None:
    driver, _ = box
    # values as a plan sends them: choice names already coerced to numbers
    driver.stimulate("HIL_EVSE_Ctrl", {"PlugState": 1})
    t = driver.stimulate("HUB_ChargeLimit", {"CurrentLimit": 20})
    driver.wait_for(ALLOWED, 20.0, 0.5, since=t)  # 33.3 % × 0.6 A = 19.98 A, sent at 0.1 A
    beats = [v for _, v in driver.samples("HUB_ChargeLimit.HeartbeatCounter", 0)]
    driver.heartbeat()
    after = [v for _, v in driver.samples("HUB_ChargeLimit.HeartbeatCounter", 0)]
    assert after[-1] == (beats[-1] + 1) % 256  # every hub frame gets the next alive count
    assert driver.samples("HUB_ChargeLimit.CurrentLimit", t)[-1].value == 20.0  # sticky


# -- hub link ----------------------------------------------------------------------


def test_fallback_within_the_hub_timeout() -> None:
    with wallbox(**QUICK) as (driver, emu):
        t, settled = charging(driver, 16)
        lost = driver.wait_for(LINK, "LOST", 1.0, since=settled)
        # it acts a reaction margin (a quarter of this short timeout) early, never late
        assert 0.2 < lost.t - t <= 0.3
        fallback = driver.wait_for(ALLOWED, 6.0, 0.1, since=settled)
        assert fallback.t == lost.t  # the same status frame
        assert driver.fallback_active
        assert (driver.pilot_duty, driver.interrupt_reason) == (10.0, "NONE")
        assert emu.state()["limit_a"] == 6.0
        t = driver.heartbeat()  # the hub is back: its last limit applies again
        driver.wait_for(ALLOWED, 16.0, 0.5, since=t)
        assert driver.link_state == "OK"


def test_heartbeat_keeps_the_link_a_frozen_counter_does_not() -> None:
    with wallbox(**QUICK) as (driver, _):
        _, settled = charging(driver, 16)
        driver.start_heartbeat(0.1)
        with pytest.raises(DeviceTimeout, match="last value seen: OK"):
            driver.wait_for(LINK, "LOST", 0.45, since=settled)
        driver.stop_heartbeat()
        driver.wait_for(LINK, "LOST", 0.5, since=settled)
        t = driver.send_message("HUB_ChargeLimit", {"CurrentLimit": 16, "HeartbeatCounter": 200})
        ok = driver.wait_for(LINK, "OK", 0.5, since=t)
        repeat = driver.send_message(
            "HUB_ChargeLimit", {"CurrentLimit": 16, "HeartbeatCounter": 200}
        )
        lost = driver.wait_for(LINK, "LOST", 1.0, since=ok.t + 1e-6)
        assert repeat < lost.t <= t + 0.3  # the repeated counter did not refresh the link


def test_fallback_below_6_a_pauses_with_hub_lost() -> None:
    with wallbox(fallback_current_a=0, **QUICK) as (driver, _):
        _, settled = charging(driver, 16)
        driver.wait_for(REASON, "HUB_LOST", 1.0, since=settled)
        assert (driver.pilot_state, driver.allowed_current, driver.charging_enabled) == (
            "B",
            0.0,
            False,
        )


# -- pilot error and over-draw ----------------------------------------------------


def test_pilot_error_stops_charging_within_100_ms(box: Box) -> None:
    driver, emu = box
    charging(driver, 16)
    t = driver.pilot_fault(True)
    error = driver.wait_for(STATE, "E", 0.5, since=t)
    assert error.t - t <= 0.1
    zero = driver.wait_for(ALLOWED, 0.0, 0.1, since=t)
    assert zero.t - t <= 0.1
    assert (driver.interrupt_reason, driver.measured_current) == ("PILOT_ERROR", 0.0)
    # no new session while the fault lasts, whatever the car does
    driver.plug(False)
    t = driver.plug(True)
    with pytest.raises(DeviceTimeout, match="last value seen: DISABLED"):
        driver.wait_for(ENABLED, "ENABLED", 0.3, since=t)
    assert emu.state()["pilot_state"] == "E"
    t = driver.pilot_fault(False)
    driver.wait_for(STATE, "C", 0.5, since=t)
    assert driver.interrupt_reason == "NONE"


def test_overdraw_interrupts_charging() -> None:
    with wallbox(**QUICK) as (driver, emu):
        charging(driver, 16)
        t = driver.car_demand(19.2, ignore_pilot=True)  # 20 % more than the pilot allows
        driver.wait_for(MEASURED, 19.2, 0.5, since=t)
        off = driver.wait_for(ENABLED, "DISABLED", 1.0, since=t)
        assert 0.3 <= off.t - t <= 0.5
        assert (driver.interrupt_reason, driver.pilot_state) == ("OVERDRAW", "B")
        assert (driver.allowed_current, driver.measured_current) == (0.0, 0.0)
        t = driver.car_demand(16)  # the interrupt is latched: a fixed car is not enough
        with pytest.raises(DeviceTimeout):
            driver.wait_for(ENABLED, "ENABLED", 0.2, since=t)
        driver.plug(False)
        t = driver.plug(True)  # a new session
        driver.wait_for(STATE, "C", 0.5, since=t)
        assert emu.state()["interrupt_reason"] == "NONE"


def test_a_little_overdraw_is_tolerated() -> None:
    # a long hub timeout: the link must not fall back to 6 A during this test
    with wallbox(hub_timeout_s=5.0, overdraw_s=0.3) as (driver, _):
        charging(driver, 16)
        t = driver.car_demand(19.1, ignore_pilot=True)
        with pytest.raises(DeviceTimeout, match="last value seen: ENABLED"):
            driver.wait_for(ENABLED, "DISABLED", 0.5, since=t)


# -- defects -----------------------------------------------------------------------


def test_defect_no_fallback() -> None:
    with wallbox(("no_fallback",), **QUICK) as (driver, _):
        _, settled = charging(driver, 16)
        driver.wait_for(LINK, "LOST", 1.0, since=settled)
        assert (driver.fallback_active, driver.allowed_current) == (False, 16.0)


def test_defect_wrong_duty_allows_20_percent_more() -> None:
    with wallbox(("wrong_duty",)) as (driver, _):
        driver.plug(True)
        t = driver.set_limit(16)
        driver.wait_for(DUTY, 32.0, 0.5, since=t)
        assert driver.allowed_current == pytest.approx(19.2)
        assert driver.measured_current == pytest.approx(19.2)


def test_defect_ignores_pilot_error() -> None:
    with wallbox(("ignores_pilot_error",)) as (driver, emu):
        charging(driver, 16)
        t = driver.pilot_fault(True)
        with pytest.raises(DeviceTimeout, match="last value seen: C"):
            driver.wait_for(STATE, "E", 0.3, since=t)
        assert (driver.allowed_current, driver.measured_current) == (16.0, 16.0)
        assert emu.state()["pilot_short"]


def test_defect_no_overdraw_interrupt() -> None:
    with wallbox(("no_overdraw_interrupt",), **QUICK) as (driver, _):
        charging(driver, 16)
        t = driver.car_demand(25, ignore_pilot=True)
        with pytest.raises(DeviceTimeout, match="last value seen: ENABLED"):
            driver.wait_for(ENABLED, "DISABLED", 0.6, since=t)
        assert driver.measured_current == 25.0


# -- E2E ------------------------------------------------------------------------------


def test_status_is_e2e_protected_and_forgeries_are_dropped(box: Box) -> None:
    driver, _ = box
    t = driver.plug(True)
    driver.wait_for(STATE, "C", 0.5, since=t)
    status = load_database().get_message_by_name("EVSE_Status")
    capture = driver.transport.capture
    deadline = time.monotonic() + 1.0
    while len(raw := capture.records(key=status.frame_id)) < 4 and time.monotonic() < deadline:
        capture.wait_beyond(capture.seq, 0.05)
    counters = [r.data.data[6] & 0x0F for r in raw[-4:]]
    assert counters == [(counters[0] + i) % 16 for i in range(4)]
    spec = e2e_profile().get("EVSE_Status")
    assert spec is not None
    for rec in raw[-4:]:
        data = rec.data.data
        assert data[7] == spec.checksum_of(data)
        assert data[7] == crc8_j1850(bytes([0x80]) + bytes(data[:7]))
    assert driver.e2e_errors == 0
    # a second node forges a "charging at 32 A" status with a bad checksum
    forged = bytearray(
        status.encode(
            {s.name: 0 for s in status.signals} | {"PilotState": 2, "AllowedCurrent": 32.0}
        )
    )
    forged[7] ^= 0x5A
    with can.Bus(interface="virtual", channel=driver.transport.channel) as rogue:
        rogue.send(can.Message(arbitration_id=status.frame_id, is_extended_id=False, data=forged))
        t = driver.car_demand(0)  # a later status frame proves the forged one was seen
        driver.wait_for(STATE, "B", 0.5, since=t)
    assert driver.e2e_errors >= 1
    assert "EVSE_Status: checksum" in driver.e2e_error_details
    assert 32.0 not in {s.value for s in driver.samples(ALLOWED, 0)}


# -- error paths ------------------------------------------------------------------------


def test_errors_name_what_would_work(box: Box, tmp_path: Path) -> None:
    driver, _ = box
    with pytest.raises(ConfigError, match="did you mean 'HUB_ChargeLimit'"):
        driver.stimulate("HUB_ChargeLimt", {})
    with pytest.raises(ConfigError, match="did you mean 'CurrentLimit'"):
        driver.stimulate("HUB_ChargeLimit", {"CurentLimit": 3})
    with pytest.raises(ConfigError, match="did you mean 'EVSE_Status.AllowedCurrent'"):
        driver.wait_for("EVSE_Status.AllowedCurent", 0, 0.1)
    with pytest.raises(ConfigError, match="cannot encode"):
        driver.set_limit(500)
    with pytest.raises(DeviceTimeout, match="last value seen: A"):
        driver.wait_for(STATE, "C", 0.05)
    with pytest.raises(ConfigError, match="period must be > 0"):
        driver.start_heartbeat(0)
    driver.check_link()
    [log] = driver.write_evidence(tmp_path)
    assert log.name == "charger.asc" and log.stat().st_size > 0


# -- a car wired to the inlet (the bench's wiring: {inlet: charger}) -------------------

Wired = tuple[ChargerDriver, ChargerEmulator, EvDriver, EvEmulator]


@contextmanager
def wired(car_defects: tuple[str, ...] = (), /, **settings: object) -> Iterator[Wired]:
    """A wallbox and a car whose inlet is wired to it, each on its own bus."""
    with (
        wallbox(**settings) as (box_driver, box_emu),
        can_pair(EV_TYPE, car_defects, {}, wiring={"inlet": box_emu}) as (car_driver, car_emu),
    ):
        assert isinstance(car_driver, EvDriver)
        assert isinstance(car_emu, EvEmulator)
        yield box_driver, box_emu, car_driver, car_emu


def test_a_wired_car_follows_the_pilot_and_the_wallbox_measures_it() -> None:
    with wired() as (box_driver, box_emu, car, _car_emu):
        assert box_emu.state()["car_wired"]
        # the simulated car's demand means nothing now: the wired car decides
        box_driver.car_demand(0)
        t, _ = charging(box_driver, 31.8)
        car.wait_for("OBC_Status.ChargeState", "CHARGING", 1.0, since=t)
        car.wait_for("OBC_Status.ChargeLineCurrent", 31.8, 1.0, since=t)
        box_driver.wait_for(MEASURED, 31.8, 1.0, since=t)
        t = box_driver.set_limit(9.6)
        car.wait_for("OBC_Status.PilotCurrent", 9.6, 1.0, since=t)
        followed = car.wait_for("OBC_Status.ChargeLineCurrent", 9.6, 1.0, since=t)
        assert followed.t - t < 0.2
        box_driver.wait_for(MEASURED, 9.6, 1.0, since=t)
        t = box_driver.set_limit(5.0)  # below 6 A: the wallbox pauses, the car waits
        car.wait_for("OBC_Status.ChargeState", "PAUSED", 1.0, since=t)
        assert car.read("OBC_Status.ChargeLineCurrent").value == 0
        box_driver.wait_for(STATE, "B", 1.0, since=t)
        t = box_driver.plug(False)
        car.wait_for("OBC_Status.ChargeState", "NOT_CONNECTED", 1.0, since=t)
    assert not box_emu.state()["car_wired"]  # the car closed first: the cable is gone


def test_a_wired_car_stops_on_a_pilot_error_and_no_session_starts() -> None:
    with wired() as (box_driver, _, car, _car_emu):
        car.stimulate("HIL_VehicleSim", {"HvRequest": 0})  # parked: HV for charging only
        t, _ = charging(box_driver)
        car.wait_for("BMS_Status.ContactorState", "CLOSED", 1.0, since=t)
        t = box_driver.pilot_fault(True)
        stopped = car.wait_for("OBC_Status.ChargeLineCurrent", 0, 0.5, since=t)
        opened = car.wait_for("BMS_Status.ContactorState", "OPEN", 0.5, since=t)
        assert max(stopped.t, opened.t) - t < 0.1
        assert car.read("OBC_Status.PilotStatus").value == 3  # ERROR
        time.sleep(0.3)
        assert car.read("OBC_Status.ChargeState").value == 4  # FAULT, no new session
        assert car.read("BMS_Status.ContactorState").value == 0
        t = box_driver.pilot_fault(False)
        car.wait_for("OBC_Status.ChargeState", "CHARGING", 1.5, since=t)


def test_a_wired_car_drawing_too_much_is_interrupted() -> None:
    with wired(overdraw_s=0.3) as (box_driver, _, car, car_emu):
        t, _ = charging(box_driver, 16)
        car.wait_for("OBC_Status.ChargeLineCurrent", 16, 1.0, since=t)
        t = time.time()
        car_emu.set_input("obc_overdraw_percent", 20)
        box_driver.wait_for(MEASURED, 19.2, 1.0, since=t)
        box_driver.wait_for(REASON, "OVERDRAW", 1.0, since=t)
        car.wait_for("OBC_Status.ChargeLineCurrent", 0, 0.5, since=t)


@pytest.mark.parametrize(
    ("defect", "drawn"),
    [("ignores_pilot_drop", 31.8), ("overdraw", 9.6 * 1.2)],
)
def test_car_defects_over_the_wire(defect: str, drawn: float) -> None:
    with wired((defect,)) as (box_driver, _, car, _car_emu):
        t, _ = charging(box_driver, 31.8)
        car.wait_for("OBC_Status.ChargeState", "CHARGING", 1.0, since=t)
        t = box_driver.set_limit(9.6)
        read = car.wait_for("OBC_Status.PilotCurrent", 9.6, 1.0, since=t)
        time.sleep(0.15)  # a healthy car has followed by now (test above: < 0.2 s)
        seen = box_driver.wait_for(MEASURED, lambda a: a > 9.7, 1.0, since=read.t + 0.1)
        assert seen.value == pytest.approx(drawn, abs=0.1)


def test_defect_draws_after_pilot_error_keeps_asking() -> None:
    with wired(("draws_after_pilot_error",)) as (box_driver, _, car, _car_emu):
        charging(box_driver)
        t = box_driver.pilot_fault(True)
        time.sleep(0.3)
        assert car.read("BMS_Safety.ChargeRequest").value >= 6
        assert car.read("BMS_Status.ContactorState").value == 2  # CLOSED
        box_driver.wait_for(STATE, "E", 0.5, since=t)  # the wallbox did its part


def test_wiring_is_checked() -> None:
    with wallbox() as (_, box_emu):
        with pytest.raises(EmulatorError, match="only wiring channel is 'inlet'"):
            EvEmulator("ev", interface="virtual", channel="x", wiring={"plug": box_emu})
        with (
            pytest.raises(EmulatorError, match="already wired"),
            can_pair(EV_TYPE, (), {}, wiring={"inlet": box_emu}),
        ):
            box_emu.connect_car()
    other_car = EvEmulator("ev2", interface="virtual", channel="y")
    with pytest.raises(EmulatorError, match="wired to 'ev2', which is not a wallbox"):
        EvEmulator("ev", interface="virtual", channel="x", wiring={"inlet": other_car})
    with pytest.raises(EmulatorError, match="no wiring channels"):
        ChargerEmulator("c", interface="virtual", channel="x", wiring={"inlet": box_emu})


def test_a_wallbox_that_goes_dead_drops_the_pilot_and_the_wired_car_stops() -> None:
    with wired() as (box_driver, box_emu, car, car_emu):
        t, _ = charging(box_driver, 16.0)
        car.wait_for("OBC_Status.ChargeLineCurrent", 16.0, 1.0, since=t)
        gone = time.time()
        box_emu.close()  # the wallbox loses power; the cable stays in the car's inlet
        car.wait_for("OBC_Status.PilotStatus", "ERROR", 1.0, since=gone)
        car.wait_for("OBC_Status.ChargeLineCurrent", 0.0, 1.0, since=gone)
        assert car_emu.obc.line_a == 0.0
