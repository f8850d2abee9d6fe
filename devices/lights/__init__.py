"""``lights``: a 9 W tunable-white ceiling light with scenes speaking MIoT serial."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from devices.lights.driver import LightsDriver
from devices.lights.emulator import LightsEmulator
from hil.bench.definition import SignalInfo
from hil.miot.device_type import miot_device_type

SPEC_PATH = Path(__file__).with_name("spec.yaml")

INPUTS: Mapping[str, SignalInfo] = {}
CAPABILITIES = frozenset({"miot", "light", "scenes", "power_source"})


DEVICE_TYPE = miot_device_type(
    name="lights",
    spec_path=SPEC_PATH,
    driver=LightsDriver,
    emulator=LightsEmulator,
    inputs=INPUTS,
    capabilities=CAPABILITIES,
    description="9 W tunable-white ceiling light with scenes (MIoT serial, yeelink.light.v3)",
)
definition = DEVICE_TYPE.definition
