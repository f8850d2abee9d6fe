"""The EV: battery, drive and door locks on CAN, E2E-protected where it matters."""

from __future__ import annotations

from devices.ev.driver import EvDriver, ev_definition
from devices.ev.emulator import EvEmulator
from hil.cannode.device_type import can_device_type

DEVICE_TYPE = can_device_type(
    name="ev",
    definition=ev_definition,
    driver=EvDriver,
    emulator=EvEmulator,
    description="Electric car (BMS, VCU, BCM) on CAN: speed, gear, door locks, battery, UDS",
)

__all__ = ["DEVICE_TYPE", "EvDriver", "EvEmulator"]
