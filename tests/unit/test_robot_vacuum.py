"""The robot vacuum end to end over its real pty, opened by pyserial.

The emulator and the driver are built through the device type, as the bench
does; the tests talk to the emulated MCU only through the real
``SerialTransport``. Plan-time durations run at a time scale of 0.1, so the
30 s drive home takes 3 s of wall time unless a setting shortens it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

import devices.robot_vacuum as vacuum_type
from devices.robot_vacuum.driver import RobotVacuumDriver
from devices.robot_vacuum.emulator import RobotVacuumEmulator
from hil.bench.registry import DriverContext, EmulatorContext
from hil.emulation.physics import PowerSource
from hil.errors import EmulatorError, ProtocolError
from hil.transports.serial import SerialTransport

SCALE = 0.1
FAST = {"poll_period_s": 0.1, "return_time_s": 5.0}  # 0.5 s home at SCALE

Bench = tuple[RobotVacuumEmulator, RobotVacuumDriver]


@contextmanager
def vacuum_bench(
    defects: tuple[str, ...] = (), settings: Mapping[str, Any] | None = None
) -> Iterator[Bench]:
    dtype = vacuum_type.DEVICE_TYPE
    definition = dtype.definition({})
    assert dtype.emulator is not None
    ctx = EmulatorContext("vacuum", definition, defects, SCALE, {**FAST, **(settings or {})}, {})
    emu = dtype.emulator(ctx)
    assert isinstance(emu, RobotVacuumEmulator)
    emu.BOOT_RETRY_S = 0.02  # pyserial flushes the first model line when it opens the port
    with emu, SerialTransport("vacuum", url=emu.endpoint["url"]) as transport:
        driver = dtype.driver(DriverContext("vacuum", transport, definition, {}))
        assert isinstance(driver, RobotVacuumDriver)
        try:
            yield emu, driver
        finally:
            driver.close()


def wait_for(cond: Callable[[], object], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def event_times(driver: RobotVacuumDriver, signal: str, since: float) -> list[float]:
    return [s.t for s in driver.samples(signal, since) if s.t >= since]


def test_definition_identity_and_power_model() -> None:
    d = vacuum_type.DEVICE_TYPE.definition({})
    assert d.signals["vacuum.status"].choices["returning"] == 3
    assert d.stimuli["vacuum.dock"].kind == "action"
    assert d.stimuli["home.occupancy"].kind == "property"
    assert d.stimuli["stuck"].kind == "input"
    with vacuum_bench(settings={"initial_battery_pct": 50}) as (emu, vacuum):
        assert vacuum.identity() == {"model": "dreame.vacuum.v4", "firmware": "0104"}
        assert vacuum.on_dock
        assert vacuum.status == "charging"
        assert isinstance(emu, PowerSource)
        charging = emu.electrical_state(230.0)
        assert charging.power_w == pytest.approx(35.0)
        assert charging.current_a == pytest.approx(35.0 / (230.0 * 0.6))
        vacuum.start_sweep()
        assert not vacuum.on_dock
        away = emu.electrical_state(230.0)
        assert away.power_w == pytest.approx(0.8)  # the dock alone; the robot runs on its battery
        assert away.power_w < charging.power_w
        assert emu.electrical_state(0.0).power_w == 0.0
        with pytest.raises(EmulatorError, match="no physical input"):
            emu.set_input("nope", 1.0)
    with vacuum_bench() as (emu, vacuum):
        assert vacuum.status == "docked"  # a full battery on the dock
        assert emu.electrical_state(230.0).power_w == pytest.approx(2.0)


def test_schedule_starts_a_clean_when_nobody_is_home() -> None:
    with vacuum_bench() as (emu, vacuum):
        vacuum.set_occupancy(False)
        since = time.time()
        vacuum.schedule_in(10)  # 1 s of wall time
        assert vacuum.get("schedule.armed") is True
        wait_for(lambda: emu.status == 1, timeout=3.0)
        started = time.time() - since
        assert 0.9 <= started <= 1.5, started
        wait_for(lambda: event_times(vacuum, "vacuum.cleaning-started", since))
        assert vacuum.status == "sweeping"
        assert vacuum.get("schedule.armed") is False
        assert vacuum.get("schedule.start-in") == 0
        # area and time count in plan seconds
        wait_for(lambda: vacuum.get("vacuum.cleaning-time") >= 5, timeout=2.0)
        assert emu.battery_pct < 100.0


def test_schedule_is_skipped_while_someone_is_home() -> None:
    with vacuum_bench() as (emu, vacuum):
        vacuum.set_occupancy(True)
        since = time.time()
        vacuum.schedule_in(5)
        wait_for(lambda: event_times(vacuum, "schedule.skipped", since), timeout=3.0)
        assert emu.skipped == 1
        assert emu.starts == 0
        assert vacuum.status == "docked"
        assert vacuum.on_dock
        assert not event_times(vacuum, "vacuum.cleaning-started", since)
        # cancelling an armed schedule: nothing fires
        vacuum.set_occupancy(False)
        vacuum.schedule_in(5)
        vacuum.schedule_in(0)
        time.sleep(0.8)
        assert emu.starts == 0
        assert vacuum.get("schedule.armed") is False


def test_defect_starts_when_home() -> None:
    with vacuum_bench(("starts_when_home",)) as (emu, vacuum):
        vacuum.set_occupancy(True)
        vacuum.schedule_in(5)
        wait_for(lambda: emu.status == 1, timeout=3.0)
        assert vacuum.status == "sweeping"


def test_pause_then_dock_drives_home_and_reports_docked() -> None:
    with vacuum_bench() as (emu, vacuum):
        vacuum.start_sweep()
        assert vacuum.status == "sweeping"
        vacuum.pause()
        assert vacuum.status == "paused"
        vacuum.start_sweep()  # resumes the same clean: no new start
        assert emu.starts == 1
        vacuum.pause()
        since = time.time()
        vacuum.dock()
        assert vacuum.status == "returning"
        wait_for(lambda: event_times(vacuum, "vacuum.docked", since), timeout=3.0)
        took = event_times(vacuum, "vacuum.docked", since)[0] - since
        assert 0.45 <= took <= 1.0, took  # return_time_s 5 at scale 0.1, on the capture clock
        assert vacuum.on_dock
        assert vacuum.status in ("charging", "docked")
        assert vacuum.get("vacuum.fault") == 0
        vacuum.dock()  # already home: nothing to do
        assert vacuum.on_dock


def test_defect_ignores_pause() -> None:
    with vacuum_bench(("ignores_pause",)) as (_emu, vacuum):
        vacuum.start_sweep()
        vacuum.pause()  # answered with success…
        assert vacuum.status == "sweeping"  # …but it keeps going


def test_defect_never_docks() -> None:
    with vacuum_bench(("never_docks",)) as (emu, vacuum):
        vacuum.start_sweep()
        vacuum.dock()
        time.sleep(1.0)  # twice the return time
        assert vacuum.status == "returning"
        assert not emu.on_dock


def test_low_battery_refuses_a_start_and_sends_it_home() -> None:
    with vacuum_bench(settings={"initial_battery_pct": 10}) as (emu, vacuum):
        with pytest.raises(ProtocolError) as err:
            vacuum.start_sweep()
        assert err.value.fields["code"] == -4004
    with vacuum_bench(settings={"initial_battery_pct": 21, "drain_rate_pct_per_s": 1.0}) as (
        emu,
        vacuum,
    ):
        vacuum.start_sweep()
        wait_for(lambda: emu.status == 3, timeout=3.0)  # 6 plan s of sweeping: 15 %
        assert vacuum.get("vacuum.fault") == 2
        wait_for(lambda: emu.on_dock, timeout=3.0)
        assert vacuum.status == "charging"


def test_stuck_wheel_stops_it_until_released() -> None:
    with vacuum_bench() as (emu, vacuum):
        vacuum.start_sweep()
        emu.set_input("stuck", 1.0)
        wait_for(lambda: emu.status == 6)
        assert vacuum.status == "error"
        assert vacuum.get("vacuum.fault") == 1
        with pytest.raises(ProtocolError):
            vacuum.dock()
        emu.set_input("stuck", 0.0)
        vacuum.dock()
        assert vacuum.status == "returning"
        assert vacuum.get("vacuum.fault") == 0
