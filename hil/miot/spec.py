"""The MIoT spec file of an appliance: services, properties, actions, events.

A spec describes a device; it never talks to one. ``load_spec`` reads the
YAML strictly (file:line errors) and ``MiotSpec.definition`` turns it into
the ``DeviceDefinition`` plans are validated against: properties become
signals ``"service.property"``, events become bool signals
``"service.event"``, writable properties and actions become stimuli, and
the ``serial_link`` wire fault every MIoT appliance has is a bench input.
Every device also has the link's ``miot.*`` audit signals and probes
(hil/miot/audit.py), served by ``AcceptanceModuleDriver``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hil.bench.definition import DeviceDefinition, SignalInfo, StimulusInfo
from hil.errors import ConfigError, DefinitionError, did_you_mean
from hil.miot.audit import AUDIT_SIGNALS, LINK_SERVICE, PROBES
from hil.miot.codec import Value, is_int
from hil.miot.wire import WIRE_INPUT_INFO
from hil.yamlio import check_spec, load_file, validate

SPEC_VERSION = 1
_NAME = r"^[a-z][a-z0-9-]*$"
_MODEL = re.compile(r"^[a-z0-9-]+\.[a-z0-9-]+\.[a-z0-9]+$")

PropType = Literal["bool", "int", "float", "string"]
Access = Literal["read", "write", "notify"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PropertySpec(_Strict):
    piid: int = Field(ge=1, le=65535)
    name: str = Field(pattern=_NAME)
    type: PropType
    access: list[Access] = Field(min_length=1)
    unit: str | None = None
    range: tuple[float, float, float] | None = None
    enum: dict[str, int] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(set(self.access)) != len(self.access):
            raise ValueError(f"property {self.name!r}: access lists a mode twice")
        if self.range is not None:
            lo, hi, step = self.range
            if self.type not in ("int", "float"):
                raise ValueError(f"property {self.name!r}: only int/float properties have a range")
            if lo > hi or step < 0:
                raise ValueError(f"property {self.name!r}: range must be [min <= max, step >= 0]")
        if self.enum is not None:
            if self.type != "int":
                raise ValueError(f"property {self.name!r}: only int properties have an enum")
            if len(set(self.enum.values())) != len(self.enum):
                raise ValueError(f"property {self.name!r}: enum values must be distinct")
        return self

    @property
    def readable(self) -> bool:
        return "read" in self.access

    @property
    def writable(self) -> bool:
        return "write" in self.access

    @property
    def notifies(self) -> bool:
        return "notify" in self.access

    def check(self, value: Value) -> str | None:
        """Why ``value`` is not acceptable for this property, or ``None``."""
        if self.type == "bool":
            return None if isinstance(value, bool) else "expected true or false"
        if self.type == "string":
            return None if isinstance(value, str) else "expected a quoted string"
        if self.type == "int" and not is_int(value):
            return "expected an integer"
        if self.type == "float" and not (is_int(value) or isinstance(value, float)):
            return "expected a number"
        assert isinstance(value, int | float)
        if self.enum is not None and value not in self.enum.values():
            return f"expected one of {sorted(self.enum.values())}"
        if self.range is not None:
            lo, hi, step = self.range
            if not lo <= value <= hi:
                return f"outside [{lo:g}, {hi:g}]"
            if step > 0:
                # float steps are judged with a tolerance: 0.1 * 3 is not 0.3 in binary
                n = (value - lo) / step
                if not math.isclose(n, round(n), abs_tol=1e-6):
                    return f"not a multiple of the step {step:g} from {lo:g}"
        return None

    def normalize(self, value: Value) -> Value:
        """The value as this property's type (an int ``0`` sent for a float is ``0.0``)."""
        if self.type == "float" and is_int(value):
            return float(value)
        return value

    def default(self) -> Value:
        """A power-on value: false, the range minimum, the first enum value, ""."""
        if self.type == "bool":
            return False
        if self.type == "string":
            return ""
        if self.enum:
            return min(self.enum.values())
        lo = self.range[0] if self.range else 0
        return float(lo) if self.type == "float" else int(lo)

    def signal(self, full_name: str) -> SignalInfo:
        kind: Literal["number", "bool", "enum", "string"]
        kind = {"bool": "bool", "string": "string"}.get(self.type, "number")  # type: ignore[assignment]
        if self.enum:
            kind = "enum"
        return SignalInfo(
            name=full_name,
            kind=kind,
            unit=self.unit,
            minimum=self.range[0] if self.range else None,
            maximum=self.range[1] if self.range else None,
            choices=dict(self.enum or {}),
            description=self.description,
        )


class ActionSpec(_Strict):
    aiid: int = Field(ge=1, le=65535)
    name: str = Field(pattern=_NAME)
    in_: list[int] = Field(default_factory=list, alias="in")
    out: list[int] = Field(default_factory=list)
    description: str = ""


class EventSpec(_Strict):
    eiid: int = Field(ge=1, le=65535)
    name: str = Field(pattern=_NAME)
    arguments: list[int] = Field(default_factory=list)
    description: str = ""


