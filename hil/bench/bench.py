"""The Bench: opens every device of a bench file, emulated or real, and closes them.

For an emulated device the bench first starts its emulator on a real
transport endpoint (a python-can channel, a pty, a loopback TCP port), then
opens the same transport the lab would use and hands it to the driver.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from hil.bench.config import AUTO, DeviceConfig
from hil.bench.definition import DeviceDefinition
from hil.bench.driver import Driver
from hil.bench.links import LinkedDevice, dependencies, link_targets, open_order, peer_map
from hil.bench.loader import LoadedBench, load_bench
from hil.bench.registry import DriverContext, EmulatorContext, get_device_type
from hil.emulation.base import Emulator
from hil.emulation.physics import wired
from hil.errors import BenchError, DeviceError, DeviceLost, EmulatorError, HilError, did_you_mean
from hil.lifecycle import Resource
from hil.transports.actuator import Actuator
from hil.transports.can import CanTransport
from hil.transports.serial import SerialTransport
from hil.transports.visa import VisaTransport

log = logging.getLogger(__name__)
P = TypeVar("P")


class Bench(Resource):
    """Every device of one bench file, opened in dependency order."""

    def __init__(self, loaded: LoadedBench) -> None:
        super().__init__()
        self.loaded = loaded
        self.config = loaded.config
        self.name = loaded.config.id
        self.definitions: dict[str, DeviceDefinition] = loaded.definitions()
        self.drivers: dict[str, Driver] = {}
        self.emulators: dict[str, Emulator] = {}
        self.transports: dict[str, Resource] = {}
        self.actuators: dict[str, Actuator] = {}  # real devices' physical inputs
        self._identities: dict[str, dict[str, str]] | None = None
        self._resolved: dict[str, dict[str, Any]] = {}  # transport settings as opened
        self._endpoints: dict[str, dict[str, Any]] = {}  # what each emulator published
        self._instance = uuid.uuid4().hex[:8]  # isolates virtual channels of parallel benches
        # devices that stopped answering, with the first error: a later plan that needs
        # one reconnects it (if its bench entry allows) or is broken at once
        self.lost: dict[str, DeviceError] = {}

    @property
    def time_scale(self) -> float:
        return self.config.time_scale

    def _open_impl(self) -> None:
        try:
            for name in self._open_order():
                self._open_device(name, self.config.devices[name])
        except BaseException:
            self._close_impl()
            raise

    def _open_order(self) -> list[str]:
        return list(self._order)

    @functools.cached_property
    def _order(self) -> tuple[str, ...]:
        # a wired instrument's emulator reads the emulators it measures, and a linked
        # device's peers must be reachable when it starts: open those first (the bench
        # file does not change while it is open, so worked out once)
        return tuple(open_order(self.config))

    @functools.cached_property
    def _peers(self) -> dict[str, frozenset[str]]:
        return peer_map(self.config)

    def _links(self, dev: DeviceConfig) -> dict[str, tuple[LinkedDevice, ...]]:
        out: dict[str, tuple[LinkedDevice, ...]] = {}
        for role, _index, target in link_targets(dev.links):
            peer = self.config.devices[target]
            linked = LinkedDevice(
                name=target,
                type=peer.type,
                transport=self._resolved[target],
                settings=peer.settings,
                endpoint=self._endpoints.get(target, {}),
                emulator=self.emulators.get(target),
            )
            out[role] = (*out.get(role, ()), linked)
        return out

    def _open_device(self, name: str, dev: DeviceConfig) -> None:
        dtype = get_device_type(dev.type)
        definition = self.definitions[name]
        endpoint: dict[str, Any] = {}
        link = self._link_settings(name, dev)
        links = self._links(dev)
        if dev.emulated:
            assert dtype.emulator is not None
            ctx = EmulatorContext(
                name=name,
                definition=definition,
                defects=tuple(dev.defects),
                time_scale=self.config.time_scale,
                settings=dev.settings,
                transport=link,
                # a channel measures one emulator, or the household feed (every PowerSource)
                wiring={ch: wired(target, self.emulators) for ch, target in dev.wiring.items()},
                links=links,
            )
            emulator = dtype.emulator(ctx)
            self.emulators[name] = emulator
            emulator.open()
            endpoint = dict(emulator.endpoint)
        resolved = self._resolve(name, dtype.transport, link, endpoint)
        self._endpoints[name] = endpoint
        self._resolved[name] = resolved
        transport = self._make_transport(name, dtype.transport, resolved)
        self.transports[name] = transport
        transport.open()
        self.drivers[name] = dtype.driver(
            DriverContext(name, transport, definition, dev.settings, links=links)
        )
        if dev.actuator is not None:
            act = dev.actuator
            self.actuators[name] = Actuator(
                name, resource=act.resource, backend=act.backend, timeout_s=act.timeout_s
            )
            self.actuators[name].open()
        log.info(
            "bench %s: opened %s (%s%s)", self.name, name, dev.type, ", emulated" * dev.emulated
        )

    def _link_settings(self, name: str, dev: DeviceConfig) -> dict[str, Any]:
        link = dev.can or dev.serial or dev.visa
        assert link is not None
        settings = link.model_dump()
        if dev.can is not None and dev.emulated and dev.can.interface == "virtual":
            settings["channel"] = f"{dev.can.channel}-{self._instance}"
        return settings

    @staticmethod
    def _resolve(
        name: str, kind: str, link: Mapping[str, Any], endpoint: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The transport settings the bench opens: the bench file's, where the emulator
        published an endpoint, that endpoint (what a linked peer must use too)."""
        resolved = dict(link)
        if kind == "can":
            resolved["interface"] = endpoint.get("interface", link["interface"])
            resolved["channel"] = endpoint.get("channel", link["channel"])
        elif kind == "serial":
            resolved["port"] = endpoint.get("url", link["port"])
            if resolved["port"] == AUTO:
                raise EmulatorError("emulator published no serial endpoint", device=name)
        else:
            resolved["resource"] = endpoint.get("resource", link["resource"])
            if resolved["resource"] == AUTO:
                raise EmulatorError("emulator published no VISA endpoint", device=name)
        return resolved

    @staticmethod
    def _make_transport(name: str, kind: str, link: Mapping[str, Any]) -> Resource:
        if kind == "can":
            return CanTransport(
                name,
                interface=link["interface"],
                channel=link["channel"],
                bitrate=link["bitrate"],
                fd=link["fd"],
                bus_kwargs=dict(link["options"]),
            )
        if kind == "serial":
            return SerialTransport(name, url=link["port"], baudrate=link["baudrate"])
        return VisaTransport(
            name, resource=link["resource"], backend=link["backend"], timeout_s=link["timeout_s"]
        )

    def _close_impl(self) -> None:
        groups: tuple[dict[str, Any], ...] = (
            self.drivers,
            self.actuators,
            self.transports,
            self.emulators,
        )
        for group in groups:
            for name in reversed(list(group)):
                try:
                    group[name].close()
                except Exception as err:  # closing must reach every device
                    log.warning("bench %s: closing %s failed: %s", self.name, name, err)
            group.clear()
        self._resolved.clear()
        self._endpoints.clear()

    # --- devices that stop answering ----------------------------------------------------

    def mark_lost(self, name: str, err: DeviceError) -> None:
        if name in self.config.devices:
            self.lost.setdefault(name, err)  # the first loss is the one that explains

    def ensure_reachable(self, names: Iterable[str]) -> list[str]:
        """Before a plan: reconnect the lost devices it needs *and their peers*.

        A device keeps state about the peers it is wired or linked with (a hub counts
        the load an appliance last reported, a car reads the wallbox's side of the
        charging cable), so a peer left as it died makes the plan's verdict depend on
        a dead device. First the links of the plan's devices and of their peers are
        checked (a loss found here is marked like one found mid-plan); then every lost
        device among them is reconnected by its bench entry's policy, in open order,
        each reopen taking along what wires or links to it (``reopen``).

        Returns every device reopened, in open order. Raises ``DeviceLost`` naming the
        device, when and why it was lost, when one the plan needs stays unreachable; a
        lost peer without a policy is left as it is, with a warning.
        """
        needed = [n for n in dict.fromkeys(names) if n in self.config.devices]
        scope = set(needed).union(*(self._peers[n] for n in needed))
        order = [n for n in self._open_order() if n in scope]
        self._find_lost(order)
        for name in needed:  # nothing to reopen for a plan that cannot run anyway
            if name in self.lost and self.config.devices[name].reconnect is None:
                raise self._unreachable(name, "its bench entry has no 'reconnect' policy")
        reopened: list[str] = []
        failed: dict[str, str] = {}
        for name in order:
            if name not in self.lost:  # never lost, or brought back with an earlier one
                continue
            policy = self.config.devices[name].reconnect
            if policy is None:
                log.warning(
                    "bench %s: %s is lost and has no reconnect policy; its peers %s keep "
                    "whatever state it left them in",
                    self.name,
                    name,
                    sorted(self._peers[name] & scope),
                )
                continue
            again, last = self._reconnect(name, policy.attempts, policy.interval)
            if again is None:
                failed[name] = f"{policy.attempts} reconnect attempts failed, the last: {last}"
            reopened.extend(d for d in again or () if d not in reopened)
        for name in needed:
            if name in self.lost:
                raise self._unreachable(name, failed.get(name, "reopening a peer failed"))
        return [n for n in self._order if n in reopened]

    def _find_lost(self, names: Iterable[str]) -> None:
        """Ask each open device whether its link still holds (a cheap look at what its
        transport already knows), so a loss nobody has looked at yet is found now."""
        for name in names:
            driver = self.drivers.get(name)
            if driver is None or name in self.lost:
                continue
            try:
                driver.check_link()
            except DeviceError as err:
                log.warning("bench %s: %s found lost before the plan: %s", self.name, name, err)
                self.mark_lost(name, err)

    def _reconnect(
        self, name: str, attempts: int, interval: float
    ) -> tuple[list[str] | None, HilError | OSError | None]:
        """Reopen one lost device (and what holds it) up to ``attempts`` times; returns
        the devices reopened, or None and the last error. Each attempt is bounded by
        the opens' own timeouts; the whole by attempts × (that + interval)."""
        last: HilError | OSError | None = None
        begun = time.monotonic()
        for attempt in range(1, attempts + 1):
            try:
                again = self.reopen(name)
            except (HilError, OSError) as err:
                last = err
                log.warning("bench %s: reconnect %s, attempt %d: %s", self.name, name, attempt, err)
                if attempt < attempts:
                    time.sleep(interval)
                continue
            for device in again:  # reopened fresh: whatever loss it had is over
                self.lost.pop(device, None)
            log.info(
                "bench %s: %s reconnected (attempt %d, %.1f s); reopened with it: %s",
                self.name,
                name,
                attempt,
                time.monotonic() - begun,
                ", ".join(d for d in again if d != name) or "nothing else",
            )
            return again, None
        return None, last

    def _unreachable(self, name: str, why_not: str) -> DeviceLost:
        err = self.lost[name]
        when = _clock(err.fields.get("at"))
        why = err.fields.get("reason", str(err))
        return DeviceLost(f"lost{when} ({why}); {why_not}", device=name, at=err.fields.get("at"))

    def reopen(self, name: str) -> list[str]:
        """Close one device (driver, actuator, transport, emulator) and open it again,
        with every device that wires or links to it (an analyzer holds the emulator it
        measures, a hub the peers it joined): dependents close first and open last.
        Returns the devices reopened, in open order. If one fails to open, it and the
        devices after it are marked lost (they are closed) and the error is raised."""
        affected = {name}
        order = self._open_order()
        for other in order:  # open order: a dependent comes after what it depends on
            if any(t in affected for _w, t in dependencies(self.config, other)):
                affected.add(other)
        again = [n for n in order if n in affected]
        for device in reversed(again):
            for group in (self.drivers, self.actuators, self.transports, self.emulators):
                part = group.pop(device, None)
                if part is None:
                    continue
                try:
                    part.close()
                except Exception as err:  # a half-dead device may fail to close: reopen anyway
                    log.warning("bench %s: closing lost %s: %s", self.name, device, err)
        self._identities = None  # a reopened device reports its identity afresh
        for index, device in enumerate(again):
            try:
                self._open_device(device, self.config.devices[device])
            except BaseException as err:
                for closed in again[index:]:  # left closed: no plan may use them as they are
                    why = f"reopening {name} failed: {err}"
                    self.mark_lost(closed, DeviceLost(why, device=closed, at=time.time()))
                raise
        return again

    def owned_resources(self) -> list[object]:
        return [*self.transports.values(), *self.emulators.values()]

    # --- what plans and fixtures use -------------------------------------------------

    def get(self, name: str) -> Driver:
        try:
            return self.drivers[name]
        except KeyError:
            raise BenchError(
                f"bench {self.name!r} has no device {name!r}; " + did_you_mean(name, self.drivers),
                file=str(self.loaded.path),
            ) from None

    def get_by(self, protocol: type[P]) -> P:
        """The one device that implements ``protocol`` (a typing.Protocol)."""
        found = [d for d in self.drivers.values() if isinstance(d, protocol)]
        if len(found) != 1:
            names = [getattr(d, "name", "?") for d in found]
            raise BenchError(
                f"bench {self.name!r} has {len(found)} devices that are {protocol.__name__}"
                + (f": {names}" if names else "")
            )
        return found[0]

    def stimulate(self, device: str, stimulus: str, values: Mapping[str, Any]) -> float:
        """Apply a stimulus; physical inputs go to the emulator (the bench's actuator)."""
        info = self.definitions[device].stimuli[stimulus]
        if info.kind == "input":
            actuator = self.emulators.get(device) or self.actuators.get(device)
            if actuator is None:
                raise BenchError(
                    f"{device}.{stimulus} is a physical input and {device!r} is real: "
                    "this bench has no actuator for it (give the device an 'actuator:')"
                )
            actuator.set_input(stimulus, float(values["value"]))
            return time.time()
        return self.get(device).stimulate(stimulus, values)

    def identities(self) -> dict[str, dict[str, str]]:
        """Each device's identity as it reported it (read once, then remembered)."""
        if self._identities is not None:
            return self._identities

        def read(driver: Driver) -> dict[str, str]:
            try:
                return driver.identity()
            except HilError as err:
                return {"error": str(err)}

        # each read may wait a bounded while for a boot line or an identity frame:
        # read them side by side, so a bench of twelve devices waits once, not twelve times
        drivers = list(self.drivers.items())
        with ThreadPoolExecutor(max_workers=max(1, len(drivers))) as pool:
            found = list(pool.map(read, [d for _, d in drivers]))
        self._identities = {name: ident for (name, _), ident in zip(drivers, found, strict=True)}
        return self._identities

    def write_evidence(self, directory: Path, devices: Iterable[str] | None = None) -> list[Path]:
        paths: list[Path] = []
        for name in devices if devices is not None else self.drivers:
            paths.extend(self.drivers[name].write_evidence(directory))
        return paths


def _clock(at: object) -> str:
    if not isinstance(at, int | float):
        return ""
    return " at " + time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at % 1 * 1000):03d}"


def open_bench(path: Path, defects: Iterable[str] = ()) -> Bench:
    """Load and open a bench file (use as a context manager)."""
    return Bench(load_bench(path, defects)).open()
