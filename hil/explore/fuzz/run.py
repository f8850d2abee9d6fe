"""Fuzz one device of a bench with the fuzzer of the protocol its transport carries."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from hil.bench.registry import get_device_type
from hil.errors import ConfigError
from hil.explore.fuzz.can import CanFuzzTarget
from hil.explore.fuzz.engine import FuzzTarget, run_fuzz
from hil.explore.fuzz.miot import MiotFuzzTarget
from hil.explore.fuzz.report import FuzzReport
from hil.explore.fuzz.scpi import ScpiFuzzTarget
from hil.explore.fuzz.session import DeviceUnderFuzz

# the protocol each kind of transport carries on a hil bench
PROTOCOLS: dict[str, tuple[str, Callable[[DeviceUnderFuzz], FuzzTarget]]] = {
    "can": ("can", CanFuzzTarget),
    "serial": ("miot", MiotFuzzTarget),
    "visa": ("scpi", ScpiFuzzTarget),
}


def fuzz_device(
    bench: Path,
    device: str,
    *,
    protocol: str | None = None,
    profile: str = "ci",
    defects: Iterable[str] = (),
    seed: int | None = None,
) -> FuzzReport:
    """Open ``device`` alone (with ``defects``), fuzz its protocol, close it."""
    with DeviceUnderFuzz(bench, device, defects) as dut:
        kind = get_device_type(dut.type).transport
        speaks, make = PROTOCOLS[kind]
        if protocol is not None and protocol != speaks:
            raise ConfigError(
                f"device {device!r} is on a {kind} transport and speaks {speaks}, "
                f"not {protocol}; use --protocol {speaks} or leave it out"
            )
        target = make(dut)
        try:
            report = run_fuzz(target, profile, seed=seed)
        finally:
            target.close()
        report.defects = dut.defects
        return report
