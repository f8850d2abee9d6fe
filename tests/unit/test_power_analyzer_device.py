"""The power analyzer end to end: driver → pyvisa-py TCPIP SOCKET → emulator → wired load."""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from pyvisa_py.tcpip import TCPIPSocketSession

from devices.power_analyzer import DEVICE_TYPE
from devices.power_analyzer.driver import PowerAnalyzerDriver
from devices.power_analyzer.emulator import PowerAnalyzerEmulator
from hil.bench.bench import open_bench
from hil.bench.driver import Driver, PowerMeter
from hil.bench.loader import load_bench
from hil.bench.registry import DriverContext, EmulatorContext, get_device_type
from hil.emulation.base import Emulator
from hil.emulation.physics import HOUSEHOLD, ElectricalState, HouseholdFeed, wired
from hil.errors import (
    BenchError,
    ConfigError,
    DeviceLost,
    DeviceTimeout,
    EmulatorError,
    ProtocolError,
    TransportOpenError,
)
from hil.lifecycle import open_resources
from hil.transports.visa import VisaTransport

STANDBY_W = 0.31
DEFINITION = DEVICE_TYPE.definition({})


class StandbyLoad:
    """A physics link: an appliance drawing a fixed standby power at power factor 0.3."""

    def __init__(self, power_w: float = STANDBY_W, pf: float = 0.299) -> None:
        self.power_w, self.pf = power_w, pf

    def electrical_state(self, supply_v: float) -> ElectricalState:
        current = self.power_w / (supply_v * self.pf) if supply_v else 0.0
        return ElectricalState(supply_v, current, self.power_w, self.pf, current_crest_factor=2.5)


Bench = tuple[PowerAnalyzerEmulator, VisaTransport, PowerAnalyzerDriver]
MakeBench = Callable[..., Bench]


@pytest.fixture
def make_bench() -> Iterator[MakeBench]:
    """Emulator + real VisaTransport (pyvisa-py) + driver; everything closed afterwards."""
    opened: list[VisaTransport | PowerAnalyzerEmulator | PowerAnalyzerDriver] = []

    def make(
        *defects: str,
        source: StandbyLoad | None = None,
        time_scale: float = 1.0,
        timeout_s: float = 2.0,
        settings: dict[str, object] | None = None,
    ) -> Bench:
        emu = PowerAnalyzerEmulator(
            "pa", source=source, defects=defects, time_scale=time_scale, settings={"seed": 7}
        )
        opened.append(emu)
        emu.open()
        transport = VisaTransport("pa", resource=emu.endpoint["resource"], timeout_s=timeout_s)
        opened.append(transport)
        transport.open()
        ctx = DriverContext("pa", transport, DEFINITION, settings or {})
        driver = DEVICE_TYPE.driver(ctx)
        assert isinstance(driver, PowerAnalyzerDriver)
        opened.append(driver)
        return emu, transport, driver

    try:
        yield make
    finally:
        for thing in reversed(opened):
            thing.close()


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_definition_names_units_and_opens_nothing() -> None:
    d = get_device_type("power_analyzer").definition({"supply_v": 230})
    assert open_resources() == []
    units = {name: s.unit for name, s in d.signals.items()}
    assert units == {
        "U": "V", "I": "A", "P": "W", "S": "VA", "Q": "var", "LAMBDA": None, "FREQ": "Hz",
        "CFU": None, "CFI": None, "UTHD": "%", "ITHD": "%", "WP": "Wh", "INTEGRATION": None,
        "CREST_FACTOR": None, "CURRENT_AUTO": None, "CURRENT_RANGE": "A",
        "VOLTAGE_AUTO": None, "VOLTAGE_RANGE": "V",
    }  # fmt: skip
    assert d.signals["INTEGRATION"].coerce("START") == 1
    assert d.signals["CURRENT_AUTO"].coerce("OFF") == 0
    assert {n: s.kind for n, s in d.stimuli.items()} == {
        "crest_factor": "setting", "current_range": "setting", "voltage_range": "setting",
        "update_rate": "setting", "integration": "action", "supply_v": "input",
        "supply_hz": "input", "supply_thd": "input", "supply_crest_factor": "input",
    }  # fmt: skip
    assert d.stimuli["integration"].fields["command"].coerce("STOP") == 2
    assert d.stimuli["crest_factor"].fields["value"].coerce("CF6") == 6
    assert [f.name for f in d.files] == ["scpi_map.yaml"]
    assert "power_meter" in d.capabilities


