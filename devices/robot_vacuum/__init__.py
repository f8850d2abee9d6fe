"""``robot_vacuum``: a robot vacuum on its charging dock, speaking MIoT serial."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from devices.robot_vacuum.driver import RobotVacuumDriver
from devices.robot_vacuum.emulator import RobotVacuumEmulator
from hil.bench.definition import SignalInfo
from hil.miot.device_type import miot_device_type

SPEC_PATH = Path(__file__).with_name("spec.yaml")

INPUTS: Mapping[str, SignalInfo] = {
    "stuck": SignalInfo(
        "stuck", "bool", description="true jams a wheel: the robot stops with fault stuck"
    ),
}
CAPABILITIES = frozenset({"miot", "vacuum", "occupancy_rule", "power_source"})


DEVICE_TYPE = miot_device_type(
    name="robot_vacuum",
    spec_path=SPEC_PATH,
    driver=RobotVacuumDriver,
    emulator=RobotVacuumEmulator,
    inputs=INPUTS,
    capabilities=CAPABILITIES,
    description="Robot vacuum on a charging dock with an occupancy rule (MIoT serial, "
    "dreame.vacuum.v4)",
)
definition = DEVICE_TYPE.definition
