"""``smart_plug``: a 10 A metering plug speaking MIoT serial."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from devices.smart_plug.driver import SmartPlugDriver
from devices.smart_plug.emulator import SmartPlugEmulator
from hil.bench.definition import SignalInfo
from hil.bench.registry import SafeAction
from hil.miot.device_type import miot_device_type

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
    "relay_welded": SignalInfo(
        "relay_welded",
        "bool",
        description="true welds the relay's contacts shut: they stay closed whatever is commanded",
    ),
}
CAPABILITIES = frozenset({"miot", "switch", "power_metering", "power_source"})


DEVICE_TYPE = miot_device_type(
    name="smart_plug",
    spec_path=SPEC_PATH,
    driver=SmartPlugDriver,
    emulator=SmartPlugEmulator,
    inputs=INPUTS,
    capabilities=CAPABILITIES,
    description="10 A metering smart plug (MIoT serial, cuco.plug.v3)",
)
# the interlock opens the relay: whatever is plugged in loses its supply
DEVICE_TYPE = replace(
    DEVICE_TYPE,
    safe_state=(SafeAction("switch.on", {"value": False}, "relay open"),),
    safe_rank=40,
)
definition = DEVICE_TYPE.definition
