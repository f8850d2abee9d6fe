"""``phone``: the person's phone, driven through a test-harness app speaking MIoT serial."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from devices.phone.driver import PhoneDriver
from devices.phone.emulator import PhoneEmulator
from hil.bench.definition import SignalInfo
from hil.bench.driver import Driver
from hil.bench.registry import DriverContext, EmulatorContext
from hil.emulation.base import Emulator
from hil.miot.device_type import miot_device_type
from hil.miot.spec import load_spec_cached

SPEC_PATH = Path(__file__).with_name("spec.yaml")

INPUTS: Mapping[str, SignalInfo] = {
    "distance": SignalInfo(
        "distance",
        "number",
        unit="m",
        minimum=0,
        description="the person carrying the phone is this far from the car's driver door",
    ),
    "relay": SignalInfo(
        "relay",
        "bool",
        description="a relay attack: the phone's BLE link to the car is relayed from afar",
    ),
    "paired": SignalInfo(
        "paired", "bool", description="the phone holds a digital key paired with the car"
    ),
    "at_home": SignalInfo(
        "at_home",
        "bool",
        description="the person with the phone is at home (true) or away; the app tells the hub",
    ),
}
CAPABILITIES = frozenset({"miot", "phone", "digital_key", "hub_app", "notifications"})


def _driver(ctx: DriverContext) -> Driver:
    # the phone's links are the app's own (hub) and its radio's (car): the bench's
    # side of the harness link is no Wi-Fi module and forwards nothing to the hub
    return PhoneDriver.from_context(dataclasses.replace(ctx, links={}), load_spec_cached(SPEC_PATH))


def _emulator(ctx: EmulatorContext) -> Emulator:
    # the MIoT factory does not pass links; the phone needs its hub and its car
    return PhoneEmulator(
        ctx.name,
        load_spec_cached(SPEC_PATH),
        defects=ctx.defects,
        time_scale=ctx.time_scale,
        settings=ctx.settings,
        links=ctx.links,
    )


DEVICE_TYPE = dataclasses.replace(
    miot_device_type(
        name="phone",
        spec_path=SPEC_PATH,
        driver=PhoneDriver,
        emulator=PhoneEmulator,
        inputs=INPUTS,
        capabilities=CAPABILITIES,
        description="The person's phone: car digital key, home app, hub notifications "
        "(test-harness app on MIoT serial)",
    ),
    driver=_driver,
    emulator=_emulator,
)
definition = DEVICE_TYPE.definition
