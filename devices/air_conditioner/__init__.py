"""``air_conditioner``: a 2.6 kW split air conditioner speaking MIoT serial."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from devices.air_conditioner.driver import AirConditionerDriver
from devices.air_conditioner.emulator import AirConditionerEmulator
from hil.bench.definition import SignalInfo
from hil.miot.device_type import miot_device_type

SPEC_PATH = Path(__file__).with_name("spec.yaml")

INPUTS: Mapping[str, SignalInfo] = {}
CAPABILITIES = frozenset({"miot", "climate", "power_source"})


DEVICE_TYPE = miot_device_type(
    name="air_conditioner",
    spec_path=SPEC_PATH,
    driver=AirConditionerDriver,
    emulator=AirConditionerEmulator,
    inputs=INPUTS,
    capabilities=CAPABILITIES,
    description="2.6 kW split air conditioner (MIoT serial, xiaomi.aircondition.v4)",
)
definition = DEVICE_TYPE.definition
