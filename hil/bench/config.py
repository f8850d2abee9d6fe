"""The bench file's schema: which devices exist and how each is reached.

Pydantic models describe; the Bench opens. A driver never sees this YAML.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from hil.units import parse_duration

NAME = r"^[a-z][a-z0-9_]*$"
SUPPORTED_SPEC = 1
AUTO = "auto"  # the emulator picks the endpoint (pty path, TCP port)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Scalar = str | int | float | bool


class CanLink(Strict):
    """A python-can bus: ``can.Bus(interface=…, channel=…, bitrate=…, fd=…)``."""

    interface: str = Field(
        description="python-can interface: virtual, socketcan, pcan, socketcand…"
    )
    channel: str
    bitrate: int | None = Field(500_000, gt=0)
    fd: bool = False
    options: dict[str, Scalar] = Field(
        default_factory=dict, description="extra keyword arguments for can.Bus (host, port…)"
    )


class SerialLink(Strict):
    """A serial port: any pyserial URL or device path, or ``auto`` for an emulator's pty."""

    port: str = AUTO
    baudrate: int = Field(115_200, gt=0)


class VisaLink(Strict):
    """A VISA resource opened through pyvisa (``@py`` = pyvisa-py)."""

    resource: str = AUTO
    backend: str = "@py"
    timeout_s: float = Field(5.0, gt=0, le=120)


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class Reconnect(Strict):
    """What to do when the device stops answering: reopen its transport before the next
    plan that needs it, up to ``attempts`` times, ``interval`` apart."""

    attempts: int = Field(3, ge=1, le=100)
    interval: Seconds = 1.0


class DeviceConfig(Strict):
    type: str = Field(description="device type name, from the hil.devices entry points")
    emulated: bool = False
    description: str = ""
    can: CanLink | None = None
    serial: SerialLink | None = None
    visa: VisaLink | None = None
    actuator: VisaLink | None = Field(
        None,
        description="a real device's physical inputs (load, mains) are imposed through this "
        "resource (hil emulate serves one; see hil/transports/actuator.py)",
    )
    defects: list[str] = Field(default_factory=list, description="emulator defects to inject")
    reconnect: Reconnect | None = Field(
        None, description="reopen the device after it was lost (default: it stays lost)"
    )
    settings: dict[str, Any] = Field(default_factory=dict)
    wiring: dict[str, str] = Field(
        default_factory=dict, description="instrument channel → device whose mains feed it measures"
    )
    links: dict[Annotated[str, Field(pattern=NAME)], str | list[str]] = Field(
        default_factory=dict,
        description="the devices this device connects to, by role (role → device name or names); "
        "they are opened first, see hil/bench/links.py",
    )
    capabilities: list[str] | None = Field(
        None,
        description="what this device supports (replaces the type's defaults), like Matter's PICS",
    )

    @field_validator("wiring", mode="before")
    @classmethod
    def _wiring_keys_are_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return value


class Lab(Strict):
    name: str
    location: str = ""
    operator: str = ""


DeviceName = Annotated[str, Field(pattern=NAME)]


class LabgridPlace(Strict):
    """The labgrid place that reserves this bench across hosts (see hil/bench/labgrid_place.py)."""

    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="instead of a name: any free place with these tags (a labgrid reservation)",
    )
    coordinator: str | None = Field(
        None, description="HOST:PORT of labgrid-coordinator; default $LG_COORDINATOR"
    )
    timeout_s: float = Field(
        60.0, gt=0, le=3600, description="how long a run waits while someone else holds it"
    )

    @model_validator(mode="after")
    def _name_or_tags(self) -> LabgridPlace:
        if (self.name is None) == (not self.tags):
            raise ValueError("a place is named by 'name' or by 'tags', one of the two")
        return self


class BenchConfig(Strict):
    spec: int
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str = ""
    lab: Lab | None = None
    time_scale: float = Field(
        1.0,
        gt=0,
        le=1,
        description="measurement and wait durations are multiplied by this on emulated benches",
    )
    devices: dict[DeviceName, DeviceConfig]
    place: LabgridPlace | None = Field(
        None,
        description="a labgrid place to acquire before the bench opens, released at the end",
    )
    plan_timeout: Seconds = Field(
        3600.0,
        description="watchdog default: wall time after which a plan without its own 'timeout' "
        "is aborted through the interlock",
    )
    answers: str | None = Field(
        None,
        description="answers file for operator prompts on unattended runs (relative to this file)",
    )
    parameters: dict[str, dict[str, Scalar]] = Field(
        default_factory=dict,
        description="plan parameter overrides: plan id (or '*' for every plan) → name → value",
    )

    @field_validator("devices")
    @classmethod
    def _not_empty(cls, value: dict[str, DeviceConfig]) -> dict[str, DeviceConfig]:
        if not value:
            raise ValueError("a bench needs at least one device")
        return value


def is_identifier(name: str) -> bool:
    return re.match(NAME, name) is not None
