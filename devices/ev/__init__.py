"""The EV: battery, drive and door locks on CAN, E2E-protected where it matters."""

from __future__ import annotations

from typing import Any

from devices.ev.driver import EvDriver, ev_definition
from devices.ev.emulator import EvEmulator
from hil.bench.registry import DeviceType, DriverContext, EmulatorContext
from hil.errors import BenchError
from hil.transports.can import CanTransport

_BUS_OPTIONS = ("bitrate", "fd", "data_bitrate")


def _driver(ctx: DriverContext) -> EvDriver:
    if not isinstance(ctx.transport, CanTransport):
        raise BenchError(
            f"device {ctx.name!r} of type 'ev' needs a CAN transport, "
            f"got {type(ctx.transport).__name__}"
        )
    return EvDriver(ctx.name, ctx.transport, ctx.definition, ctx.settings)


def _emulator(ctx: EmulatorContext) -> EvEmulator:
    transport = ctx.transport
    for key in ("interface", "channel"):
        if key not in transport:
            raise BenchError(f"emulated ev {ctx.name!r}: transport section lacks {key!r}")
    bus_kwargs: dict[str, Any] = {k: transport[k] for k in _BUS_OPTIONS if k in transport}
    return EvEmulator(
        ctx.name,
        interface=str(transport["interface"]),
        channel=str(transport["channel"]),
        bus_kwargs=bus_kwargs,
        defects=ctx.defects,
        time_scale=ctx.time_scale,
        settings=ctx.settings,
    )


DEVICE_TYPE = DeviceType(
    name="ev",
    transport="can",
    definition=ev_definition,
    driver=_driver,
    emulator=_emulator,
    defects=EvEmulator.DEFECTS,
    description="Electric car (BMS, VCU, BCM) on CAN: speed, gear, door locks, battery, UDS",
)

__all__ = ["DEVICE_TYPE", "EvDriver", "EvEmulator"]
