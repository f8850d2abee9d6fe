"""The home hub as the bench sees it: a CAN node on the home bus (hub.dbc).

Also the one place that says what the hub's CAN database is; the emulator
imports it from here. The bench plays node ``HIL`` (``HIL_HubCtrl``: the
household limit, who controls the charger, counter reset) and has one
physical input, ``charger_link``: the cable between the hub and the
charger's bus (false pulls it, for X4).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hil.bench.definition import DeviceDefinition, SignalInfo, StimulusInfo
from hil.cannode.definition import can_definition
from hil.cannode.driver import CanNodeDriver, Database
from hil.transports.can import CanTransport, load_dbc

DBC_PATH = Path(__file__).with_name("hub.dbc")
TYPE_NAME = "hub"
BENCH_NODES = ("HIL",)
HUB_NODES = ("HUB",)
STATUS = "HUB_Status"
CTRL = "HIL_HubCtrl"
MODEL = "home hub"

INPUTS: Mapping[str, SignalInfo] = {
    "charger_link": SignalInfo(
        "charger_link",
        "bool",
        description="the hub's cable to the charger's bus: false pulls it, true plugs it back",
    ),
}


@functools.cache
def load_database() -> Database:
    return load_dbc(DBC_PATH)


def hub_definition(settings: Mapping[str, Any]) -> DeviceDefinition:
    """The hub's signals and stimuli, from its DBC plus its bench input; opens nothing."""
    definition = can_definition(
        load_database(),
        type_name=TYPE_NAME,
        bench_nodes=BENCH_NODES,
        files=(DBC_PATH,),
        capabilities=frozenset(
            {"can", "geofence", "occupancy", "scenes", "load_management", "notifications"}
        ),
    )
    stimuli = dict(definition.stimuli)
    for name, info in INPUTS.items():
        stimuli[name] = StimulusInfo(name, "input", {"value": info}, info.description)
    return dataclasses.replace(
        definition, stimuli=stimuli, known_capabilities=frozenset({"voice", "matter"})
    )


class HubDriver(CanNodeDriver):
    """Watch the hub's status and notifications; set its household limit.

    >>> hub.set_household_limit(15)                          # doctest: +SKIP
    >>> hub.wait_for("HUB_Status.ChargeLimit", 0, 10)        # doctest: +SKIP
    """

    PULSE = "HUB_Status"

    def __init__(
        self, name: str, transport: CanTransport, definition: DeviceDefinition | None = None
    ) -> None:
        super().__init__(name, transport, load_database(), definition or hub_definition({}))

    def identity(self) -> dict[str, str]:
        """Model, serial, firmware and hardware from the HUB_Info frame (bounded wait)."""
        v = {
            s: int(self.read(f"HUB_Info.{s}").value)
            for s in ("SwMajor", "SwMinor", "SwPatch", "HwRevision", "SerialNumber")
        }
        return {
            "model": MODEL,
            "serial": f"{v['SerialNumber']:010d}",
            "firmware": f"{v['SwMajor']}.{v['SwMinor']}.{v['SwPatch']}",
            "hardware": f"rev {v['HwRevision']}",
        }

    def label(self, signal: str) -> str:
        """The value-table name of ``signal``'s newest value (``"HOME"``)."""
        return self.definition.signals[signal].label(self.read(signal).value)

    @property
    def occupancy(self) -> str:
        return self.label(f"{STATUS}.Occupancy")

    @property
    def charge_limit(self) -> float:
        return float(self.read(f"{STATUS}.ChargeLimit").value)

    def control(
        self, *, household_limit_a: float = 0.0, bench_controls_charger: bool = False
    ) -> float:
        """Send ``HIL_HubCtrl`` (0 A = the hub's installation setting); its capture time."""
        return self.send_message(
            CTRL,
            {"HouseholdLimit": household_limit_a, "ChargeControl": int(bench_controls_charger)},
        )

    def set_household_limit(self, amps: float) -> float:
        return self.control(household_limit_a=amps)

    def reset_counters(self) -> float:
        return self.send_message(CTRL, {"ResetCounters": 1})
