"""Read a bench file: strict YAML → pydantic → checks against the device registry."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hil.bench.config import AUTO, SUPPORTED_SPEC, BenchConfig, DeviceConfig
from hil.bench.definition import DeviceDefinition
from hil.bench.links import check_links
from hil.bench.registry import get_device_type
from hil.emulation.physics import HOUSEHOLD
from hil.errors import BenchError, HilError, did_you_mean
from hil.secrets import resolve_tree
from hil.yamlio import Locations, check_spec, load_file, validate


@dataclass(frozen=True)
class LoadedBench:
    """A validated bench file, with where it came from (for reports)."""

    config: BenchConfig
    path: Path
    sha256: str
    locations: Locations

    @property
    def id(self) -> str:
        return self.config.id

    def capabilities(self) -> dict[str, frozenset[str]]:
        """What each device supports: the bench's declaration, else the type's defaults."""
        defs = self.definitions()
        return {
            name: frozenset(dev.capabilities)
            if dev.capabilities is not None
            else defs[name].capabilities
            for name, dev in self.config.devices.items()
        }

    def parameter_overrides(self, plan_id: str) -> dict[str, Any]:
        """The bench's parameter values for ``plan_id`` ('*' first, then the plan's own)."""
        params = self.config.parameters
        return {**params.get("*", {}), **params.get(plan_id, {})}

    def definitions(self) -> dict[str, DeviceDefinition]:
        """Each device's definition; nothing is opened."""
        out: dict[str, DeviceDefinition] = {}
        for name, dev in self.config.devices.items():
            try:
                dtype = get_device_type(dev.type)
                out[name] = dtype.definition(dev.settings)
                if dtype.envelope:
                    out[name] = replace(out[name], envelope=dtype.envelope)
            except BenchError:
                raise
            except HilError as err:
                raise self.locations.error(
                    BenchError, ("devices", name, "type"), f"device {name!r}: {err}"
                ) from err
        return out


def load_bench(path: Path, defects: Iterable[str] = ()) -> LoadedBench:
    """Load and check ``path``; ``defects`` are ``device:defect`` overrides to inject."""
    data, locs = load_file(path, BenchError)
    check_spec(data, locs, SUPPORTED_SPEC, BenchError, "bench file")
    # ${ENV:NAME} references: the values become secrets that every report masks
    data = resolve_tree(data, lambda where, why: locs.error(BenchError, where, why))
    config = validate(BenchConfig, data, locs, BenchError)
    config = _with_defects(config, list(defects), locs)
    for name, dev in config.devices.items():
        _check_device(name, dev, config, locs)
    check_links(config, locs)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return LoadedBench(config, path, sha, locs)


def _with_defects(config: BenchConfig, overrides: list[str], locs: Locations) -> BenchConfig:
    if not overrides:
        return config
    devices = dict(config.devices)
    for item in overrides:
        device, sep, defect = item.partition(":")
        if not sep or not device or not defect:
            raise BenchError(
                f"defect override {item!r} must look like DEVICE:DEFECT", file=locs.file
            )
        if device not in devices:
            raise BenchError(
                f"defect override {item!r} names unknown device {device!r}; "
                + did_you_mean(device, devices),
                file=locs.file,
            )
        dev = devices[device]
        devices[device] = dev.model_copy(update={"defects": [*dev.defects, defect]})
    return config.model_copy(update={"devices": devices})


def _check_device(name: str, dev: DeviceConfig, config: BenchConfig, locs: Locations) -> None:
    here = ("devices", name)
    try:
        dtype = get_device_type(dev.type)
    except BenchError as err:
        raise locs.error(BenchError, (*here, "type"), f"device {name!r}: {err.message}") from err
    links = {"can": dev.can, "serial": dev.serial, "visa": dev.visa}
    given = [k for k, v in links.items() if v is not None]
    if given != [dtype.transport]:
        wrong = [k for k in given if k != dtype.transport]
        where = (*here, wrong[0]) if wrong else here
        raise locs.error(
            BenchError,
            where,
            f"device {name!r} of type {dev.type!r} is reached over {dtype.transport!r}: "
            f"give a '{dtype.transport}:' section" + (f", not {wrong}" if wrong else ""),
        )
    link = links[dtype.transport]
    endpoint = getattr(link, "port", None) or getattr(link, "resource", None)
    if endpoint == AUTO and not dev.emulated:
        raise locs.error(
            BenchError,
            (*here, dtype.transport),
            f"device {name!r} is real (emulated: false) so it needs a real "
            f"{'port' if dtype.transport == 'serial' else 'resource'}, not 'auto'",
        )
    if dev.actuator is not None and (dev.emulated or dev.actuator.resource == AUTO):
        raise locs.error(
            BenchError,
            (*here, "actuator"),
            f"device {name!r}: an actuator imposes a real device's inputs from a real "
            "resource; an emulated device is its own actuator and 'auto' names none",
        )
    if dev.emulated and dtype.emulator is None:
        raise locs.error(
            BenchError, (*here, "emulated"), f"device type {dev.type!r} has no emulator"
        )
    for i, defect in enumerate(dev.defects):
        if not dev.emulated:
            raise locs.error(
                BenchError, (*here, "defects"), f"device {name!r}: defects need 'emulated: true'"
            )
        if defect not in dtype.defects:
            raise locs.error(
                BenchError,
                (*here, "defects", i),
                f"device {name!r}: unknown defect {defect!r}; "
                + did_you_mean(defect, dtype.defects),
            )
    if dev.capabilities is not None:
        known = dtype.definition(dev.settings).all_capabilities
        for i, cap in enumerate(dev.capabilities):
            if cap not in known:
                raise locs.error(
                    BenchError,
                    (*here, "capabilities", i),
                    f"device {name!r}: unknown capability {cap!r} for type {dev.type!r}; "
                    + did_you_mean(cap, known),
                )
    for channel, target in dev.wiring.items():
        if target == HOUSEHOLD:
            continue  # the whole house's feed: every emulated PowerSource on the bench
        if target not in config.devices:
            raise locs.error(
                BenchError,
                (*here, "wiring", channel),
                f"device {name!r} channel {channel} is wired to unknown device {target!r}; "
                + did_you_mean(target, config.devices),
            )
        if dev.emulated and not config.devices[target].emulated:
            raise locs.error(
                BenchError,
                (*here, "wiring", channel),
                f"emulated {name!r} cannot measure real device {target!r}: "
                "an emulated instrument reads emulated physics only",
            )
