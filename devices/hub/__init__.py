"""The home hub: geofence, occupancy, scenes, household current, notifications.

A CAN node on the home bus (``hub.dbc``) that reaches its peers over *their*
transports: the car's CAN and the charger's CAN through bench ``links``, the
appliances' Wi-Fi modules and the phone through its TCP API
(``hil/hublink.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from devices.hub.driver import HubDriver, hub_definition
from devices.hub.emulator import HubEmulator
from hil.bench.definition import DeviceDefinition
from hil.bench.registry import EmulatorContext
from hil.cannode.device_type import BUS_OPTIONS, can_device_type
from hil.emulation.base import Emulator
from hil.transports.can import CanTransport


def _driver(
    name: str, transport: CanTransport, definition: DeviceDefinition, settings: Mapping[str, Any]
) -> HubDriver:
    return HubDriver(name, transport, definition)


def _emulator(ctx: EmulatorContext) -> Emulator:
    # the generic CAN factory knows nothing of links: the hub needs its peers
    link = ctx.transport
    return HubEmulator(
        ctx.name,
        interface=str(link["interface"]),
        channel=str(link["channel"]),
        bus_kwargs={k: link[k] for k in BUS_OPTIONS if k in link},
        defects=ctx.defects,
        time_scale=ctx.time_scale,
        settings=ctx.settings,
        links=ctx.links,
    )


DEVICE_TYPE = dataclasses.replace(
    can_device_type(
        name="hub",
        definition=hub_definition,
        driver=_driver,
        emulator=HubEmulator,
        description="Home hub on CAN: geofence, occupancy, scenes, household current limit, "
        "notifications; reaches the car and charger over CAN and the appliances and phone over "
        "its API",
    ),
    emulator=_emulator,
)

__all__ = ["DEVICE_TYPE", "HubDriver", "HubEmulator"]