def test_goes_through_pyvisa_py_socket_session(make_bench: MakeBench) -> None:
    emu, transport, driver = make_bench(source=StandbyLoad())
    assert emu.endpoint["resource"].startswith("TCPIP::127.0.0.1::")
    assert emu.endpoint["resource"].endswith("::SOCKET")
    inst = transport._inst
    assert inst is not None
    sessions = cast(Any, inst.visalib).sessions  # pyvisa-py's open sessions by handle
    assert isinstance(sessions[inst.session], TCPIPSocketSession)
    assert isinstance(driver, Driver)
    assert isinstance(driver, PowerMeter)
    commands = [r.data.command for r in transport.capture.records()]
    assert commands[:9] == [
        "*RST", "*OPC?", ":INPut:MODE RMS", ":INPut:CFACtor 6", ":INPut:CURRent:AUTO OFF",
        ":INPut:CURRent:RANGe 10", ":INPut:VOLTage:AUTO OFF", ":INPut:VOLTage:RANGe 300",
        ":RATE 250MS",
    ]  # fmt: skip
    assert commands[9].startswith(":NUMeric:NORMal:ITEM1 U,1;ITEM2 I,1;ITEM3 P,1;ITEM4 S,1")
    state = emu.state()
    assert state["items"] == [
        ("U", 1), ("I", 1), ("P", 1), ("S", 1), ("Q", 1), ("LAMBDA", 1), ("FU", 1), ("CFU", 1),
        ("CFI", 1), ("UTHD", 1), ("ITHD", 1), ("WP", 1)
    ]  # fmt: skip
    assert (state["crest_factor"], state["current_auto"], state["current_range"]) == (6, False, 10)
    assert (state["voltage_auto"], state["voltage_range"]) == (False, 300)


def test_identity(make_bench: MakeBench) -> None:
    _, _, driver = make_bench()
    assert driver.identity() == {
        "manufacturer": "YOKOGAWA", "model": "WT310", "serial": "C2QD12345", "firmware": "F1.03"
    }  # fmt: skip


def test_measures_the_wired_appliance(make_bench: MakeBench) -> None:
    # time_scale 0.1: the 100 ms updates come every 10 ms of wall time
    _, _, driver = make_bench(source=StandbyLoad(), time_scale=0.1, settings={"update_rate": 0.1})
    distinct: dict[tuple[float, float], dict[str, float]] = {}

    def thirty_updates() -> bool:
        r = driver.measure()
        distinct[r["P"], r["U"]] = r
        return len(distinct) >= 30

    wait_for(thirty_updates)
    readings = list(distinct.values())
    powers = [r["P"] for r in readings]
    assert statistics.mean(powers) == pytest.approx(STANDBY_W, abs=0.003)
    assert max(abs(p - STANDBY_W) for p in powers) < 0.01
    last = readings[-1]
    assert last["U"] == pytest.approx(230.0, abs=0.2)
    assert last["I"] == pytest.approx(STANDBY_W / (230 * 0.299), rel=0.05)
    assert last["LAMBDA"] == pytest.approx(0.299, abs=0.02)
    assert last["FREQ"] == pytest.approx(50.0, abs=0.05)
    assert last["CFU"] == pytest.approx(1.414, abs=0.02)
    assert last["CFI"] == pytest.approx(2.5, abs=0.1)
    assert last["UTHD"] == pytest.approx(0.5, abs=0.05)  # the clean default supply
    assert last["S"] == pytest.approx(last["U"] * last["I"], rel=1e-3)
    assert driver.measure_power() == pytest.approx(STANDBY_W, abs=0.01)
    raw = driver.query(":NUMeric:NORMal:VALue?").split(",")
    assert len(raw) == 12
    assert all(re.fullmatch(r"-?\d\.\d{3}E[+-]\d{2}", f) for f in raw), raw  # 2.301E+02


