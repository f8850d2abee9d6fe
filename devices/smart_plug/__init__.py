"""``smart_plug``: a 10 A metering plug speaking MIoT serial."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devices.smart_plug.driver import SmartPlugDriver
from devices.smart_plug.emulator import SmartPlugEmulator
from hil.bench.definition import DeviceDefinition, SignalInfo
from hil.bench.registry import DeviceType, DriverContext, EmulatorContext
from hil.miot.spec import load_spec_cached

SPEC_PATH = Path(__file__).with_name("spec.yaml")

INPUTS: Mapping[str, SignalInfo] = {
    "load_current": SignalInfo(
        "load_current",
        "number",
        unit="A",
        minimum=0.0,
        maximum=32.0,
        description="what the appliance behind the plug draws while the relay is closed",
    ),
}
CAPABILITIES = frozenset({"miot", "switch", "power_metering", "power_source"})


def definition(settings: Mapping[str, Any]) -> DeviceDefinition:
    """Signals and stimuli from spec.yaml plus the bench input; opens nothing."""
    return load_spec_cached(SPEC_PATH).definition(
        "smart_plug", inputs=INPUTS, capabilities=CAPABILITIES, files=(SPEC_PATH,)
    )


def _driver(ctx: DriverContext) -> SmartPlugDriver:
    return SmartPlugDriver.from_context(ctx, load_spec_cached(SPEC_PATH))


def _emulator(ctx: EmulatorContext) -> SmartPlugEmulator:
    return SmartPlugEmulator(
        ctx.name,
        load_spec_cached(SPEC_PATH),
        defects=ctx.defects,
        time_scale=ctx.time_scale,
        settings=ctx.settings,
    )


DEVICE_TYPE = DeviceType(
    name="smart_plug",
    transport="serial",
    definition=definition,
    driver=_driver,
    emulator=_emulator,
    defects=SmartPlugEmulator.DEFECTS,
    description="10 A metering smart plug (MIoT serial, cuco.plug.v3)",
)
