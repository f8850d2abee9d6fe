"""``coffee_maker``: a 1450 W coffee maker speaking MIoT serial."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devices.coffee_maker.driver import CoffeeMakerDriver
from devices.coffee_maker.emulator import CoffeeMakerEmulator
from hil.bench.definition import DeviceDefinition, SignalInfo
from hil.bench.registry import DeviceType, DriverContext, EmulatorContext
from hil.miot.spec import load_spec_cached

SPEC_PATH = Path(__file__).with_name("spec.yaml")

INPUTS: Mapping[str, SignalInfo] = {
    "water_level": SignalInfo(
        "water_level",
        "number",
        unit="%",
        minimum=0.0,
        maximum=100.0,
        description="water in the tank (the bench refills or empties it)",
    ),
}
CAPABILITIES = frozenset({"miot", "coffee", "heating", "power_source"})


def definition(settings: Mapping[str, Any]) -> DeviceDefinition:
    """Signals and stimuli from spec.yaml plus the bench inputs; opens nothing."""
    return load_spec_cached(SPEC_PATH).definition(
        "coffee_maker", inputs=INPUTS, capabilities=CAPABILITIES, files=(SPEC_PATH,)
    )


def _driver(ctx: DriverContext) -> CoffeeMakerDriver:
    return CoffeeMakerDriver.from_context(ctx, load_spec_cached(SPEC_PATH))


def _emulator(ctx: EmulatorContext) -> CoffeeMakerEmulator:
    return CoffeeMakerEmulator(
        ctx.name,
        load_spec_cached(SPEC_PATH),
        defects=ctx.defects,
        time_scale=ctx.time_scale,
        settings=ctx.settings,
    )


DEVICE_TYPE = DeviceType(
    name="coffee_maker",
    transport="serial",
    definition=definition,
    driver=_driver,
    emulator=_emulator,
    defects=CoffeeMakerEmulator.DEFECTS,
    description="1450 W coffee maker (MIoT serial, scishare.coffee.v2)",
)
