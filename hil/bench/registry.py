"""Device types, found through the ``hil.devices`` entry-point group.

Like python-can's interface registry: names map to ``module:object``, third
parties add device types by declaring an entry point, and a failed import
becomes a typed error naming the device type.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from hil.bench.definition import DeviceDefinition, Envelope, TransportKind
from hil.bench.driver import Driver
from hil.bench.links import Links
from hil.emulation.base import Emulator
from hil.errors import BenchError, did_you_mean
from hil.lifecycle import Resource

GROUP = "hil.devices"


@dataclass(frozen=True)
class DriverContext:
    """What a driver factory gets: an open transport and the definition.

    ``links`` maps each role of the device's bench ``links`` section to the
    peers, already open (see hil/bench/links.py for the contract).
    """

    name: str
    transport: Resource
    definition: DeviceDefinition
    settings: Mapping[str, Any]
    links: Links = field(default_factory=dict)


@dataclass(frozen=True)
class EmulatorContext:
    """What an emulator factory gets, before anything is opened.

    ``transport`` is the bench's transport section for the device (for CAN:
    interface, channel, bitrate…); ``wiring`` maps analyzer channel names to
    the emulators they measure; ``links`` maps each role of the bench
    ``links`` section to the peers, already open, with the transport settings
    the bench opened for them (see hil/bench/links.py for the contract).
    """

    name: str
    definition: DeviceDefinition
    defects: tuple[str, ...]
    time_scale: float
    settings: Mapping[str, Any]
    transport: Mapping[str, Any]
    wiring: Mapping[str, Emulator] = field(default_factory=dict)
    links: Links = field(default_factory=dict)


@dataclass(frozen=True)
class SafeAction:
    """One step towards a device's safe state, through its own stimuli (so it works on
    real hardware too): ``SafeAction("switch.on", {"value": False})``."""

    stimulus: str
    values: Mapping[str, Any]
    description: str = ""
    # (signal, values): read first and skip when already safe — for commands a device
    # refuses when there is nothing to do (an analyzer's STOP while not integrating)
    unless: tuple[str, tuple[Any, ...]] | None = None


@dataclass(frozen=True)
class DeviceType:
    """A kind of device hil knows how to drive and emulate."""

    name: str
    transport: TransportKind
    definition: Callable[[Mapping[str, Any]], DeviceDefinition]
    driver: Callable[[DriverContext], Driver]
    emulator: Callable[[EmulatorContext], Emulator] | None = None
    defects: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    # what the interlock does on every abort path (heaters off, relays open, charging
    # stopped), in order; lower ``safe_rank`` devices are made safe first (sources of
    # energy before the loads they feed)
    safe_state: tuple[SafeAction, ...] = ()
    safe_rank: int = 50
    # safety limits checked in every plan that uses a device of this type
    envelope: tuple[Envelope, ...] = ()


@functools.cache
def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def device_type_names() -> list[str]:
    return sorted(_entry_points())


@functools.cache
def get_device_type(name: str) -> DeviceType:
    eps = _entry_points()
    if name not in eps:
        raise BenchError(f"unknown device type {name!r}; " + did_you_mean(name, eps))
    try:
        obj = eps[name].load()
    except Exception as err:  # any import failure is reported the same way
        raise BenchError(f"device type {name!r} failed to import: {err}") from err
    if not isinstance(obj, DeviceType):
        raise BenchError(
            f"entry point {name!r} in {GROUP!r} is {type(obj).__name__}, not a DeviceType"
        )
    return obj
