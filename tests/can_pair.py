"""One CAN device type, emulated on a fresh virtual channel, with its driver on the
bench's real CanTransport — the setup the CAN device tests share."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from hil.bench.driver import Driver
from hil.bench.registry import DeviceType, DriverContext, EmulatorContext
from hil.emulation.base import Emulator
from hil.transports.can import CanTransport


@contextmanager
def can_pair(
    device_type: DeviceType,
    defects: tuple[str, ...] = (),
    settings: Mapping[str, Any] | None = None,
    *,
    definition_settings: Mapping[str, Any] | None = None,
    wiring: Mapping[str, Emulator] | None = None,
) -> Iterator[tuple[Driver, Emulator]]:
    """Yield (driver, emulator) for ``device_type``; everything is closed afterwards.

    ``definition_settings`` (default: ``settings``) is what the definition is
    built from, for tests that compare a device against its plain definition;
    ``wiring`` hands the emulator the (open) emulators the bench file's
    ``wiring`` would.
    """
    name = device_type.name
    settings = dict(settings or {})
    channel = f"{name}-{uuid.uuid4().hex[:8]}"
    definition = device_type.definition(
        settings if definition_settings is None else definition_settings
    )
    ctx = EmulatorContext(
        name=name,
        definition=definition,
        defects=defects,
        time_scale=1.0,
        settings=settings,
        transport={"interface": "virtual", "channel": channel},
        wiring=dict(wiring or {}),
    )
    assert device_type.emulator is not None
    with (
        CanTransport(name, interface="virtual", channel=channel) as transport,
        device_type.emulator(ctx) as emu,
    ):
        driver = device_type.driver(DriverContext(name, transport, definition, settings))
        try:
            yield driver, emu
        finally:
            driver.close()
