"""The smart_plug device type, end to end over a real pty opened by pyserial."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import serial

from devices.smart_plug import DEVICE_TYPE, SPEC_PATH
from devices.smart_plug.driver import SmartPlugDriver
from devices.smart_plug.emulator import SmartPlugEmulator
from hil.bench.driver import Driver, PropertyDevice
from hil.bench.registry import DriverContext, EmulatorContext, get_device_type
from hil.emulation.physics import PowerSource
from hil.errors import ConfigError, EmulatorError, TransportOpenError
from hil.lifecycle import open_resources
from hil.miot.mcu import ROBUSTNESS_DEFECTS
from hil.transports.serial import SerialTransport

Plug = tuple[SmartPlugEmulator, SmartPlugDriver]
FAST = {"poll_period_s": 0.1}


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    yield
    assert open_resources() == []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and _hil_threads():
        time.sleep(0.01)
    assert _hil_threads() == []


def _hil_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("hil-")]


@contextmanager
def plug_on_bench(
    defects: tuple[str, ...] = (), settings: Mapping[str, Any] | None = None
) -> Iterator[Plug]:
    """Emulator and driver built through the device type, as the bench does."""
    definition = DEVICE_TYPE.definition({})
    assert DEVICE_TYPE.emulator is not None
    emu = DEVICE_TYPE.emulator(
        EmulatorContext("plug", definition, defects, 1.0, {**FAST, **(settings or {})}, {})
    )
    assert isinstance(emu, SmartPlugEmulator)
    with emu, SerialTransport("plug", url=emu.endpoint["url"]) as transport:
        driver = DEVICE_TYPE.driver(DriverContext("plug", transport, definition, {}))
        assert isinstance(driver, SmartPlugDriver)
        try:
            yield emu, driver
        finally:
            driver.close()


@pytest.fixture
def plug() -> Iterator[Plug]:
    with plug_on_bench(settings={"trip_delay_s": 0.2}) as p:
        yield p


def wait_for(cond: Callable[[], object], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def values(driver: SmartPlugDriver, signal: str, since: float) -> list[Any]:
    return [s.value for s in driver.samples(signal, since) if s.t >= since]


# ----- the device type


def test_device_type_is_registered_and_its_definition_opens_nothing() -> None:
    assert get_device_type("smart_plug") is DEVICE_TYPE
    d = DEVICE_TYPE.definition({})
    assert open_resources() == []
    assert {
        "switch.on",
        "switch.overload",
        "power-consumption.electric-power",
        "power-consumption.electric-current",
    } <= set(d.signals)
    assert d.signals["power-consumption.electric-power"].unit == "W"
    assert d.signals["power-consumption.electric-current"].unit == "A"
    assert d.signals["switch.overload"].kind == "bool"
    assert d.stimuli["switch.on"].kind == "property"
    assert d.stimuli["load_current"].kind == "input"
    assert list(d.stimuli["load_current"].fields) == ["value"]
    assert d.files == (SPEC_PATH,)
    assert set(DEVICE_TYPE.defects) == {
        "no_overcurrent_trip",
        "high_standby",
        "slow_poll",
        "no_overload_event",
        "meter_gain_error",
        "no_weld_detection",
        "report_flood",
        "bad_error_code",
    } | set(ROBUSTNESS_DEFECTS)  # every MIoT MCU's, found by protocol fuzzing
    assert d.stimuli["relay_welded"].kind == "input"
    assert d.signals["switch.fault"].choices["welded-relay"] == 2


def test_endpoint_is_a_real_tty_opened_by_pyserial(plug: Plug) -> None:
    emu, driver = plug
    path = emu.endpoint["url"]
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        assert os.isatty(fd)
    finally:
        os.close(fd)
    assert type(serial.serial_for_url(path, do_not_open=True)) is serial.Serial
    assert isinstance(driver, Driver)
    assert isinstance(driver, PropertyDevice)
    assert isinstance(emu, PowerSource)


def test_a_missing_serial_port_names_the_device(tmp_path: Path) -> None:
    transport = SerialTransport("kitchen-plug", url=str(tmp_path / "ttyUSB9"))
    with pytest.raises(TransportOpenError, match="kitchen-plug") as info:
        transport.open()
    assert info.value.device == "kitchen-plug"


def test_identity_comes_from_the_boot_lines(plug: Plug) -> None:
    _, driver = plug
    assert driver.identity() == {"model": "cuco.plug.v3", "firmware": "0001"}


# ----- switching and metering


def test_switch_and_meter(plug: Plug) -> None:
    emu, driver = plug
    assert driver.is_on is False
    assert driver.power_w == pytest.approx(0.32)
    emu.set_input("load_current", 5.0)
    since = time.time()
    t = driver.stimulate("switch.on", {"value": True})
    assert since <= t <= time.time()
    assert emu.relay_closed
    assert driver.is_on is True
    wait_for(lambda: driver.power_w > 1000)
    assert driver.power_w == pytest.approx(0.9 + 230 * 5.0, abs=0.02)
    assert driver.current_a == pytest.approx(5.0, abs=0.02)
    wait_for(lambda: True in values(driver, "switch.on", since))
    driver.switch(False)
    assert not emu.relay_closed
    assert driver.read("switch.on").value is False


def test_power_model_feeds_the_analyzer(plug: Plug) -> None:
    emu, driver = plug
    standby = emu.electrical_state(230.0)
    assert standby.power_w == pytest.approx(0.32)
    assert standby.current_a == pytest.approx(0.32 / (230 * standby.power_factor))
    assert 0.1 < standby.power_factor < 0.6
    driver.switch(True)
    emu.set_input("load_current", 2.0)
    loaded = emu.electrical_state(230.0)
    assert loaded.power_w == pytest.approx(0.9 + 460.0)
    assert 0.95 < loaded.power_factor <= 1.0


def test_load_current_is_a_bench_input_not_a_device_stimulus(plug: Plug) -> None:
    emu, driver = plug
    with pytest.raises(ConfigError, match="bench input"):
        driver.stimulate("load_current", {"value": 12.0})
    with pytest.raises(EmulatorError, match="did you mean 'load_current'"):
        emu.set_input("load_curent", 1.0)
    with pytest.raises(ConfigError, match="did you mean 'switch.on'"):
        driver.stimulate("switch.of", {"value": True})


# ----- overcurrent (scenario A1)


def test_overload_trips_reports_and_raises_the_event() -> None:
    with plug_on_bench() as (emu, driver):  # the default 10 A / 0.5 s trip
        driver.switch(True)
        since = time.time()
        emu.set_input("load_current", 12.0)
        wait_for(lambda: driver.samples("switch.overload", since), timeout=2.5)
        wait_for(lambda: False in values(driver, "switch.on", since), timeout=2.5)
        off = next(s.t for s in driver.samples("switch.on", since) if s.value is False)
        assert off - since <= 2.0
        assert not emu.relay_closed
        assert emu.trips == 1
        assert driver.get("switch.fault") == 1
        assert driver.get("switch.overload-current") == pytest.approx(12.0)
        assert "event_occured 2 1 3 12.0" in [r.data for r in driver.transport.capture.records()]


def test_exactly_the_rated_current_never_trips(plug: Plug) -> None:
    emu, driver = plug
    driver.switch(True)
    emu.set_input("load_current", 10.0)
    since = time.time()
    wait_for(lambda: time.time() - since > 3 * emu.trip_delay_s)
    assert emu.relay_closed
    assert driver.samples("switch.overload", since) == []


def test_switching_on_again_after_a_trip_clears_the_fault(plug: Plug) -> None:
    emu, driver = plug
    driver.switch(True)
    emu.set_input("load_current", 15.0)
    wait_for(lambda: emu.trips == 1)
    emu.set_input("load_current", 1.0)
    driver.switch(True)
    assert driver.get("switch.fault") == 0
    assert emu.relay_closed


# ----- welded relay (scenario A5)


def test_a_welded_relay_opens_the_secondary_cutoff() -> None:
    with plug_on_bench() as (emu, driver):  # the default 0.2 s weld confirmation
        driver.switch(True)
        emu.set_input("load_current", 5.0)
        emu.set_input("relay_welded", 1.0)
        assert emu.conducting  # welded while commanded closed: nothing to see yet
        since = time.time()
        driver.switch(False)
        wait_for(lambda: driver.samples("switch.relay-fault", since), timeout=2.0)
        fault_t = next(s.t for s in driver.samples("switch.relay-fault", since) if s.t >= since)
        assert 0.2 <= fault_t - since <= 1.0
        assert emu.weld_faults == 1
        assert emu.contacts_closed and not emu.conducting
        assert driver.get("switch.fault") == 2
        assert driver.get("switch.cutoff") is True
        assert driver.get("switch.relay-feedback") is True
        # the cut-off really cuts: only the plug's own standby draw is left
        assert emu.electrical_state(230.0).power_w == pytest.approx(0.32)
        wait_for(lambda: driver.current_a < 0.01, timeout=2.5)
        # still welded: a switch-on cannot re-arm it
        driver.switch(True)
        assert driver.get("switch.cutoff") is True
        assert driver.get("switch.fault") == 2
        # repaired: the contacts open, and the next switch-on re-arms the cut-off
        emu.set_input("relay_welded", 0.0)
        driver.switch(False)
        wait_for(lambda: driver.get("switch.relay-feedback") is False, timeout=2.5)
        driver.switch(True)
        assert driver.get("switch.cutoff") is False
        assert driver.get("switch.fault") == 0
        assert emu.conducting
        assert emu.weld_faults == 1


def test_an_overload_on_a_welded_relay_ends_at_the_cutoff() -> None:
    with plug_on_bench(settings={"trip_delay_s": 0.1}) as (emu, driver):
        driver.switch(True)
        emu.set_input("relay_welded", 1.0)
        emu.set_input("load_current", 14.0)
        wait_for(lambda: emu.trips == 1)
        wait_for(lambda: emu.weld_faults == 1, timeout=2.0)
        assert not emu.conducting


# ----- defects


def test_defect_no_weld_detection() -> None:
    with plug_on_bench(("no_weld_detection",)) as (emu, driver):
        driver.switch(True)
        emu.set_input("load_current", 5.0)
        emu.set_input("relay_welded", 1.0)
        driver.switch(False)
        time.sleep(0.6)  # three times the weld confirmation
        assert emu.weld_faults == 0
        assert emu.conducting  # the outlet is live although switched off
        assert driver.get("switch.fault") == 0
        assert driver.get("switch.relay-feedback") is True


def test_defect_report_flood() -> None:
    with plug_on_bench(("report_flood",)) as (emu, driver):
        driver.switch(True)
        since = time.time()
        time.sleep(1.0)
        power = [s.t for s in driver.samples("power-consumption.electric-power", since)]
        power = [t for t in power if t >= since]
        assert len(power) >= 4  # unchanged, yet reported at every poll
        assert min(b - a for a, b in zip(power, power[1:], strict=False)) < 0.5


def test_defect_bad_error_code() -> None:
    with plug_on_bench(("bad_error_code",)) as (_emu, driver):
        reply = driver.request("no_such_method").reply
        assert reply is not None
        assert reply.command == "error"
        assert reply.args[-1] == -4003
    with plug_on_bench() as (_emu, driver):
        reply = driver.request("no_such_method").reply
        assert reply is not None
        assert reply.command == "error"
        assert -9999 <= int(reply.args[-1]) <= -5000


def test_defect_no_overcurrent_trip() -> None:
    with plug_on_bench(("no_overcurrent_trip",), {"trip_delay_s": 0.1}) as (emu, driver):
        driver.switch(True)
        emu.set_input("load_current", 20.0)
        since = time.time()
        wait_for(lambda: time.time() - since > 0.5)
        assert emu.relay_closed
        assert emu.trips == 0


def test_defect_high_standby() -> None:
    with plug_on_bench(("high_standby",)) as (emu, driver):
        assert emu.electrical_state(230.0).power_w == pytest.approx(0.65)
        assert driver.power_w == pytest.approx(0.65)


def test_defect_slow_poll() -> None:
    with plug_on_bench(("slow_poll",)) as (emu, driver):
        driver.identity()
        wait_for(lambda: emu.polls >= 3)
        polls = [
            r.t
            for r in driver.transport.capture.records()
            if r.direction == "rx" and r.data == "get_down"
        ]
        gaps = [b - a for a, b in zip(polls, polls[1:], strict=False)]
        assert min(gaps) > 0.3  # the rule is 0.1–0.2 s
        assert emu.state()["poll_period_s"] == 0.4


def test_defect_no_overload_event() -> None:
    with plug_on_bench(("no_overload_event",), {"trip_delay_s": 0.1}) as (emu, driver):
        driver.switch(True)
        since = time.time()
        emu.set_input("load_current", 12.0)
        # the fault report leaves in the same flush the event would have
        wait_for(lambda: 1 in values(driver, "switch.fault", since))
        assert emu.trips == 1
        assert driver.samples("switch.overload", since) == []


# ----- evidence


def test_evidence_is_the_serial_transcript(plug: Plug, tmp_path: Path) -> None:
    _, driver = plug
    driver.switch(True)
    [path] = driver.write_evidence(tmp_path)
    assert path.name == "plug.serial.jsonl"
    text = path.read_text()
    assert "down set_properties 2 1 true" in text
    assert '"dir": "rx"' in text