def test_nothing_wired_reads_zero_watts_at_supply_voltage(make_bench: MakeBench) -> None:
    emu, _, driver = make_bench()
    assert driver.read("P").value == 0.0
    assert driver.read("U").value == pytest.approx(230.0, abs=0.2)
    emu.set_input("supply_v", 207.0)
    wait_for(lambda: abs(driver.read("U").value - 207.0) < 0.2)
    with pytest.raises(EmulatorError, match="did you mean 'supply_v'"):
        emu.set_input("supply", 1.0)


def test_samples_come_from_the_capture(make_bench: MakeBench) -> None:
    _, _, driver = make_bench(source=StandbyLoad())
    first = driver.read("P")
    second = driver.read("U")
    third = driver.read("P")
    assert first.t < second.t < third.t
    # every VALue? answer carries every item, so the U read observed P too
    p = driver.samples("P", 0.0)
    assert [s.t for s in p] == [first.t, second.t, third.t]
    assert (p[0], p[2]) == (first, third)
    assert driver.samples("P", third.t) == [p[1], third]  # preceded by the last one before
    assert driver.samples("P", third.t + 1.0) == [third]
    assert driver.samples("U", second.t)[1] == second
    assert driver.samples("INTEGRATION", 0.0) == []
    with pytest.raises(ConfigError, match="did you mean 'LAMBDA'"):
        driver.samples("LAMDA", 0.0)


def test_integration_accumulates_energy_over_emulated_time(make_bench: MakeBench) -> None:
    emu, _, driver = make_bench(source=StandbyLoad(), time_scale=1 / 3600)  # 1 s real = 1 h
    assert driver.read("INTEGRATION").value == 0
    t = driver.stimulate("integration", {"command": 1})  # coerced START
    assert t > 0
    assert emu.state()["integration"] == "START"
    wait_for(lambda: emu.state()["integration_time_s"] >= 360.0)  # 6 emulated minutes
    driver.integration("STOP")
    state = emu.state()
    hours = state["integration_time_s"] / 3600.0
    assert state["energy_wh"] == pytest.approx(STANDBY_W * hours, rel=0.02)
    assert driver.read("WP").value == pytest.approx(state["energy_wh"], rel=0.01)
    assert driver.read("INTEGRATION").value == 2
    assert [s.value for s in driver.samples("INTEGRATION", 0.0)] == [0, 2]
    driver.integration("RESET")
    assert emu.energy_wh == 0.0
    with pytest.raises(ProtocolError, match="-221"):
        driver.integration("STOP")  # not running: the instrument refuses, the driver says so
    with pytest.raises(ConfigError, match="RESET"):
        driver.stimulate("integration", {"command": "PAUSE"})


def test_settings(make_bench: MakeBench) -> None:
    emu, _, driver = make_bench(source=StandbyLoad())
    driver.stimulate("crest_factor", {"value": 3})
    driver.stimulate("update_rate", {"value": 1.0})
    driver.stimulate("current_range", {"value": 0.5})
    state = emu.state()
    assert (state["crest_factor"], state["update_rate"]) == (3, 1.0)
    assert (state["current_auto"], state["current_range"]) == (False, 0.5)
    driver.stimulate("current_range", {"value": 0})
    assert emu.state()["current_auto"] is True
    with pytest.raises(ProtocolError, match='-222,"Data out of range"'):
        driver.stimulate("current_range", {"value": 0.3})
    with pytest.raises(ProtocolError, match="-222"):
        driver.stimulate("update_rate", {"value": 0.3})
    with pytest.raises(ConfigError, match="3 or 6"):
        driver.stimulate("crest_factor", {"value": 4})
    with pytest.raises(ConfigError, match="missing \\['value'\\]"):
        driver.stimulate("crest_factor", {"cf": 3})


