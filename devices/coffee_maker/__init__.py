"""``coffee_maker``: a 1450 W coffee maker speaking MIoT serial."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from devices.coffee_maker.driver import CoffeeMakerDriver
from devices.coffee_maker.emulator import CoffeeMakerEmulator
from hil.bench.definition import SignalInfo
from hil.miot.device_type import miot_device_type

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


DEVICE_TYPE = miot_device_type(
    name="coffee_maker",
    spec_path=SPEC_PATH,
    driver=CoffeeMakerDriver,
    emulator=CoffeeMakerEmulator,
    inputs=INPUTS,
    capabilities=CAPABILITIES,
    description="1450 W coffee maker (MIoT serial, scishare.coffee.v2)",
)
definition = DEVICE_TYPE.definition
