"""The AC wallbox: IEC 61851-1 control pilot, home-hub limit and heartbeat, on CAN."""

from __future__ import annotations

from typing import Any

from devices.charger.driver import ChargerDriver, charger_definition
from devices.charger.emulator import ChargerEmulator
from hil.bench.registry import DeviceType, DriverContext, EmulatorContext
from hil.errors import BenchError
from hil.transports.can import CanTransport

_BUS_OPTIONS = ("bitrate", "fd", "data_bitrate")


def _driver(ctx: DriverContext) -> ChargerDriver:
    if not isinstance(ctx.transport, CanTransport):
        raise BenchError(
            f"device {ctx.name!r} of type 'charger' needs a CAN transport, "
            f"got {type(ctx.transport).__name__}"
        )
    return ChargerDriver(ctx.name, ctx.transport, ctx.definition)


def _emulator(ctx: EmulatorContext) -> ChargerEmulator:
    transport = ctx.transport
    for key in ("interface", "channel"):
        if key not in transport:
            raise BenchError(f"emulated charger {ctx.name!r}: transport section lacks {key!r}")
    bus_kwargs: dict[str, Any] = {k: transport[k] for k in _BUS_OPTIONS if k in transport}
    return ChargerEmulator(
        ctx.name,
        interface=str(transport["interface"]),
        channel=str(transport["channel"]),
        bus_kwargs=bus_kwargs,
        defects=ctx.defects,
        time_scale=ctx.time_scale,
        settings=ctx.settings,
    )


DEVICE_TYPE = DeviceType(
    name="charger",
    transport="can",
    definition=charger_definition,
    driver=_driver,
    emulator=_emulator,
    defects=ChargerEmulator.DEFECTS,
    description="AC wallbox (IEC 61851-1 control pilot) on CAN: hub limit, heartbeat, fallback",
)

__all__ = ["DEVICE_TYPE", "ChargerDriver", "ChargerEmulator"]
