"""WT300-series power analyzer (1 to 3 elements) over VISA/SCPI (IEC 62301 standby power)."""

from devices.power_analyzer.definition import TYPE_NAME, definition
from devices.power_analyzer.driver import PowerAnalyzerDriver
from devices.power_analyzer.driver import create as create_driver
from devices.power_analyzer.emulator import PowerAnalyzerEmulator
from devices.power_analyzer.emulator import create as create_emulator
from hil.bench.registry import DeviceType, SafeAction

DEVICE_TYPE = DeviceType(
    name=TYPE_NAME,
    transport="visa",
    definition=definition,
    driver=create_driver,
    emulator=create_emulator,
    defects=PowerAnalyzerEmulator.DEFECTS,
    description="Yokogawa WT300-series power analyzer, 1 to 3 elements (SCPI over VISA): U, I, P, "
    "power factor, crest factors, THD and integrated energy for IEC 62301 standby power",
    # the interlock stops integration last: the energy of the abort is still counted
    safe_state=(
        SafeAction(
            "integration",
            {"command": "STOP"},
            "integration stopped",
            unless=("INTEGRATION", (0, 2)),  # RESET or STOP: the instrument refuses a STOP
        ),
    ),
    safe_rank=90,
)

__all__ = ["DEVICE_TYPE", "PowerAnalyzerDriver", "PowerAnalyzerEmulator"]