class ServiceSpec(_Strict):
    siid: int = Field(ge=1, le=65535)
    name: str = Field(pattern=_NAME)
    properties: list[PropertySpec] = Field(default_factory=list)
    actions: list[ActionSpec] = Field(default_factory=list)
    events: list[EventSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for what, ids in (
            ("piid", [p.piid for p in self.properties]),
            ("aiid", [a.aiid for a in self.actions]),
            ("eiid", [e.eiid for e in self.events]),
        ):
            if len(set(ids)) != len(ids):
                raise ValueError(f"service {self.name!r}: duplicate {what}")
        names = [
            *(p.name for p in self.properties),
            *(a.name for a in self.actions),
            *(e.name for e in self.events),
        ]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"service {self.name!r}: name(s) {dup} used twice")
        piids = {p.piid for p in self.properties}
        for action in self.actions:
            for piid in (*action.in_, *action.out):
                if piid not in piids:
                    raise ValueError(f"action {action.name!r}: no property with piid {piid}")
        for event in self.events:
            for piid in event.arguments:
                if piid not in piids:
                    raise ValueError(f"event {event.name!r}: no property with piid {piid}")
        return self

    def prop(self, piid: int) -> PropertySpec | None:
        return next((p for p in self.properties if p.piid == piid), None)


class MiotSpec(_Strict):
    """A whole spec file."""

    spec: Literal[1]
    model: str = Field(max_length=23)
    mcu_version: str = Field(pattern=r"^[0-9]{4}$")
    description: str = ""
    services: list[ServiceSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not _MODEL.match(self.model):
            raise ValueError(f"model {self.model!r} must look like 'vendor.kind.v1'")
        for what, keys in (
            ("siid", [s.siid for s in self.services]),
            ("service name", [s.name for s in self.services]),
        ):
            if len(set(keys)) != len(keys):
                raise ValueError(f"duplicate {what}")
        if any(s.name == LINK_SERVICE for s in self.services):
            raise ValueError(
                f"service name {LINK_SERVICE!r} is reserved for the link's audit signals"
            )
        return self

    # lookups by wire ids and by plan names

    def service(self, siid: int) -> ServiceSpec | None:
        return next((s for s in self.services if s.siid == siid), None)

    def prop(self, siid: int, piid: int) -> PropertySpec | None:
        service = self.service(siid)
        return service.prop(piid) if service else None

    def iter_properties(self) -> Iterator[tuple[ServiceSpec, PropertySpec]]:
        for service in self.services:
            for prop in service.properties:
                yield service, prop

    def iter_actions(self) -> Iterator[tuple[ServiceSpec, ActionSpec]]:
        for service in self.services:
            for action in service.actions:
                yield service, action

    def iter_events(self) -> Iterator[tuple[ServiceSpec, EventSpec]]:
        for service in self.services:
            for event in service.events:
                yield service, event

    def property_named(self, name: str) -> tuple[ServiceSpec, PropertySpec]:
        """``"switch.on"`` → its service and property; ``ConfigError`` with hints."""
        for service, prop in self.iter_properties():
            if f"{service.name}.{prop.name}" == name:
                return service, prop
        names = [f"{s.name}.{p.name}" for s, p in self.iter_properties()]
        raise ConfigError(f"{self.model} has no property {name!r}; " + did_you_mean(name, names))

    def action_named(self, name: str) -> tuple[ServiceSpec, ActionSpec]:
        for service, action in self.iter_actions():
            if f"{service.name}.{action.name}" == name:
                return service, action
        names = [f"{s.name}.{a.name}" for s, a in self.iter_actions()]
        raise ConfigError(f"{self.model} has no action {name!r}; " + did_you_mean(name, names))

    def definition(
        self,
        type_name: str,
        *,
        inputs: Mapping[str, SignalInfo] | None = None,
        capabilities: frozenset[str] = frozenset(),
        files: tuple[Path, ...] = (),
    ) -> DeviceDefinition:
        """What plans may name on this device (nothing is opened)."""
        signals: dict[str, SignalInfo] = {}
        stimuli: dict[str, StimulusInfo] = {}
        for service, prop in self.iter_properties():
            name = f"{service.name}.{prop.name}"
            signals[name] = prop.signal(name)
            if prop.writable:
                stimuli[name] = StimulusInfo(
                    name, "property", {"value": prop.signal(name)}, prop.description
                )
        signals.update(AUDIT_SIGNALS)
        stimuli.update(PROBES)
        for service, event in self.iter_events():
            name = f"{service.name}.{event.name}"
            signals[name] = SignalInfo(
                name, "bool", description=event.description or "true at each occurrence"
            )
        for service, action in self.iter_actions():
            name = f"{service.name}.{action.name}"
            fields: dict[str, SignalInfo] = {}
            for piid in action.in_:
                prop_in = service.prop(piid)
                assert prop_in is not None  # checked by ServiceSpec
                fields[prop_in.name] = prop_in.signal(f"{name}.{prop_in.name}")
            stimuli[name] = StimulusInfo(name, "action", fields, action.description)
        # every MIoT appliance has a UART wire a bench can disturb (hil/miot/wire.py)
        for name, info in {WIRE_INPUT_INFO.name: WIRE_INPUT_INFO, **(inputs or {})}.items():
            if name in stimuli:
                raise DefinitionError(f"input {name!r} clashes with a stimulus of {self.model}")
            stimuli[name] = StimulusInfo(name, "input", {"value": info}, info.description)
        return DeviceDefinition(
            type_name=type_name,
            transport="serial",
            signals=signals,
            stimuli=stimuli,
            capabilities=capabilities,
            files=files,
            identity_fields=("model", "firmware"),
        )


def load_spec(path: Path) -> MiotSpec:
    """Read a spec YAML file; every error names the file and line."""
    data, locs = load_file(path, DefinitionError)
    check_spec(data, locs, SPEC_VERSION, DefinitionError, "MIoT spec")
    return validate(MiotSpec, data, locs, DefinitionError)


@functools.cache
def load_spec_cached(path: Path) -> MiotSpec:
    """``load_spec`` once per path: device types call it for every definition."""
    return load_spec(path)


def value_kind(value: Any) -> str:
    """A short type name for messages."""
    return "bool" if isinstance(value, bool) else type(value).__name__
