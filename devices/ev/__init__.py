"""The EV: battery, drive and door locks on CAN, E2E-protected where it matters."""

from __future__ import annotations

from devices.ev.driver import EvDriver, ev_definition
from devices.ev.emulator import EvEmulator
from hil.bench.definition import Envelope
from hil.bench.registry import SafeAction
from hil.cannode.device_type import can_device_type

DEVICE_TYPE = can_device_type(
    name="ev",
    definition=ev_definition,
    driver=EvDriver,
    emulator=EvEmulator,
    description="Electric car (BMS, VCU, BCM) on CAN: speed, gear, door locks, battery, UDS",
    # the rig brings the car to a stop and drops its HV request (contactors open unless
    # the wallbox still charges it: the charger, ranked before, is unplugged first)
    safe_state=(
        SafeAction(
            "HIL_VehicleSim",
            {"TargetSpeed": 0, "HvRequest": "OFF"},
            "stop the car, HV request off (contactors open)",
        ),
    ),
    safe_rank=20,
    envelope=(
        Envelope(
            "contactors-precharged",
            "main contactors never closed on an uncharged DC link",
            'self.BMS_Status.ContactorState != "CLOSED" '
            "or self.BMS_Status.LinkVoltage >= 0.9 * self.BMS_Status.PackVoltage",
        ),
    ),
)

__all__ = ["DEVICE_TYPE", "EvDriver", "EvEmulator"]
