"""The five MIoT appliances, end to end over a real pty opened by pyserial.

Each test builds the emulator and the driver through the device type, as the
bench does, and talks to the emulated MCU only through the real
``SerialTransport``. Long engineering delays are shortened with settings or
the bench time scale, never with sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

import devices.air_conditioner as ac_type
import devices.coffee_maker as coffee_type
import devices.fridge as fridge_type
import devices.lights as lights_type
import devices.oven as oven_type
from devices.air_conditioner.driver import AirConditionerDriver
from devices.air_conditioner.emulator import AirConditionerEmulator
from devices.coffee_maker.driver import CoffeeMakerDriver
from devices.coffee_maker.emulator import CoffeeMakerEmulator
from devices.fridge.driver import FridgeDriver
from devices.fridge.emulator import FridgeEmulator
from devices.lights.driver import LightsDriver
from devices.lights.emulator import LightsEmulator
from devices.oven.driver import OvenDriver
from devices.oven.emulator import OvenEmulator
from hil.bench.driver import Driver, PropertyDevice
from hil.bench.registry import DeviceType, DriverContext, EmulatorContext
from hil.emulation.physics import PowerSource
from hil.errors import ConfigError, DeviceTimeout, EmulatorError, ProtocolError
from hil.lifecycle import open_resources
from hil.miot.mcu import MiotMcuEmulator
from hil.miot.module import MiotModuleDriver
from hil.miot.spec import load_spec_cached
from hil.transports.serial import SerialTransport

FAST = {"poll_period_s": 0.1}  # the fastest polling the protocol allows
TYPES: dict[str, DeviceType] = {
    "oven": oven_type.DEVICE_TYPE,
    "fridge": fridge_type.DEVICE_TYPE,
    "air_conditioner": ac_type.DEVICE_TYPE,
    "lights": lights_type.DEVICE_TYPE,
    "coffee_maker": coffee_type.DEVICE_TYPE,
}
MODELS = {
    "oven": ("chunmi.oven.v2", "0012"),
    "fridge": ("viomi.fridge.v3", "0007"),
    "air_conditioner": ("xiaomi.aircondition.v4", "0021"),
    "lights": ("yeelink.light.v3", "0005"),
    "coffee_maker": ("scishare.coffee.v2", "0003"),
}

Bench = tuple[MiotMcuEmulator, MiotModuleDriver]


@contextmanager
def on_bench(
    kind: str,
    defects: tuple[str, ...] = (),
    settings: Mapping[str, Any] | None = None,
    time_scale: float = 1.0,
) -> Iterator[Bench]:
    """Emulator and driver built through the device type, as the bench does."""
    dtype = TYPES[kind]
    definition = dtype.definition({})
    assert dtype.emulator is not None
    ctx = EmulatorContext(kind, definition, defects, time_scale, {**FAST, **(settings or {})}, {})
    emu = dtype.emulator(ctx)
    assert isinstance(emu, MiotMcuEmulator)
    # pyserial flushes the MCU's first model line when it opens the port; a quicker
    # retry than the 200 ms default saves that wait on every one of these benches
    emu.BOOT_RETRY_S = 0.02
    with emu, SerialTransport(kind, url=emu.endpoint["url"]) as transport:
        driver = dtype.driver(DriverContext(kind, transport, definition, {}))
        assert isinstance(driver, MiotModuleDriver)
        try:
            yield emu, driver
        finally:
            driver.close()


def wait_for(cond: Callable[[], object], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def values(driver: MiotModuleDriver, signal: str, since: float) -> list[Any]:
    return [s.value for s in driver.samples(signal, since) if s.t >= since]


def event_times(driver: MiotModuleDriver, signal: str, since: float) -> list[float]:
    return [s.t for s in driver.samples(signal, since) if s.t >= since]


def code_of(err: pytest.ExceptionInfo[ProtocolError]) -> int:
    return int(err.value.code)


# ----- every appliance: the device type, identity, properties, names

WRITES: dict[str, dict[str, Any]] = {
    "oven": {
        "oven.target-temperature": 200,
        "home.remote-preheat-policy": 1,
        "home.occupancy": True,
        "oven.mode": 2,
        "oven.on": True,
    },
    "fridge": {"fridge.target-temperature": 6},
    "air_conditioner": {
        "air-conditioner.mode": 0,
        "air-conditioner.target-temperature": 24.5,
        "air-conditioner.fan-level": 3,
        "air-conditioner.on": True,
    },
    "lights": {"light.brightness": 60, "light.color-temperature": 3000, "light.on": True},
    "coffee_maker": {"coffee-maker.on": True},
}
READ_ONLY = {
    "oven": ("oven.temperature", 100.0),
    "fridge": ("fridge.door", True),
    "air_conditioner": ("environment.temperature", 20.0),
    "lights": ("light.scene-id", 1),
    "coffee_maker": ("coffee-maker.status", 1),
}
OUT_OF_RANGE = {
    "oven": ("oven.target-temperature", 300),
    "fridge": ("fridge.target-temperature", 12),
    "air_conditioner": ("air-conditioner.target-temperature", 24.3),  # not on the 0.5 step
    "lights": ("light.brightness", 0),
    "coffee_maker": ("coffee-maker.on", 5),
}
STANDBY_W = {
    "oven": 0.4,
    "fridge": 1.0,
    "air_conditioner": 0.5,
    "lights": 0.3,
    "coffee_maker": 0.3,
}
ALL = sorted(TYPES)


@pytest.mark.parametrize("kind", ALL)
def test_device_type_definition_opens_nothing(kind: str) -> None:
    dtype = TYPES[kind]
    d = dtype.definition({})
    assert open_resources() == []
    assert dtype.name == kind == d.type_name
    assert dtype.transport == d.transport == "serial"
    spec = load_spec_cached(d.files[0])
    assert (spec.model, spec.mcu_version) == MODELS[kind]
    assert len(spec.model) <= 23
    assert dtype.defects and all(dtype.defects.values())
    assert dtype.emulator is not None
    for prop in WRITES[kind]:
        assert d.stimuli[prop].kind == "property"
    emulator_inputs = {
        "oven": OvenEmulator,
        "fridge": FridgeEmulator,
        "air_conditioner": AirConditionerEmulator,
        "lights": LightsEmulator,
        "coffee_maker": CoffeeMakerEmulator,
    }[kind].INPUTS
    assert {n for n, s in d.stimuli.items() if s.kind == "input"} == set(emulator_inputs)


@pytest.mark.parametrize("kind", ALL)
def test_identity_standby_power_and_names(kind: str) -> None:
    with on_bench(kind) as (emu, driver):
        assert driver.identity() == dict(zip(("model", "firmware"), MODELS[kind], strict=True))
        assert isinstance(driver, Driver)
        assert isinstance(driver, PropertyDevice)
        wait_for(lambda: emu.booted)
        # the power model an analyzer channel wired to the appliance measures
        assert isinstance(emu, PowerSource)
        st = emu.electrical_state(230.0)
        assert st.power_w == pytest.approx(STANDBY_W[kind])
        assert st.current_a == pytest.approx(st.power_w / (230.0 * st.power_factor))
        assert emu.electrical_state(0.0).power_w == 0.0
        # bad names say what would work; bench inputs are not the driver's to apply
        first = next(iter(WRITES[kind]))
        with pytest.raises(ConfigError, match=f"did you mean '{first}'"):
            driver.stimulate(first + "x", {"value": 1})
        with pytest.raises(ConfigError, match="no signal"):
            driver.samples("nope.nope", 0.0)
        with pytest.raises(EmulatorError, match="no physical input"):
            emu.set_input("nope", 1.0)
        for name in type(emu).INPUTS:
            with pytest.raises(ConfigError, match="bench input"):
                driver.stimulate(name, {"value": 1})
    with pytest.raises(EmulatorError, match="unknown defect"):
        on_bench(kind, ("no_such_defect",)).__enter__()


@pytest.mark.parametrize("kind", ALL)
def test_every_property_reads_and_every_writable_one_writes(kind: str) -> None:
    with on_bench(kind) as (emu, driver):
        spec = driver.spec
        pairs = [v for s, p in spec.iter_properties() if p.readable for v in (s.siid, p.piid)]
        reply = driver.request("get_properties", *pairs).reply
        assert reply is not None and reply.command == "result"
        # every property answers "siid piid 0 value"
        groups = [reply.args[i : i + 4] for i in range(0, len(reply.args), 4)]
        expected = [(s, p, 0) for s, p in zip(pairs[::2], pairs[1::2], strict=True)]
        assert [tuple(g[:3]) for g in groups] == expected
        assert all(len(g) == 4 for g in groups)
        since = time.time()
        for prop, value in WRITES[kind].items():
            t = driver.stimulate(prop, {"value": value})
            assert since <= t <= time.time()
        for prop, value in WRITES[kind].items():
            assert emu.value(prop) == value
            assert values(driver, prop, since)[-1] == value  # the write's result is observed
        last = list(WRITES[kind])[-1]
        assert driver.read(last).value == WRITES[kind][last]
        # a write to a read-only property, and an out-of-range value, change nothing
        prop, value = READ_ONLY[kind]
        with pytest.raises(ProtocolError) as err:
            driver.set(prop, value)
        assert code_of(err) == -4002
        assert emu.value(prop) != value
        prop, value = OUT_OF_RANGE[kind]
        before = emu.value(prop)
        with pytest.raises(ProtocolError) as err:
            driver.set(prop, value)
        assert code_of(err) == -4005
        assert emu.value(prop) == before


# ----- oven: remote preheat policy (A2), link fault (A4), mains interruption (A6)


@contextmanager
def oven_bench(
    defects: tuple[str, ...] = (), settings: Mapping[str, Any] | None = None
) -> Iterator[tuple[OvenEmulator, OvenDriver]]:
    with on_bench("oven", defects, settings) as (emu, driver):
        assert isinstance(emu, OvenEmulator)
        assert isinstance(driver, OvenDriver)
        yield emu, driver


def test_oven_refuses_remote_preheat_when_nobody_is_home() -> None:
    with oven_bench() as (emu, oven):
        since = time.time()
        with pytest.raises(ProtocolError) as err:
            oven.stimulate("oven.preheat", {"target-temperature": 200})
        assert code_of(err) == -4004
        wait_for(lambda: event_times(oven, "oven.remote-refused", since))
        assert "event_occured 2 2 3 200" in [r.data for r in oven.transport.capture.records()]
        assert not oven.heater_on
        assert oven.mode == "off"
        assert emu.electrical_state(230.0).power_w <= emu.standby_w + 1.0


@pytest.mark.parametrize("how", ["someone_home", "policy_allows", "defect_preheat_when_away"])
def test_oven_accepts_remote_preheat(how: str) -> None:
    defects = ("preheat_when_away",) if how.startswith("defect") else ()
    with oven_bench(defects) as (emu, oven):
        if how == "someone_home":
            oven.set_occupancy(True)
        elif how == "policy_allows":
            oven.set_policy("allow")
        since = time.time()
        oven.preheat(200)
        assert oven.mode == "preheat"
        assert oven.get("oven.target-temperature") == 200
        wait_for(lambda: True in values(oven, "oven.heater", since))
        assert emu.electrical_state(230.0).power_w == pytest.approx(2500.0)
        assert event_times(oven, "oven.remote-refused", since) == []


def test_oven_local_confirmation_before_the_request_arms_one_preheat() -> None:
    with oven_bench() as (emu, oven):
        emu.set_input("local_confirm", 1)
        oven.preheat(180)
        assert oven.heater_on
        oven.set("oven.on", False)
        with pytest.raises(ProtocolError) as err:  # the confirmation was used up
            oven.preheat(180)
        assert code_of(err) == -4004


def test_oven_local_confirmation_after_a_refusal_starts_the_preheat() -> None:
    with oven_bench() as (emu, oven):
        with pytest.raises(ProtocolError):
            oven.preheat(220)
        assert not emu.heater_on
        since = time.time()
        emu.set_input("local_confirm", 1)  # the user at the oven presses its button
        wait_for(lambda: 1 in values(oven, "oven.mode", since))
        assert oven.heater_on
        assert oven.get("oven.target-temperature") == 220


def test_oven_local_confirmation_expires_after_the_window() -> None:
    with oven_bench(settings={"confirm_window_s": 0.1}) as (emu, oven):
        emu.set_input("local_confirm", 1)
        pressed = time.monotonic()
        wait_for(lambda: time.monotonic() - pressed > 0.15)
        with pytest.raises(ProtocolError) as err:
            oven.preheat(200)
        assert code_of(err) == -4004
        refused = time.monotonic()
        wait_for(lambda: time.monotonic() - refused > 0.15)
        emu.set_input("local_confirm", 1)  # too late for the refused request:
        polls = emu.polls
        wait_for(lambda: emu.polls >= polls + 2)
        assert not emu.heater_on  # the press only arms the next request
        assert emu.state()["awaiting_confirmation"] is None


def test_oven_thermostat_preheat_done_and_envelope() -> None:
    with oven_bench(settings={"heat_rate_c_per_s": 1000.0}) as (emu, oven):
        oven.set_occupancy(True)
        since = time.time()
        oven.preheat(250)
        wait_for(lambda: event_times(oven, "oven.preheat-done", since))
        assert 248.0 <= emu.temperature_c <= 255.0
        wait_for(lambda: not emu.heater_on)
        assert oven.temperature_c <= 255.0
        oven.set_mode("keep_warm")  # holds 70 °C: the element stays off while it cools
        assert not oven.heater_on


def _last_answer(oven: OvenDriver) -> float:
    return max(r.t for r in oven.transport.capture.records() if r.data.startswith("down "))


def test_oven_link_loss_stops_heating_without_resuming() -> None:
    with oven_bench() as (emu, oven):
        oven.set_occupancy(True)
        oven.preheat(200)
        wait_for(lambda: emu.heater_on)
        transport, definition, spec = oven.transport, oven.definition, oven.spec
        oven.close()  # the module falls silent: nobody answers get_down any more
        wait_for(lambda: not emu.heater_on, timeout=2.5)
        silent_from = _last_answer(oven)

        def heater_off_reports() -> list[float]:
            return [
                r.t
                for r in transport.capture.records()
                if r.t > silent_from and r.data.startswith("properties_changed 2 5 false")
            ]

        wait_for(heater_off_reports)
        off = heater_off_reports()[0]
        assert 1.0 <= off - silent_from <= 1.0 + 0.15  # link_timeout_s, judged on the capture
        again = OvenDriver("oven", transport, definition, spec)  # the link comes back
        try:
            assert again.fault == "link-lost"
            assert again.mode == "off"
            polls = emu.polls
            wait_for(lambda: emu.polls >= polls + 3)
            assert not again.heater_on  # no auto-resume
            again.set_mode("bake")  # a new command clears the fault and heats again
            assert again.fault == "none"
            assert again.heater_on
        finally:
            again.close()


def test_oven_defect_heats_on_link_loss() -> None:
    with oven_bench(("heats_on_link_loss",), {"link_timeout_s": 0.3}) as (emu, oven):
        oven.set_occupancy(True)
        oven.preheat(200)
        wait_for(lambda: emu.heater_on)
        oven.close()
        wait_for(lambda: not emu.link_ok, timeout=2.5)
        assert emu.heater_on
        assert emu.value("oven.fault") == 0


def test_oven_does_not_resume_after_a_mains_interruption() -> None:
    with oven_bench() as (emu, oven):
        oven.set_occupancy(True)
        oven.preheat(200)
        wait_for(lambda: emu.heater_on)
        emu.set_input("mains", 0)
        assert emu.electrical_state(230.0).power_w == 0.0
        oven.rpc_timeout = 0.3  # a dead MCU answers nothing
        with pytest.raises(DeviceTimeout, match="did not poll"):
            oven.get("oven.heater")
        models = sum(r.data.startswith("model ") for r in oven.transport.capture.records())
        emu.set_input("mains", 1)
        # it reboots: a fresh boot handshake
        wait_for(
            lambda: (
                sum(r.data.startswith("model ") for r in oven.transport.capture.records()) > models
            )
        )
        wait_for(lambda: emu.booted)
        oven.rpc_timeout = 4.0
        assert oven.fault == "power-failure"
        assert oven.mode == "off"
        polls = emu.polls
        wait_for(lambda: emu.polls >= polls + 3)
        assert not oven.heater_on
        assert emu.electrical_state(230.0).power_w == pytest.approx(0.4)


def test_oven_defect_resume_after_mains() -> None:
    with oven_bench(("resume_after_mains",)) as (emu, oven):
        oven.set_occupancy(True)
        oven.preheat(200)
        wait_for(lambda: emu.heater_on)
        emu.set_input("mains", 0)
        assert not emu.heater_on
        emu.set_input("mains", 1)
        wait_for(lambda: emu.heater_on)
        assert oven.mode == "preheat"
        assert oven.fault == "none"


# ----- fridge: door alarm (A3) on the MCU's clock, compressor cycling

ALARM_SCALE = 0.01  # 120 s of plan time are 1.2 s of wall time
SCALED_TOLERANCE_S = 5 * ALARM_SCALE  # the plan's ±5 s


@contextmanager
def fridge_bench(
    defects: tuple[str, ...] = (),
    settings: Mapping[str, Any] | None = None,
    time_scale: float = ALARM_SCALE,
) -> Iterator[tuple[FridgeEmulator, FridgeDriver]]:
    with on_bench("fridge", defects, settings, time_scale) as (emu, driver):
        assert isinstance(emu, FridgeEmulator)
        assert isinstance(driver, FridgeDriver)
        yield emu, driver


def _open_door(emu: FridgeEmulator, fridge: FridgeDriver) -> float:
    """Open the door; returns the capture time of the door report."""
    since = time.time()
    emu.set_input("door", 1)
    wait_for(lambda: True in values(fridge, "fridge.door", since))
    return next(s.t for s in fridge.samples("fridge.door", since) if s.value is True)


def test_fridge_door_alarm_fires_after_the_delay_and_repeats() -> None:
    with fridge_bench() as (emu, fridge):
        fridge.identity()
        wait_for(lambda: emu.booted)
        opened = _open_door(emu, fridge)
        assert fridge.door_open
        wait_for(lambda: len(fridge.alarm_times(opened)) >= 2, timeout=4.0)
        first, second = fridge.alarm_times(opened)[:2]
        assert first - opened == pytest.approx(120 * ALARM_SCALE, abs=SCALED_TOLERANCE_S)
        assert second - first == pytest.approx(120 * ALARM_SCALE, abs=SCALED_TOLERANCE_S)
        assert fridge.get("fridge.door-open-time") == 240
        since = time.time()
        emu.set_input("door", 0)
        wait_for(lambda: False in values(fridge, "fridge.door", since))
        assert emu.state()["next_alarm"] is None  # a closed door raises nothing more
        assert emu.alarms == 2


def test_fridge_defect_alarm_late() -> None:
    scale = ALARM_SCALE / 2
    with fridge_bench(("alarm_late",), time_scale=scale) as (emu, fridge):
        fridge.identity()
        wait_for(lambda: emu.booted)
        opened = _open_door(emu, fridge)
        wait_for(lambda: fridge.alarm_times(opened), timeout=3.0)
        late = fridge.alarm_times(opened)[0] - opened
        assert late == pytest.approx(150 * scale, abs=5 * scale)
        assert late > (120 + 5) * scale  # outside the plan's bound


def test_fridge_defect_no_door_alarm() -> None:
    with fridge_bench(("no_door_alarm",), time_scale=0.002) as (emu, fridge):
        fridge.identity()
        wait_for(lambda: emu.booted)
        opened = _open_door(emu, fridge)
        wait_for(lambda: time.time() - opened > 2.5 * 120 * 0.002)  # two alarms were due
        assert fridge.alarm_times(opened) == []
        assert emu.alarms == 0


def test_fridge_compressor_cycles_and_draws_power() -> None:
    settings = {"initial_temperature_c": 6.0, "cool_rate_c_per_s": 0.5}
    with fridge_bench(settings=settings, time_scale=0.01) as (emu, fridge):
        wait_for(lambda: emu.compressor_running)
        st = emu.electrical_state(230.0)
        assert st.power_w == pytest.approx(90.0)
        assert 0.6 < st.power_factor < 0.9
        wait_for(lambda: not emu.compressor_running)  # cooled to 4 - 1 °C
        assert emu.temperature_c <= 3.1  # it starts warming again at once
        assert emu.electrical_state(230.0).power_w == pytest.approx(1.0)
        assert fridge.temperature_c == pytest.approx(emu.temperature_c, abs=0.2)


# ----- air conditioner


@contextmanager
def ac_bench(
    defects: tuple[str, ...] = (), settings: Mapping[str, Any] | None = None
) -> Iterator[tuple[AirConditionerEmulator, AirConditionerDriver]]:
    with on_bench("air_conditioner", defects, settings, 0.002) as (emu, driver):
        assert isinstance(emu, AirConditionerEmulator)
        assert isinstance(driver, AirConditionerDriver)
        yield emu, driver


def test_ac_cools_the_room_to_the_target_and_draws_power() -> None:
    with ac_bench() as (emu, ac):
        assert emu.electrical_state(230.0).power_w == pytest.approx(0.5)
        since = time.time()
        ac.turn_on("cool", 24.0)  # scenario X2: "AC to cool 24 °C"
        assert ac.is_on and ac.mode == "cool" and ac.target_c == 24.0
        assert values(ac, "air-conditioner.target-temperature", since)[-1] == 24.0
        assert emu.electrical_state(230.0).power_w == pytest.approx(900.0)
        wait_for(lambda: emu.room_c == pytest.approx(24.0, abs=0.05), timeout=4.0)
        assert ac.room_temperature_c == pytest.approx(24.0, abs=0.1)
        ac.set("air-conditioner.mode", ac.choice("air-conditioner.mode", "fan"))
        assert emu.electrical_state(230.0).power_w == pytest.approx(40.0)
        ac.turn_off()
        assert emu.electrical_state(230.0).power_w == pytest.approx(0.5)
        with pytest.raises(ConfigError, match="did you mean 'cool'"):
            ac.turn_on("cold")


def test_ac_defect_ignores_target() -> None:
    with ac_bench(("ignores_target",)) as (emu, ac):
        since = time.time()
        ac.turn_on("cool", 24.0)  # accepted (code 0)...
        assert ac.target_c == 26.0  # ...but the unit keeps 26 °C and says so
        wait_for(lambda: 26.0 in values(ac, "air-conditioner.target-temperature", since))
        wait_for(lambda: emu.room_c == pytest.approx(26.0, abs=0.05), timeout=4.0)


# ----- lights


@contextmanager
def lights_bench(
    defects: tuple[str, ...] = (),
) -> Iterator[tuple[LightsEmulator, LightsDriver]]:
    with on_bench("lights", defects) as (emu, driver):
        assert isinstance(emu, LightsEmulator)
        assert isinstance(driver, LightsDriver)
        yield emu, driver


def test_lights_dim_scenes_and_power() -> None:
    with lights_bench() as (emu, light):
        light.turn_on(brightness=50, color_temperature=3000)
        assert light.is_on
        assert emu.electrical_state(230.0).power_w == pytest.approx(0.3 + 8.7 * 0.5)
        light.apply_scene("relax")
        assert (light.brightness, light.color_temperature) == (40, 2700)
        assert emu.value("light.scene-id") == 2
        light.stimulate("light.apply-scene", {"scene-id": 1})  # reading: full brightness
        assert emu.electrical_state(230.0).power_w == pytest.approx(9.0)
        light.set("light.brightness", 30)  # a manual change leaves the scene
        # the MCU answers the write first and runs its hooks after, as a real one does
        wait_for(lambda: emu.value("light.scene-id") == 0)
        with pytest.raises(ProtocolError) as err:
            light.action("light.apply-scene", **{"scene-id": 0})
        assert code_of(err) == -4006
        with pytest.raises(ConfigError, match="did you mean 'relax'"):
            light.apply_scene("relx")
        light.turn_off()
        assert emu.electrical_state(230.0).power_w == pytest.approx(0.3)


def test_lights_defect_stuck_off() -> None:
    with lights_bench(("stuck_off",)) as (emu, light):
        light.turn_on(brightness=100)  # accepted...
        assert not light.is_on  # ...but the light stays dark
        light.apply_scene("welcome")
        assert not light.is_on
        assert emu.electrical_state(230.0).power_w == pytest.approx(0.3)


# ----- coffee maker

QUICK_BREW = {"heat_s": 0.15, "brew_s": 0.15}


@contextmanager
def coffee_bench(
    defects: tuple[str, ...] = (), settings: Mapping[str, Any] | None = None
) -> Iterator[tuple[CoffeeMakerEmulator, CoffeeMakerDriver]]:
    with on_bench("coffee_maker", defects, {**QUICK_BREW, **(settings or {})}) as (emu, driver):
        assert isinstance(emu, CoffeeMakerEmulator)
        assert isinstance(driver, CoffeeMakerDriver)
        yield emu, driver


def test_coffee_brew_heats_brews_and_reports_done() -> None:
    with coffee_bench() as (emu, coffee):
        since = time.time()
        coffee.brew("lungo")
        assert coffee.status in ("heating", "brewing")
        assert emu.electrical_state(230.0).power_w == pytest.approx(1450.0)
        with pytest.raises(ProtocolError) as err:  # one cup at a time
            coffee.brew("espresso")
        assert code_of(err) == -4004
        wait_for(lambda: coffee.brews_done(since))
        assert "event_occured 2 1 4 2" in [r.data for r in coffee.transport.capture.records()]
        assert coffee.status == "done"
        assert coffee.water_level == 90
        assert emu.electrical_state(230.0).power_w == pytest.approx(0.3)
        seen = values(coffee, "coffee-maker.status", since)
        assert seen[-1] == 3 and 1 in seen  # heating, (brewing,) done: one report per second


def test_coffee_refuses_to_brew_without_water_until_refilled() -> None:
    with coffee_bench(settings={"initial_water_level": 3}) as (emu, coffee):
        with pytest.raises(ProtocolError) as err:
            coffee.brew("espresso")
        assert code_of(err) == -4004
        assert coffee.status == "error"
        assert emu.electrical_state(230.0).power_w == pytest.approx(0.3)
        emu.set_input("water_level", 80)
        assert coffee.status == "idle"
        coffee.brew("espresso")
        coffee.switch(False)  # switching off aborts the brew
        assert coffee.status == "idle"
        assert not emu.heating
        with pytest.raises(EmulatorError, match="0–100"):
            emu.set_input("water_level", 120)


def test_coffee_defect_brew_without_water() -> None:
    with coffee_bench(("brew_without_water",), {"initial_water_level": 3}) as (emu, coffee):
        since = time.time()
        coffee.brew("americano")  # accepted with 3 % in the tank
        assert emu.dry_brews == 1
        wait_for(lambda: coffee.brews_done(since))
        assert coffee.water_level == 0
