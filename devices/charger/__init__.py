"""The AC wallbox: IEC 61851-1 control pilot, home-hub limit and heartbeat, on CAN."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devices.charger.driver import ChargerDriver, charger_definition
from devices.charger.emulator import ChargerEmulator
from hil.bench.definition import DeviceDefinition, Envelope
from hil.bench.registry import SafeAction
from hil.cannode.device_type import can_device_type
from hil.transports.can import CanTransport


def _driver(
    name: str, transport: CanTransport, definition: DeviceDefinition, settings: Mapping[str, Any]
) -> ChargerDriver:
    return ChargerDriver(name, transport, definition)


DEVICE_TYPE = can_device_type(
    name="charger",
    definition=charger_definition,
    driver=_driver,
    emulator=ChargerEmulator,
    description="AC wallbox (IEC 61851-1 control pilot) on CAN: hub limit, heartbeat, fallback",
    # the rig unplugs the car: pilot state A, no PWM, no current offered (pilot off); the
    # hub's limit is left alone, so a hub on the bench keeps control for the next plan
    safe_state=(
        SafeAction(
            "HIL_EVSE_Ctrl",
            {
                "PlugState": "UNPLUGGED",
                "PilotFault": "NONE",
                "CarMode": "FOLLOWS_PILOT",
                "CarCurrentDemand": 0,
            },
            "car unplugged: pilot off, no current offered",
        ),
    ),
    safe_rank=10,  # the source of the car's energy: before the car itself
    envelope=(
        Envelope(
            "rated-current",
            "never offers more current than its rating",
            "self.EVSE_Status.AllowedCurrent <= self.EVSE_Config.MaxCurrent + 0.5",
        ),
    ),
)

__all__ = ["DEVICE_TYPE", "ChargerDriver", "ChargerEmulator"]