def test_a_too_small_fixed_range_reads_over_range(make_bench: MakeBench) -> None:
    _, _, driver = make_bench(source=StandbyLoad(), settings={"current_range": 0.0025})
    wait_for(lambda: driver.read("P").value == float("inf"))


def test_bad_names_and_bench_inputs_are_config_errors(make_bench: MakeBench) -> None:
    _, _, driver = make_bench()
    with pytest.raises(ConfigError, match="did you mean 'crest_factor'"):
        driver.stimulate("crest_factr", {"value": 6})
    with pytest.raises(ConfigError, match="bench input, applied by the bench"):
        driver.stimulate("supply_v", {"value": 230.0})
    with pytest.raises(ConfigError, match="did you mean 'FREQ'"):
        driver.read("FRQ")


def test_errors_reports_malformed_headers(make_bench: MakeBench) -> None:
    _, _, driver = make_bench()
    assert driver.errors() == []
    driver.write(":NUMeric:NORMal:BOGus?")
    driver.write(":RATE fast")
    assert driver.errors() == [(-113, "Undefined header"), (-224, "Illegal parameter value")]
    # several commands on one line, the second continuing from the first one's path
    assert driver.query(":NUM:NORM:ITEM3?;ITEM6?;NUMBer?") == "P,1;LAMB,1;12"


def test_configuration_error_is_a_protocol_error_naming_it(make_bench: MakeBench) -> None:
    with pytest.raises(ProtocolError, match='-222,"Data out of range"'):
        make_bench(settings={"crest_factor": 4})


def test_write_evidence_and_link(make_bench: MakeBench, tmp_path: Path) -> None:
    _, transport, driver = make_bench(source=StandbyLoad())
    driver.read("P")
    (path,) = driver.write_evidence(tmp_path)
    assert path.name == "pa.scpi.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["data"] == {
        "command": "*RST",
        "response": None,
        "t_end": lines[0]["data"]["t_end"],
    }
    assert lines[-1]["data"]["command"] == ":NUMeric:NORMal:VALue?"
    driver.check_link()
    transport.close()
    with pytest.raises(DeviceLost):
        driver.check_link()
    with pytest.raises(DeviceLost):
        driver.read("P")
    driver.close()
    driver.close()


def test_refused_connection_names_the_device(unused_tcp_port: int) -> None:
    # pyvisa-py 0.8 takes a refused non-blocking connect for success; the
    # transport checks the socket itself so the error comes at open time
    transport = VisaTransport("analyzer", resource=f"TCPIP::127.0.0.1::{unused_tcp_port}::SOCKET")
    try:
        with pytest.raises(TransportOpenError, match="'analyzer'") as info:
            transport.open()
        assert info.value.device == "analyzer"
        assert "refused" in str(info.value).lower()
    finally:
        transport.close()


def test_emulator_factory_checks_the_wiring() -> None:
    ctx = EmulatorContext("pa", DEFINITION, (), 1.0, {}, {}, {"1": NotASource("plug")})
    with pytest.raises(EmulatorError, match="does not implement PowerSource"):
        get_device_type("power_analyzer").emulator(ctx)  # type: ignore[misc]
    ctx = EmulatorContext("pa", DEFINITION, (), 1.0, {}, {}, {"2": NotASource("plug")})
    with pytest.raises(EmulatorError, match=r"1 input element\(s\), wired as \['1'\]"):
        DEVICE_TYPE.emulator(ctx)  # type: ignore[misc]
    with pytest.raises(EmulatorError, match="did you mean 'stuck_reading'"):
        PowerAnalyzerEmulator("pa", defects=["stuck_readings"])


class NotASource(Emulator):
    def _start(self) -> None:
        pass


# --- defects -------------------------------------------------------------------------------


def test_defect_stuck_reading(make_bench: MakeBench) -> None:
    emu, _, driver = make_bench("stuck_reading", source=StandbyLoad())
    first = driver.measure()
    emu.set_input("supply_v", 110.0)
    wait_for(lambda: emu.state()["data"]["U"] < 120.0)
    assert driver.measure() == first
    assert driver.read("U").value == pytest.approx(230.0, abs=0.2)


