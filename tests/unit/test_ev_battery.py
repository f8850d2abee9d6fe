"""The car's battery: the BMS model on its own, then through CAN with physical inputs.

The model tests step ``Battery`` by hand (no threads, no clock); the CAN
tests run the emulator on a virtual channel against the real driver and judge
on capture timestamps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from devices.ev import DEVICE_TYPE, EvDriver, EvEmulator
from devices.ev import battery as b
from devices.ev.battery import Battery, Limits
from devices.ev.diagnostics import DTC_CELL_OVERTEMP, DTC_CELL_OVERVOLTAGE, DTC_ISOLATION
from hil.errors import EmulatorError
from tests.can_pair import can_pair

TICK = 0.01
Car = tuple[EvDriver, EvEmulator]


def pack(*defects: str) -> Battery:
    return Battery(Limits(), frozenset(defects), soc=80.0)


def run(bat: Battery, seconds: float, *, hv: bool = True) -> list[tuple[float, int, float]]:
    """Step ``bat``; (time, contactor, link voltage) after every tick."""
    out = []
    for i in range(round(seconds / TICK)):
        bat.step(TICK, hv_wanted=hv, current_a=10.0)
        out.append(((i + 1) * TICK, bat.contactor, bat.link_v))
    return out


# -- the model -----------------------------------------------------------------


def test_precharge_closes_at_95_percent_of_the_pack_within_500_ms() -> None:
    bat = pack()
    trace = run(bat, 1.0)
    states = [c for _, c, _ in trace]
    assert states[0] == b.PRECHARGE
    closed_at = next(i for i, c in enumerate(states) if c == b.CLOSED)
    assert set(states[:closed_at]) == {b.PRECHARGE}
    t, _, link = trace[closed_at]
    assert link >= 0.95 * bat.pack_v * 0.999  # the link voltage it closed at
    assert t <= 0.5
    assert trace[closed_at - 1][2] < 0.95 * bat.pack_v  # not a tick earlier


def test_opening_discharges_the_link_and_a_precharge_that_fails_is_a_fault() -> None:
    bat = pack()
    run(bat, 1.0)
    run(bat, 0.5, hv=False)
    assert bat.contactor == b.OPEN
    assert bat.link_v < 60.0  # below touch-safe voltage
    slow = Battery(Limits(precharge_tau_s=1.0), frozenset(), soc=80.0)  # a broken resistor
    trace = run(slow, 1.0)
    assert slow.contactor == b.FAULT
    assert all(c != b.CLOSED for _, c, _ in trace)
    run(slow, 0.1, hv=False)
    assert slow.contactor == b.OPEN  # withdrawing the request clears the fault


def test_defect_closes_without_precharge() -> None:
    bat = pack("closes_without_precharge")
    bat.step(TICK, hv_wanted=True, current_a=0.0)
    assert (bat.contactor, bat.link_v) == (b.CLOSED, 0.0)


def test_isolation_threshold_is_100_ohm_per_volt_of_the_pack() -> None:
    bat = pack()
    threshold_kohm = 100.0 * bat.pack_v / 1000.0  # about 40 kOhm at 400 V
    bat.set_input("isolation_kohm", threshold_kohm + 1)
    assert not bat.isolation_fault
    bat.set_input("isolation_kohm", 30)
    assert bat.isolation_fault and bat.charge_blocked
    assert bat.signals()["BMS_Safety"]["IsolationFault"] == 1
    blind = pack("no_isolation_monitor")
    blind.set_input("isolation_kohm", 30)
    assert not blind.isolation_fault
    assert blind.signals()["BMS_Safety"]["IsolationResistance"] == 30  # it measures, never acts


@pytest.mark.parametrize(
    ("temp", "state", "limit"),
    [(25, b.NORMAL, 100), (45, b.DERATE, 50), (55, b.WARNING, 25), (65, b.SHUTDOWN, 0)],
)
def test_thermal_states(temp: float, state: int, limit: int) -> None:
    bat = pack()
    bat.set_input("cell_temp_max_c", temp)
    run(bat, 0.5)
    assert (bat.thermal, bat.power_limit) == (state, limit)
    assert (bat.contactor == b.CLOSED) == (state != b.SHUTDOWN)


def test_shutdown_latches_until_the_pack_is_below_derating() -> None:
    bat = pack()
    bat.set_input("cell_temp_max_c", 65)
    run(bat, 0.1)
    bat.set_input("cell_temp_max_c", 50)
    run(bat, 0.1)
    assert bat.thermal == b.SHUTDOWN
    bat.set_input("cell_temp_max_c", 30)
    run(bat, 1.0)
    assert (bat.thermal, bat.contactor) == (b.NORMAL, b.CLOSED)


def test_defect_no_thermal_derate() -> None:
    bat = pack("no_thermal_derate")
    bat.set_input("cell_temp_max_c", 45)
    run(bat, 0.1)
    assert (bat.thermal, bat.power_limit) == (b.NORMAL, 100)


def test_overvoltage_blocks_charging_and_its_defect_does_not() -> None:
    bat = pack()
    bat.set_input("cell_voltage_max_v", 4.10)
    assert not bat.overvoltage
    bat.set_input("cell_voltage_max_v", 4.15)
    assert bat.overvoltage and bat.charge_blocked
    blind = pack("no_overvoltage_stop")
    blind.set_input("cell_voltage_max_v", 4.30)
    assert not blind.overvoltage and not blind.charge_blocked


def test_sensor_readings_saturate_at_the_dbc_range() -> None:
    bat = pack()
    bat.set_input("cell_temp_max_c", 200)
    bat.set_input("isolation_kohm", 1e9)
    cells = bat.signals()
    assert cells["BMS_Cells"]["CellTempMax"] == 87.5
    assert cells["BMS_Safety"]["IsolationResistance"] == 65535


def test_limits_are_checked() -> None:
    with pytest.raises(EmulatorError, match="derate_temp_c < warn_temp_c"):
        Limits.from_settings({"warn_temp_c": 70}, "ev")
    with pytest.raises(EmulatorError, match="precharge_tau_s must be > 0"):
        Limits.from_settings({"precharge_tau_s": 0}, "ev")
    with pytest.raises(EmulatorError, match="cell_overvoltage_v must be a number"):
        Limits.from_settings({"cell_overvoltage_v": "high"}, "ev")


# -- through CAN ---------------------------------------------------------------------


@contextmanager
def car(defects: tuple[str, ...] = ()) -> Iterator[Car]:
    with can_pair(DEVICE_TYPE, defects, {}) as (driver, emu):
        assert isinstance(driver, EvDriver)
        assert isinstance(emu, EvEmulator)
        yield driver, emu


def test_inputs_reach_the_bus_and_faults_set_their_dtcs() -> None:
    with car() as (driver, emu):
        driver.wait_for("BMS_Status.ContactorState", "CLOSED", 1.0)
        emu.set_input("isolation_kohm", 30)
        driver.wait_for("BMS_Safety.IsolationFault", "FAULT", 0.5)
        assert driver.read("BMS_Safety.IsolationResistance").value == 30
        emu.set_input("cell_voltage_max_v", 4.2)
        driver.wait_for("BMS_Safety.CellOverVoltage", "FAULT", 0.5)
        driver.wait_for("BMS_Cells.CellVoltageMax", 4.2, 0.5)  # cyclic: the next 100 ms frame
        t = time.time()
        emu.set_input("cell_temp_max_c", 65)
        off = driver.wait_for("BMS_Status.ContactorState", "OPEN", 0.5, since=t)
        assert off.t - t < 0.1  # sent on change, not at the next 100 ms cycle
        assert driver.read("BMS_Safety.ThermalState").value == b.SHUTDOWN
        codes = dict(driver.uds.read_dtcs(0xFF))
        assert {DTC_ISOLATION, DTC_CELL_OVERVOLTAGE, DTC_CELL_OVERTEMP} <= set(codes)
        assert driver.read("uds.dtc.P0AA600").value == codes[DTC_ISOLATION]
        assert driver.read("uds.dtc.U011187").value == 0  # no timeout: not listed
        assert driver.e2e_errors == 0  # BMS_Safety is E2E protected and arrives intact


def test_hv_request_off_opens_and_on_precharges_again() -> None:
    with car() as (driver, _):
        driver.wait_for("BMS_Status.ContactorState", "CLOSED", 1.0)
        t = driver.stimulate("HIL_VehicleSim", {"HvRequest": 0})
        driver.wait_for("BMS_Status.ContactorState", "OPEN", 0.5, since=t)
        t = driver.stimulate("HIL_VehicleSim", {"HvRequest": 1})
        pre = driver.wait_for("BMS_Status.ContactorState", "PRECHARGE", 0.5, since=t)
        closed = driver.wait_for("BMS_Status.ContactorState", "CLOSED", 1.0, since=pre.t)
        assert closed.t - pre.t <= 0.5
        frames = driver.frames("BMS_Status", closed.t)
        assert frames[0][1]["LinkVoltage"] >= 0.95 * frames[0][1]["PackVoltage"]
