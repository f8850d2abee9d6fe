"""Device-to-device links: which peers a device talks to, and the order to open them.

A bench file may say that one device connects to others, by role::

    hub:
      type: hub
      links: {car: ev, charger: charger}

The contract, for emulator and driver authors:

* The bench opens every linked device *before* the device that links to it
  (together with the ``wiring`` rule for instruments), so a linker's emulator
  and driver find their peers running. A cycle or an unknown name is a
  located ``BenchError`` at load time.
* The linker's ``EmulatorContext.links`` and ``DriverContext.links`` map each
  role to a tuple of ``LinkedDevice`` (one per name; a role may name a list).
* A ``LinkedDevice`` says how to reach the peer over the peer's *own*
  transport: ``transport`` holds the settings the bench itself opened (for an
  emulated ``virtual`` CAN bus the channel carries the bench's per-instance
  suffix; for an emulated serial or VISA device the emulator's published
  endpoint). Protocol traffic between devices goes over that transport, so a
  real device can replace an emulated one in the bench file and the linker's
  code path does not change.
* ``emulator`` is the peer's emulator object when it is emulated, ``None`` when
  it is real. It exists for physics only (a radio's range, a shared mains
  feed), never as a back door for protocol traffic.
* ``endpoint`` is what the peer's emulator published (``{"api": "127.0.0.1:…"}``
  for a hub), empty for a real device: a real peer's address then comes from
  its ``settings``.
* A device lost mid-session comes back as a whole with what holds it: the
  bench reopens it with every device that wires or links to it (they hold its
  emulator, endpoint or connection), and before a plan it reconnects the lost
  devices among the plan's devices *and their peers* (``peers``: either
  direction), so no plan runs beside the stale half of a dead link.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hil.errors import BenchError, did_you_mean

if TYPE_CHECKING:
    from hil.bench.config import BenchConfig
    from hil.emulation.base import Emulator
    from hil.yamlio import Locations


@dataclass(frozen=True)
class LinkedDevice:
    """One peer a device is linked to, as the bench opened it (see the module docstring)."""

    name: str
    type: str
    transport: Mapping[str, Any]
    settings: Mapping[str, Any] = field(default_factory=dict)
    endpoint: Mapping[str, Any] = field(default_factory=dict)
    emulator: Emulator | None = None

    @property
    def emulated(self) -> bool:
        return self.emulator is not None


Links = Mapping[str, tuple[LinkedDevice, ...]]


def link_targets(links: Mapping[str, str | list[str]]) -> list[tuple[str, int | None, str]]:
    """Every ``(role, index-in-list or None, device name)`` of a ``links`` section."""
    out: list[tuple[str, int | None, str]] = []
    for role, names in links.items():
        if isinstance(names, str):
            out.append((role, None, names))
        else:
            out.extend((role, i, n) for i, n in enumerate(names))
    return out


def dependencies(config: BenchConfig, name: str) -> list[tuple[tuple[Any, ...], str]]:
    """What ``name`` needs opened first: ``(location under the device, peer)`` pairs."""
    dev = config.devices[name]
    deps: list[tuple[tuple[Any, ...], str]] = [
        (("wiring", channel), target) for channel, target in dev.wiring.items()
    ]
    for role, index, target in link_targets(dev.links):
        where = ("links", role) if index is None else ("links", role, index)
        deps.append((where, target))
    return deps


def peers(config: BenchConfig, name: str) -> set[str]:
    """The devices ``name`` is wired or linked with, in either direction.

    Each side of a link keeps state about the other: a hub counts the load an
    appliance last reported, a car reads the wallbox's side of the charging cable,
    a wallbox remembers the hub's last limit. So a device is only as consistent as
    its peers: a plan on it needs them reachable, not left as they died.
    """
    return set(peer_map(config).get(name, ()))


def peer_map(config: BenchConfig) -> dict[str, frozenset[str]]:
    """``peers`` of every device, in one pass over the links and wiring."""
    found: dict[str, set[str]] = {name: set() for name in config.devices}
    for name in config.devices:
        for _where, target in dependencies(config, name):
            if target in found and target != name:
                found[name].add(target)
                found[target].add(name)
    return {name: frozenset(out) for name, out in found.items()}


def check_links(config: BenchConfig, locs: Locations) -> None:
    """Unknown link targets, self-links and dependency cycles, each at its line."""
    for name, dev in config.devices.items():
        for role, index, target in link_targets(dev.links):
            where = ("devices", name, "links", role) + (() if index is None else (index,))
            if target not in config.devices:
                raise locs.error(
                    BenchError,
                    where,
                    f"device {name!r} links ({role}) to unknown device {target!r}; "
                    + did_you_mean(target, config.devices),
                )
            if target == name:
                raise locs.error(BenchError, where, f"device {name!r} links ({role}) to itself")
    open_order(config, locs)


def open_order(config: BenchConfig, locs: Locations | None = None) -> list[str]:
    """Devices in file order, except that each comes after what it wires or links to."""
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = [*visiting[visiting.index(name) :], name]
            message = "devices link in a cycle: " + " → ".join(cycle) + "; nothing can open first"
            if locs is None:
                raise BenchError(message)
            where = next(w for w, t in dependencies(config, cycle[-2]) if t == name)
            raise locs.error(BenchError, ("devices", cycle[-2], *where), message)
        visiting.append(name)
        for _where, target in dependencies(config, name):
            if target in config.devices:
                visit(target)
        visiting.pop()
        order.append(name)

    for name in config.devices:
        visit(name)
    return order
