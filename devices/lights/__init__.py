"""``lights``: a 9 W tunable-white ceiling light with scenes speaking MIoT serial."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devices.lights.driver import LightsDriver
from devices.lights.emulator import LightsEmulator
from hil.bench.definition import DeviceDefinition, SignalInfo
from hil.bench.registry import DeviceType, DriverContext, EmulatorContext
from hil.miot.spec import load_spec_cached

SPEC_PATH = Path(__file__).with_name("spec.yaml")

INPUTS: Mapping[str, SignalInfo] = {}
CAPABILITIES = frozenset({"miot", "light", "scenes", "power_source"})


def definition(settings: Mapping[str, Any]) -> DeviceDefinition:
    """Signals and stimuli from spec.yaml plus the bench inputs; opens nothing."""
    return load_spec_cached(SPEC_PATH).definition(
        "lights", inputs=INPUTS, capabilities=CAPABILITIES, files=(SPEC_PATH,)
    )


def _driver(ctx: DriverContext) -> LightsDriver:
    return LightsDriver.from_context(ctx, load_spec_cached(SPEC_PATH))


def _emulator(ctx: EmulatorContext) -> LightsEmulator:
    return LightsEmulator(
        ctx.name,
        load_spec_cached(SPEC_PATH),
        defects=ctx.defects,
        time_scale=ctx.time_scale,
        settings=ctx.settings,
    )


DEVICE_TYPE = DeviceType(
    name="lights",
    transport="serial",
    definition=definition,
    driver=_driver,
    emulator=_emulator,
    defects=LightsEmulator.DEFECTS,
    description="9 W tunable-white ceiling light with scenes (MIoT serial, yeelink.light.v3)",
)
