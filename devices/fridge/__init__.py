"""``fridge``: a refrigerator with a door-open alarm speaking MIoT serial."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devices.fridge.driver import FridgeDriver
from devices.fridge.emulator import FridgeEmulator
from hil.bench.definition import DeviceDefinition, SignalInfo
from hil.bench.registry import DeviceType, DriverContext, EmulatorContext
from hil.miot.spec import load_spec_cached

SPEC_PATH = Path(__file__).with_name("spec.yaml")

INPUTS: Mapping[str, SignalInfo] = {
    "door": SignalInfo("door", "bool", description="the fridge door is open (true) or closed"),
}
CAPABILITIES = frozenset({"miot", "fridge", "door_alarm", "power_source"})


def definition(settings: Mapping[str, Any]) -> DeviceDefinition:
    """Signals and stimuli from spec.yaml plus the bench inputs; opens nothing."""
    return load_spec_cached(SPEC_PATH).definition(
        "fridge", inputs=INPUTS, capabilities=CAPABILITIES, files=(SPEC_PATH,)
    )


def _driver(ctx: DriverContext) -> FridgeDriver:
    return FridgeDriver.from_context(ctx, load_spec_cached(SPEC_PATH))


def _emulator(ctx: EmulatorContext) -> FridgeEmulator:
    return FridgeEmulator(
        ctx.name,
        load_spec_cached(SPEC_PATH),
        defects=ctx.defects,
        time_scale=ctx.time_scale,
        settings=ctx.settings,
    )


DEVICE_TYPE = DeviceType(
    name="fridge",
    transport="serial",
    definition=definition,
    driver=_driver,
    emulator=_emulator,
    defects=FridgeEmulator.DEFECTS,
    description="Refrigerator with a door-open alarm (MIoT serial, viomi.fridge.v3)",
)
