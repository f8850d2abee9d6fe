"""``air_conditioner``: a 2.6 kW split air conditioner speaking MIoT serial."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devices.air_conditioner.driver import AirConditionerDriver
from devices.air_conditioner.emulator import AirConditionerEmulator
from hil.bench.definition import DeviceDefinition, SignalInfo
from hil.bench.registry import DeviceType, DriverContext, EmulatorContext
from hil.miot.spec import load_spec_cached

SPEC_PATH = Path(__file__).with_name("spec.yaml")

INPUTS: Mapping[str, SignalInfo] = {}
CAPABILITIES = frozenset({"miot", "climate", "power_source"})


def definition(settings: Mapping[str, Any]) -> DeviceDefinition:
    """Signals and stimuli from spec.yaml plus the bench inputs; opens nothing."""
    return load_spec_cached(SPEC_PATH).definition(
        "air_conditioner", inputs=INPUTS, capabilities=CAPABILITIES, files=(SPEC_PATH,)
    )


def _driver(ctx: DriverContext) -> AirConditionerDriver:
    return AirConditionerDriver.from_context(ctx, load_spec_cached(SPEC_PATH))


def _emulator(ctx: EmulatorContext) -> AirConditionerEmulator:
    return AirConditionerEmulator(
        ctx.name,
        load_spec_cached(SPEC_PATH),
        defects=ctx.defects,
        time_scale=ctx.time_scale,
        settings=ctx.settings,
    )


DEVICE_TYPE = DeviceType(
    name="air_conditioner",
    transport="serial",
    definition=definition,
    driver=_driver,
    emulator=_emulator,
    defects=AirConditionerEmulator.DEFECTS,
    description="2.6 kW split air conditioner (MIoT serial, xiaomi.aircondition.v4)",
)
