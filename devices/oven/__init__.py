"""``oven``: a 2.5 kW built-in oven speaking MIoT serial."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from devices.oven.driver import OvenDriver
from devices.oven.emulator import OvenEmulator
from hil.bench.definition import Envelope, SignalInfo
from hil.bench.registry import SafeAction
from hil.miot.device_type import miot_device_type

SPEC_PATH = Path(__file__).with_name("spec.yaml")

INPUTS: Mapping[str, SignalInfo] = {
    "door": SignalInfo("door", "bool", description="the oven door is open (true) or closed"),
    "local_confirm": SignalInfo(
        "local_confirm",
        "bool",
        description="true presses the oven's own button: confirms or arms a remote preheat",
    ),
    "mains": SignalInfo(
        "mains", "bool", description="mains present (false cuts the oven's supply, MCU included)"
    ),
    "display": SignalInfo(
        "display", "bool", description="clock/status display on (standby with display, N2)"
    ),
    "network": SignalInfo(
        "network", "bool", description="Wi-Fi module associated and idle (networked standby, N3)"
    ),
}
CAPABILITIES = frozenset({"miot", "oven", "heating", "power_source"})


DEVICE_TYPE = miot_device_type(
    name="oven",
    spec_path=SPEC_PATH,
    driver=OvenDriver,
    emulator=OvenEmulator,
    inputs=INPUTS,
    capabilities=CAPABILITIES,
    description="2.5 kW built-in oven with a remote-preheat policy (MIoT serial, chunmi.oven.v2)",
)
# the interlock switches the oven off (programme stopped, heater de-energised)
DEVICE_TYPE = replace(
    DEVICE_TYPE,
    safe_state=(SafeAction("oven.on", {"value": False}, "oven off, heater off"),),
    safe_rank=30,
    # the cavity never goes far past the highest settable temperature (250 °C)
    envelope=(
        Envelope("max-temperature", "cavity at most 280 °C", "self.oven.temperature <= 280"),
    ),
)
definition = DEVICE_TYPE.definition
