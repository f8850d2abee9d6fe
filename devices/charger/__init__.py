"""The AC wallbox: IEC 61851-1 control pilot, home-hub limit and heartbeat, on CAN."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devices.charger.driver import ChargerDriver, charger_definition
from devices.charger.emulator import ChargerEmulator
from hil.bench.definition import DeviceDefinition
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
)

__all__ = ["DEVICE_TYPE", "ChargerDriver", "ChargerEmulator"]