def test_defect_offset_error(make_bench: MakeBench) -> None:
    _, _, driver = make_bench("offset_error", source=StandbyLoad())
    assert driver.measure_power() == pytest.approx(STANDBY_W + 0.2, abs=0.01)


def test_defect_drop_after_malformed(make_bench: MakeBench) -> None:
    emu, _, driver = make_bench("drop_after_malformed", timeout_s=0.2)
    assert driver.identity()["model"] == "WT310"  # fine until a malformed header arrives
    driver.write(":NUM:NORM:VAL??")
    with pytest.raises(DeviceTimeout, match="'pa'"):
        driver.identity()
    assert emu.state()["muted"] is True


def test_defect_no_error_queue(make_bench: MakeBench) -> None:
    emu, _, driver = make_bench("no_error_queue")
    driver.write(":BOGUS")
    assert driver.errors() == []
    assert emu.state()["errors"] == [(-113, "Undefined header")]  # it knew, and never said


# --- settings read back, voltage ranges, supply quality, elements ---------------------------


def test_settings_read_back_as_signals(make_bench: MakeBench) -> None:
    _, _, driver = make_bench(source=StandbyLoad())
    assert driver.read("CURRENT_AUTO").value == 0  # the driver fixed the range
    assert driver.read("CREST_FACTOR").value == 6
    assert driver.read("CURRENT_RANGE").value == 10.0
    assert (driver.read("VOLTAGE_AUTO").value, driver.read("VOLTAGE_RANGE").value) == (0, 300.0)
    driver.stimulate("voltage_range", {"value": 150})
    assert driver.read("VOLTAGE_RANGE").value == 150.0
    assert driver.definition.signals["CURRENT_AUTO"].label(0.0) == "OFF"
    assert [s.value for s in driver.samples("CREST_FACTOR", 0.0)] == [6]
    driver.stimulate("voltage_range", {"value": 0})
    assert driver.read("VOLTAGE_AUTO").value == 1
    with pytest.raises(ProtocolError, match="-222"):
        driver.stimulate("voltage_range", {"value": 100})


def test_a_too_small_voltage_range_reads_over_range(make_bench: MakeBench) -> None:
    _, _, driver = make_bench(source=StandbyLoad(), settings={"voltage_range": 150})
    wait_for(lambda: driver.read("U").value == float("inf"))
    assert driver.read("CFU").value == float("inf")


def test_supply_inputs_reach_the_readings_and_the_conditions(make_bench: MakeBench) -> None:
    emu, _, driver = make_bench(source=StandbyLoad())
    for name, value in (("supply_hz", 50.6), ("supply_thd", 3.0), ("supply_crest_factor", 1.6)):
        emu.set_input(name, value)
    wait_for(lambda: driver.read("UTHD").value > 2.5)
    s = driver.read_conditions("P")
    assert s.frequency_hz == pytest.approx(50.6, abs=0.02)
    assert s.voltage_crest_factor == pytest.approx(1.6, abs=0.02)
    assert s.voltage_thd_percent == pytest.approx(3.0, abs=0.1)
    assert s.power_w == pytest.approx(STANDBY_W, abs=0.01)
    assert emu.state()["supply"]["crest_factor"] == 1.6
    with pytest.raises(ConfigError, match="active power signal \\(P\\), not 'U'"):
        driver.read_conditions("U")
    assert driver.power_uncertainty(0.3) == pytest.approx(0.01)


