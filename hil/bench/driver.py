"""The contract between the plan runner and a device driver.

Drivers are found by what they can do (``typing.Protocol``), not by class
name. Every observation carries the capture timestamp it was seen at, so
deadlines are judged on the wire's clock, never on ``sleep()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

from hil.bench.definition import DeviceDefinition


class Sample(NamedTuple):
    t: float  # capture timestamp, seconds since the epoch
    value: Any


@runtime_checkable
class Driver(Protocol):
    """What every device driver offers to plans and fixtures."""

    name: str
    definition: DeviceDefinition

    def identity(self) -> dict[str, str]:
        """Model, serial number, firmware… read from the device itself."""
        ...

    def samples(self, signal: str, since: float) -> list[Sample]:
        """Every observation of ``signal`` with ``t >= since``, oldest first,
        preceded by the last observation before ``since`` if there is one."""
        ...

    def read(self, signal: str) -> Sample:
        """Actively read ``signal`` now (a query, a get_properties) or the newest value."""
        ...

    def stimulate(self, stimulus: str, values: Mapping[str, Any]) -> float:
        """Apply a stimulus; returns its capture timestamp."""
        ...

    def write_evidence(self, directory: Path) -> list[Path]:
        """Write the capture (CAN .asc, JSON lines transcripts) into ``directory``."""
        ...

    def check_link(self) -> None:
        """Raise ``DeviceLost`` if the transport has failed."""
        ...

    def link_doubt_until(self) -> float | None:
        """The time by which ``check_link`` will have decided about a device that has
        gone quiet but is not yet judged lost (a CAN node's overdue pulse), or None when
        its link is not in doubt. A verdict that a silent device would explain (a missed
        deadline) waits until then, so a vanished device is BROKEN, not FAILED."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class PowerMeter(Protocol):
    """An instrument that measures electrical power."""

    def measure_power(self) -> float: ...


@runtime_checkable
class PropertyDevice(Protocol):
    """A MIoT appliance seen from the module side."""

    def get(self, prop: str) -> Any: ...

    def set(self, prop: str, value: Any) -> None: ...
