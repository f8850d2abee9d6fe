"""``fridge``: a refrigerator with a door-open alarm speaking MIoT serial."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from devices.fridge.driver import FridgeDriver
from devices.fridge.emulator import FridgeEmulator
from hil.bench.definition import SignalInfo
from hil.miot.device_type import miot_device_type

SPEC_PATH = Path(__file__).with_name("spec.yaml")

INPUTS: Mapping[str, SignalInfo] = {
    "door": SignalInfo("door", "bool", description="the fridge door is open (true) or closed"),
}
CAPABILITIES = frozenset({"miot", "fridge", "door_alarm", "power_source"})


DEVICE_TYPE = miot_device_type(
    name="fridge",
    spec_path=SPEC_PATH,
    driver=FridgeDriver,
    emulator=FridgeEmulator,
    inputs=INPUTS,
    capabilities=CAPABILITIES,
    description="Refrigerator with a door-open alarm (MIoT serial, viomi.fridge.v3)",
)
definition = DEVICE_TYPE.definition
