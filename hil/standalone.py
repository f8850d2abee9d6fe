"""Some devices of a bench file, emulated in this process and reachable from others.

``hil emulate`` is built on this. Each device's emulator is made exactly as
the Bench makes it (the same ``EmulatorContext`` from the bench file's entry:
settings, defects, time_scale, wiring, links), then published where another
process can reach it:

* serial: the emulator's pty slave path;
* VISA: the emulator's ``TCPIP::127.0.0.1::<port>::SOCKET`` resource;
* CAN: a python-can ``virtual`` channel exists only inside this process, so
  a socketcand-protocol gateway serves it (python-can's ``socketcand``
  client, the one a lab points at a socketcand daemon); a device on a real
  interface (``socketcan``…) is reachable as it is, or behind the gateway
  when a port is asked for; with ``can_gateway`` the emulator itself joins a
  gateway or daemon that runs elsewhere.

``entries()`` gives each device's bench file entry for ``emulated: false``:
what a bench that mixes real and emulated devices pastes in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hil.bench.config import DeviceConfig
from hil.bench.links import LinkedDevice, link_targets, open_order
from hil.bench.loader import LoadedBench
from hil.bench.registry import EmulatorContext, get_device_type
from hil.emulation.actuator import ActuatorServer
from hil.emulation.base import Emulator
from hil.errors import BenchError, did_you_mean
from hil.lifecycle import Resource
from hil.transports.socketcand_gateway import SocketcandGateway

Address = tuple[str, int]


class EmulatorHost(Resource):
    """Opens ``devices`` of ``loaded`` as emulators, plus what makes them reachable.

    ``port``: the socketcand gateway's port (0: any free one; ``None``: a gateway
    only where a ``virtual`` channel needs one). ``can_gateway``: join this
    socketcand server instead of serving CAN from here.
    """

    def __init__(
        self,
        loaded: LoadedBench,
        devices: Sequence[str],
        *,
        port: int | None = None,
        can_gateway: Address | None = None,
    ) -> None:
        super().__init__()
        self.loaded = loaded
        self.name = "+".join(devices)
        self.devices = list(devices)
        self.port = port
        self.can_gateway = can_gateway
        self.emulators: dict[str, Emulator] = {}
        self.actuators: dict[str, ActuatorServer] = {}
        self.gateway: SocketcandGateway | None = None
        self._can: dict[str, dict[str, Any]] = {}  # CAN device → its published can section
        self._check()

    def _check(self) -> None:
        config = self.loaded.config
        locs = self.loaded.locations
        for name in self.devices:
            if name not in config.devices:
                raise BenchError(
                    f"bench {config.id!r} has no device {name!r}; "
                    + did_you_mean(name, config.devices),
                    file=str(self.loaded.path),
                )
            dev = config.devices[name]
            if get_device_type(dev.type).emulator is None:
                raise locs.error(
                    BenchError, ("devices", name, "type"), f"type {dev.type!r} has no emulator"
                )
            peers = [*dev.wiring.values(), *(t for _r, _i, t in link_targets(dev.links))]
            for peer in peers:
                if peer not in self.devices:
                    raise locs.error(
                        BenchError,
                        ("devices", name),
                        f"{name!r} is wired or linked to {peer!r}, whose emulator must run "
                        f"in the same process: name both ({name} {peer})",
                    )

    # --- lifecycle -------------------------------------------------------------------

    def _open_impl(self) -> None:
        try:
            order = [n for n in open_order(self.loaded.config) if n in self.devices]
            for name in order:
                self._open_device(name)
            self._open_gateway()
        except BaseException:
            self._close_impl()
            raise

    def _open_device(self, name: str) -> None:
        config = self.loaded.config
        dev = config.devices[name]
        dtype = get_device_type(dev.type)
        assert dtype.emulator is not None
        link = _link(dev)
        if dev.can is not None and self.can_gateway is not None:
            host, port = self.can_gateway
            link = {**link, "interface": "socketcand", "options": {"host": host, "port": port}}
        ctx = EmulatorContext(
            name=name,
            definition=self.loaded.definitions()[name],
            defects=tuple(dev.defects),
            time_scale=config.time_scale,
            settings=dev.settings,
            transport=link,
            wiring={ch: self.emulators[target] for ch, target in dev.wiring.items()},
            links=self._links(name),
        )
        emulator = dtype.emulator(ctx)
        self.emulators[name] = emulator
        emulator.open()
        if dev.can is not None:
            self._can[name] = {**link, **emulator.endpoint}
        if emulator.INPUTS:
            self.actuators[name] = ActuatorServer(emulator).open()

    def _links(self, name: str) -> dict[str, tuple[LinkedDevice, ...]]:
        out: dict[str, tuple[LinkedDevice, ...]] = {}
        for role, _index, target in link_targets(self.loaded.config.devices[name].links):
            peer = self.loaded.config.devices[target]
            emulator = self.emulators[target]
            transport = {**_link(peer), **_as_transport(emulator.endpoint)}
            linked = LinkedDevice(
                name=target,
                type=peer.type,
                transport=transport,
                settings=peer.settings,
                endpoint=dict(emulator.endpoint),
                emulator=emulator,
            )
            out[role] = (*out.get(role, ()), linked)
        return out

    def _open_gateway(self) -> None:
        if not self._can or self.can_gateway is not None:
            return
        interfaces = {str(link["interface"]) for link in self._can.values()}
        virtual = "virtual" in interfaces  # a virtual channel is unreachable without us
        if not virtual and self.port is None:
            return  # a real interface is reachable as it is
        if len(interfaces) != 1:
            raise BenchError(
                f"one gateway serves one python-can interface; {self.devices} use "
                f"{sorted(interfaces)}: emulate them in separate processes",
                file=str(self.loaded.path),
            )
        first = next(iter(self._can.values()))
        channels = {str(link["channel"]): str(link["channel"]) for link in self._can.values()}
        self.gateway = SocketcandGateway(
            interface=interfaces.pop(),
            channels=channels,
            port=self.port or 0,
            bus_kwargs={k: first[k] for k in ("bitrate",) if first.get(k) is not None}
            if not virtual
            else {},
            name=f"socketcand-{self.name}",
        ).open()

    def _close_impl(self) -> None:
        closing: list[Resource] = [self.gateway] if self.gateway is not None else []
        closing += reversed(list(self.actuators.values()))
        closing += reversed(list(self.emulators.values()))
        for resource in closing:
            resource.close()
        self.gateway = None
        self.actuators.clear()
        self.emulators.clear()

    # --- where to reach them ---------------------------------------------------------

    def entries(self) -> dict[str, dict[str, Any]]:
        """Each device's bench file entry as a real device (``emulated: false``)."""
        config = self.loaded.config
        out: dict[str, dict[str, Any]] = {}
        for name, emulator in self.emulators.items():
            dev = config.devices[name]
            entry: dict[str, Any] = {"type": dev.type, "emulated": False}
            if dev.can is not None:
                entry["can"] = self._can_entry(self._can[name])
            elif dev.serial is not None:
                entry["serial"] = {**dev.serial.model_dump(), "port": emulator.endpoint["url"]}
            elif dev.visa is not None:
                resource = emulator.endpoint["resource"]
                entry["visa"] = {**dev.visa.model_dump(), "resource": resource}
            if name in self.actuators:
                entry["actuator"] = {"resource": self.actuators[name].resource}
            for key in ("settings", "wiring", "links"):
                value = getattr(dev, key)
                if value:
                    entry[key] = dict(value)
            if dev.capabilities is not None:
                entry["capabilities"] = list(dev.capabilities)
            out[name] = entry
        return out

    def _can_entry(self, link: Mapping[str, Any]) -> dict[str, Any]:
        entry = {k: link[k] for k in ("interface", "channel", "bitrate", "fd", "options")}
        if self.gateway is not None:
            entry["interface"] = "socketcand"
            entry["options"] = {"host": self.gateway.host, "port": self.gateway.port}
        return entry


def _link(dev: DeviceConfig) -> dict[str, Any]:
    """The device's transport section (the loader made sure there is exactly one)."""
    link = dev.can or dev.serial or dev.visa
    assert link is not None
    return link.model_dump()


def _as_transport(endpoint: Mapping[str, Any]) -> dict[str, Any]:
    """An emulator's published endpoint under the transport section's own keys."""
    out = {k: v for k, v in endpoint.items() if k in ("interface", "channel", "resource")}
    if "url" in endpoint:
        out["port"] = endpoint["url"]
    return out
