"""A CAN node's device type from its definition function, driver and emulator classes.

Every CAN device registers the same way: the driver gets the bench's open
``CanTransport``; the emulator opens its own bus on the same interface and
channel, with the bus options the bench file gives, and the emulators its
``wiring`` names (physics between emulated devices, e.g. a car's charge inlet
wired to a wallbox).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from hil.bench.definition import DeviceDefinition, Envelope
from hil.bench.driver import Driver
from hil.bench.registry import DeviceType, DriverContext, EmulatorContext, SafeAction
from hil.emulation.base import Emulator
from hil.errors import BenchError
from hil.transports.can import CanTransport

BUS_OPTIONS = ("bitrate", "fd", "data_bitrate")


class _EmulatorClass(Protocol):
    DEFECTS: Mapping[str, str]

    def __call__(
        self,
        name: str,
        *,
        interface: str,
        channel: str,
        bus_kwargs: dict[str, Any],
        defects: Any,
        time_scale: float,
        settings: Mapping[str, Any],
        wiring: Mapping[str, Emulator],
    ) -> Emulator: ...


DriverFactory = Callable[[str, CanTransport, DeviceDefinition, Mapping[str, Any]], Driver]


def can_device_type(
    *,
    name: str,
    definition: Callable[[Mapping[str, Any]], DeviceDefinition],
    driver: DriverFactory,
    emulator: _EmulatorClass,
    description: str,
    safe_state: tuple[SafeAction, ...] = (),
    safe_rank: int = 50,
    envelope: tuple[Envelope, ...] = (),
) -> DeviceType:
    def make_driver(ctx: DriverContext) -> Driver:
        if not isinstance(ctx.transport, CanTransport):
            raise BenchError(
                f"device {ctx.name!r} of type {name!r} needs a CAN transport, "
                f"got {type(ctx.transport).__name__}"
            )
        return driver(ctx.name, ctx.transport, ctx.definition, ctx.settings)

    def make_emulator(ctx: EmulatorContext) -> Emulator:
        link = ctx.transport
        for key in ("interface", "channel"):
            if key not in link:
                raise BenchError(f"emulated {name} {ctx.name!r}: transport section lacks {key!r}")
        return emulator(
            ctx.name,
            interface=str(link["interface"]),
            channel=str(link["channel"]),
            # the bench file's options too: a node behind a socketcand server needs host/port
            bus_kwargs={
                **dict(link.get("options") or {}),
                **{k: link[k] for k in BUS_OPTIONS if k in link},
            },
            defects=ctx.defects,
            time_scale=ctx.time_scale,
            settings=ctx.settings,
            wiring=ctx.wiring,
        )

    return DeviceType(
        name=name,
        transport="can",
        definition=definition,
        driver=make_driver,
        emulator=make_emulator,
        defects=emulator.DEFECTS,
        description=description,
        safe_state=safe_state,
        safe_rank=safe_rank,
        envelope=envelope,
    )
