"""One exception root for everything hil reports to a person.

Every error carries structured fields (file, line, device, ...) besides its
message, inherits the matching builtin where one fits (so ``except
TimeoutError`` keeps working), and survives pickling so pytest-xdist workers
can hand it to the controller unchanged.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class HilError(Exception):
    """Root of every error hil raises on purpose."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def __getattr__(self, name: str) -> Any:
        # Structured fields read as attributes (err.device, err.line); only
        # called when normal lookup fails, so real attributes win.
        fields = self.__dict__.get("fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.fields))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[HilError], message: str, fields: dict[str, Any]) -> HilError:
    err = cls.__new__(cls)
    HilError.__init__(err, message, **fields)
    return err


class ConfigError(HilError, ValueError):
    """A bench, plan or definition file is wrong. Names the file and line."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        **fields: Any,
    ) -> None:
        where = location(file, line, column)
        super().__init__(
            f"{where}: {message}" if where else message,
            file=file,
            line=line,
            column=column,
            reason=message,
            **fields,
        )


class BenchError(ConfigError):
    """The bench file is invalid or names something that does not exist."""


class PlanError(ConfigError):
    """A test plan is invalid or does not fit the bench it runs on."""


class DefinitionError(ConfigError):
    """A device definition (DBC, MIoT spec, SCPI map) is invalid."""


class DeviceError(HilError):
    """Something went wrong talking to one device; names the device."""

    def __init__(self, message: str, *, device: str, **fields: Any) -> None:
        super().__init__(f"device {device!r}: {message}", device=device, reason=message, **fields)


class TransportOpenError(DeviceError, ConnectionError):
    """The transport to a device could not be opened (missing port, refused)."""


class DeviceTimeout(DeviceError, TimeoutError):
    """A device did not answer within its bound."""


class DeviceLost(DeviceError, ConnectionError):
    """A device stopped answering or its link went away mid-run."""


class ProtocolError(DeviceError):
    """A device answered something its protocol does not allow."""


class EmulatorError(DeviceError):
    """An emulator could not start or was asked for something it cannot do."""


def location(file: str | None, line: int | None = None, column: int | None = None) -> str:
    """``file:line:column`` with the parts that are known."""
    if file is None:
        return ""
    parts = [file]
    if line is not None:
        parts.append(str(line))
        if column is not None:
            parts.append(str(column))
    return ":".join(parts)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A short hint naming the closest valid names, or the valid names if few."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    if not options:
        return "none are defined"
    if len(options) <= 8:
        return "expected one of " + ", ".join(repr(o) for o in options)
    return f"expected one of {len(options)} names, e.g. " + ", ".join(repr(o) for o in options[:5])
