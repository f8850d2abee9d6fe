"""A MIoT appliance type from its spec file, driver class and emulator class.

Every MIoT appliance registers the same way: signals and stimuli from its
spec plus the physical inputs a bench can impose, a module-side driver and an
MCU emulator built on the same spec. This keeps each device package to what
is its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from hil.bench.definition import DeviceDefinition, SignalInfo
from hil.bench.registry import DeviceType, DriverContext, EmulatorContext
from hil.emulation.base import Emulator
from hil.miot.module import MiotModuleDriver
from hil.miot.spec import MiotSpec, load_spec_cached


class _EmulatorClass(Protocol):
    DEFECTS: Mapping[str, str]

    def __call__(
        self,
        name: str,
        spec: MiotSpec,
        *,
        defects: Any,
        time_scale: float,
        settings: Mapping[str, Any],
    ) -> Emulator: ...


def miot_device_type(
    *,
    name: str,
    spec_path: Path,
    driver: type[MiotModuleDriver],
    emulator: _EmulatorClass,
    inputs: Mapping[str, SignalInfo],
    capabilities: frozenset[str],
    description: str,
) -> DeviceType:
    def definition(settings: Mapping[str, Any]) -> DeviceDefinition:
        return load_spec_cached(spec_path).definition(
            name, inputs=inputs, capabilities=capabilities, files=(spec_path,)
        )

    def make_driver(ctx: DriverContext) -> MiotModuleDriver:
        return driver.from_context(ctx, load_spec_cached(spec_path))

    def make_emulator(ctx: EmulatorContext) -> Emulator:
        return emulator(
            ctx.name,
            load_spec_cached(spec_path),
            defects=ctx.defects,
            time_scale=ctx.time_scale,
            settings=ctx.settings,
        )

    return DeviceType(
        name=name,
        transport="serial",
        definition=definition,
        driver=make_driver,
        emulator=make_emulator,
        defects=emulator.DEFECTS,
        description=description,
    )
