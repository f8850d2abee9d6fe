"""WT310-style single-element power analyzer over VISA/SCPI (IEC 62301 standby power)."""

from devices.power_analyzer.definition import TYPE_NAME, definition
from devices.power_analyzer.driver import PowerAnalyzerDriver
from devices.power_analyzer.driver import create as create_driver
from devices.power_analyzer.emulator import PowerAnalyzerEmulator
from devices.power_analyzer.emulator import create as create_emulator
from hil.bench.registry import DeviceType

DEVICE_TYPE = DeviceType(
    name=TYPE_NAME,
    transport="visa",
    definition=definition,
    driver=create_driver,
    emulator=create_emulator,
    defects=PowerAnalyzerEmulator.DEFECTS,
    description="Yokogawa WT310-style power analyzer (SCPI over VISA): U, I, P, power factor, "
    "crest factors and integrated energy for standby-power measurements",
)

__all__ = ["DEVICE_TYPE", "PowerAnalyzerDriver", "PowerAnalyzerEmulator"]
