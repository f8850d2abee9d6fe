"""``oven``: a 2.5 kW built-in oven speaking MIoT serial."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devices.oven.driver import OvenDriver
from devices.oven.emulator import OvenEmulator
from hil.bench.definition import DeviceDefinition, SignalInfo
from hil.bench.registry import DeviceType, DriverContext, EmulatorContext
from hil.miot.spec import load_spec_cached

SPEC_PATH = Path(__file__).with_name("spec.yaml")

INPUTS: Mapping[str, SignalInfo] = {
    "door": SignalInfo("door", "bool", description="the oven door is open (true) or closed"),
    "local_confirm": SignalInfo(
        "local_confirm",
        "bool",
        description="true presses the oven's own button: confirms or arms a remote preheat",
    ),
    "mains": SignalInfo(
        "mains", "bool", description="mains present (false cuts the oven's supply, MCU included)"
    ),
}
CAPABILITIES = frozenset({"miot", "oven", "heating", "power_source"})


def definition(settings: Mapping[str, Any]) -> DeviceDefinition:
    """Signals and stimuli from spec.yaml plus the bench inputs; opens nothing."""
    return load_spec_cached(SPEC_PATH).definition(
        "oven", inputs=INPUTS, capabilities=CAPABILITIES, files=(SPEC_PATH,)
    )


def _driver(ctx: DriverContext) -> OvenDriver:
    return OvenDriver.from_context(ctx, load_spec_cached(SPEC_PATH))


def _emulator(ctx: EmulatorContext) -> OvenEmulator:
    return OvenEmulator(
        ctx.name,
        load_spec_cached(SPEC_PATH),
        defects=ctx.defects,
        time_scale=ctx.time_scale,
        settings=ctx.settings,
    )


DEVICE_TYPE = DeviceType(
    name="oven",
    transport="serial",
    definition=definition,
    driver=_driver,
    emulator=_emulator,
    defects=OvenEmulator.DEFECTS,
    description="2.5 kW built-in oven with a remote-preheat policy (MIoT serial, chunmi.oven.v2)",
)