def test_three_elements_measure_their_own_feeds(make_bench: MakeBench) -> None:
    plug, oven = StandbyLoad(0.31), StandbyLoad(0.72, pf=0.5)
    emu = PowerAnalyzerEmulator(
        "pa", sources={1: plug, 3: oven}, settings={"elements": 3, "seed": 1}
    )
    with emu, VisaTransport("pa", resource=emu.endpoint["resource"]) as transport:
        definition = DEVICE_TYPE.definition({"elements": 3})
        assert {"P", "P2", "P3", "UTHD3"} <= set(definition.signals)
        driver = PowerAnalyzerDriver("pa", transport, definition, {"elements": 3})
        assert driver.identity()["model"] == "WT333"
        values = driver.measure()
        assert values["P"] == pytest.approx(0.31, abs=0.01)
        assert values["P2"] == 0.0  # nothing wired to element 2
        assert values["P3"] == pytest.approx(0.72, abs=0.01)
        assert driver.read_conditions("P3").power_factor == pytest.approx(0.5, abs=0.02)
        assert driver.query(":NUMeric:NORMal:ITEM15?") == "P,2"
        driver.write(":NUMeric:NORMal:ITEM1 U,4")
        assert driver.errors() == [(-222, "Data out of range")]  # no fourth element


def test_household_feed_sums_every_power_source_on_the_bench() -> None:
    bench = {"plug": StandbyLoad(0.3, pf=0.3), "tv": StandbyLoad(40.0, pf=1.0), "x": object()}
    feed = HouseholdFeed(bench)
    st = feed.electrical_state(230.0)
    assert st.power_w == pytest.approx(40.3)
    q = 0.3 * math.tan(math.acos(0.3))  # only the plug draws reactive power
    assert st.current_a == pytest.approx(math.hypot(40.3, q) / 230.0)
    assert st.power_factor == pytest.approx(40.3 / math.hypot(40.3, q))
    bench["oven"] = StandbyLoad(0.4)  # a device opened later counts too
    assert feed.electrical_state(230.0).power_w == pytest.approx(40.7)
    assert feed.electrical_state(0.0).power_w == 0.0
    assert wired(HOUSEHOLD, {}).name == HOUSEHOLD


def test_household_wiring_on_a_bench(tmp_path: Path) -> None:
    text = (
        "spec: 1\nid: h\ntime_scale: 0.1\ndevices:\n"
        "  plug: {type: smart_plug, emulated: true, serial: {port: auto}}\n"
        "  pa:\n    type: power_analyzer\n    emulated: true\n"
        "    visa: {resource: auto, backend: '@py'}\n"
        "    settings: {elements: 2}\n    wiring: {1: plug, 2: household}\n"
    )
    (tmp_path / "b.yaml").write_text(text)
    with open_bench(tmp_path / "b.yaml") as bench:
        pa = bench.get("pa")
        assert isinstance(pa, PowerAnalyzerDriver)
        wait_for(lambda: pa.read("P2").value > 0.2)
        values = pa.measure()
        assert values["P2"] == pytest.approx(values["P"], abs=0.01)  # the plug is all there is


def test_wiring_more_channels_than_elements_is_a_located_bench_error(tmp_path: Path) -> None:
    text = (
        "spec: 1\nid: h\ndevices:\n"
        "  pa:\n    type: power_analyzer\n    emulated: true\n"
        "    visa: {resource: auto}\n    settings: {elements: 4}\n"
    )
    (tmp_path / "b.yaml").write_text(text)
    with pytest.raises(BenchError, match=r"b.yaml:\d+.*elements must be one of \[1, 2, 3\]"):
        load_bench(tmp_path / "b.yaml").definitions()


def test_defect_auto_range_only(make_bench: MakeBench) -> None:
    emu, transport, driver = make_bench("auto_range_only", source=StandbyLoad())
    assert driver.errors() == []  # AUTO OFF and RANGe 10 were acknowledged…
    assert emu.state()["current_auto"] is True  # …and ignored
    assert driver.read("CURRENT_AUTO").value == 1  # which the readback shows
    wait_for(lambda: emu.state()["current_range"] == 0.005)  # ranged down to the 4.5 mA


def test_defect_no_thd(make_bench: MakeBench) -> None:
    _, _, driver = make_bench("no_thd", source=StandbyLoad())
    assert math.isnan(driver.read("UTHD").value)
    assert math.isnan(driver.read_conditions("P").voltage_thd_percent)
