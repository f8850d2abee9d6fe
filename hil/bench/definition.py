"""What a device type declares about itself, known before anything is opened.

Plans are validated against these declarations (signal and stimulus names,
units, value tables, capabilities) so that a typo fails at load time, with
no hardware touched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hil.errors import ConfigError, did_you_mean
from hil.expressions import parse

ValueKind = Literal["number", "bool", "enum", "string"]
StimulusKind = Literal["message", "property", "action", "input", "setting"]
TransportKind = Literal["can", "serial", "visa"]


@dataclass(frozen=True)
class SignalInfo:
    """One observable quantity: a CAN signal, a MIoT property, an instrument reading."""

    name: str
    kind: ValueKind = "number"
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    # value-table names → the value drivers report (CAN raw-scaled number, MIoT enum int)
    choices: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def coerce(self, value: Any) -> Any:
        """Turn a plan value (``"LOCKED"``, ``true``, ``12``) into what drivers report.

        Raises ``ValueError`` with the accepted forms when it cannot.
        """
        if isinstance(value, str) and value in self.choices:
            return self.choices[value]
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise ValueError(f"{self.name} is a bool; expected true or false, got {value!r}")
        if self.kind in ("number", "enum"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                names = f" or one of {sorted(self.choices)}" if self.choices else ""
                raise ValueError(f"{self.name} is a number{names}; got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{self.name}: {value!r} is not finite")
            return value
        if self.kind == "string" and not isinstance(value, str):
            raise ValueError(f"{self.name} is a string; got {value!r}")
        return value

    def label(self, value: Any) -> str:
        """A readable form of a reported value (``1`` → ``LOCKED``)."""
        for name, v in self.choices.items():
            if v == value and not isinstance(v, bool):
                return name
        return f"{value:g} {self.unit}" if self.unit and isinstance(value, float) else str(value)


@dataclass(frozen=True)
class StimulusInfo:
    """Something the bench can do to a device.

    ``message``: send a CAN message with signal values; ``property``: write a
    MIoT property; ``action``: call a device action; ``input``: impose a
    physical quantity (needs an emulator or a bench actuator); ``setting``: an
    instrument setting.
    """

    name: str
    kind: StimulusKind
    fields: Mapping[str, SignalInfo] = field(default_factory=dict)
    description: str = ""


SELF = "self."


@dataclass(frozen=True)
class Envelope:
    """A safety limit the device type declares for itself (no unlock above 5 km/h, no
    more current than the wallbox's rating): an invariant added to every plan that uses
    a device of the type. ``always`` names the device's own signals as ``self.<signal>``."""

    id: str
    name: str
    always: str

    def for_device(self, device: str) -> str:
        """``always`` with ``self.`` replaced by the device's name on the bench."""
        text = self.always
        for name, column in sorted(parse(text).names(), key=lambda n: -n[1]):
            if not name.startswith(SELF):
                continue
            at = column - 1 if text.startswith(name, column - 1) else column
            text = text[:at] + device + "." + text[at + len(SELF) :]
        return text


@dataclass(frozen=True)
class DeviceDefinition:
    """Everything a plan may name on one device type."""

    type_name: str
    transport: TransportKind
    signals: Mapping[str, SignalInfo]
    stimuli: Mapping[str, StimulusInfo]
    capabilities: frozenset[str] = frozenset()  # what this type has unless the bench says
    files: tuple[Path, ...] = ()  # definition files whose hashes go into reports
    identity_fields: tuple[str, ...] = ("model", "serial", "firmware")
    # capabilities a device of this type may have (a bench file declares which it
    # has, like Matter's PICS); a plan naming any other capability is a load error
    known_capabilities: frozenset[str] = frozenset()
    envelope: tuple[Envelope, ...] = ()  # safety limits watched in every plan using the device

    @property
    def all_capabilities(self) -> frozenset[str]:
        return self.capabilities | self.known_capabilities

    def signal(self, name: str, device: str) -> SignalInfo:
        """The signal ``name``, or a ``ConfigError`` naming ``device`` with a "did you mean"."""
        info = self.signals.get(name)
        if info is None:
            raise ConfigError(
                f"{device} has no signal {name!r}; " + did_you_mean(name, self.signals)
            )
        return info

    def stimulus(self, name: str, device: str) -> StimulusInfo:
        """The stimulus ``name``, or a ``ConfigError`` naming ``device`` with a "did you mean"."""
        info = self.stimuli.get(name)
        if info is None:
            raise ConfigError(
                f"{device} has no stimulus {name!r}; " + did_you_mean(name, self.stimuli)
            )
        return info
