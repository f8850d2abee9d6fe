"""``hil emulate`` processes as a bench's real devices: the source bench they
emulate, one process per group of devices, and the bench that reaches them."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.processes import START_TIMEOUT_S, first_line, hil, stop

EMULATED: dict[str, Any] = {
    "spec": 1,
    "id": "emulate-source",
    "time_scale": 0.1,
    "devices": {
        "ev": {
            "type": "ev",
            "emulated": True,
            "can": {"interface": "virtual", "channel": "ev-can"},
        },
        "smart_plug": {"type": "smart_plug", "emulated": True, "serial": {"port": "auto"}},
        "power_analyzer": {
            "type": "power_analyzer",
            "emulated": True,
            "visa": {"resource": "auto"},
            "wiring": {"1": "smart_plug"},
        },
    },
}


@dataclass
class Emulate:
    """One ``hil emulate`` process and the JSON line it printed once reachable."""

    proc: subprocess.Popen[bytes]
    stderr: Path
    line: dict[str, Any]

    @property
    def devices(self) -> dict[str, dict[str, Any]]:
        return dict(self.line["devices"])

    def errors(self) -> str:
        return self.stderr.read_text(errors="replace")


def write_source_bench(path: Path) -> Path:
    path.write_text(yaml.safe_dump(EMULATED), encoding="utf-8")
    return path


def start_emulate(bench: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    return hil(["emulate", *args, "--bench", str(bench)], log)


def json_line(
    proc: subprocess.Popen[bytes], log: Path, timeout_s: float = START_TIMEOUT_S
) -> dict[str, Any]:
    line: dict[str, Any] = json.loads(first_line(proc, log, timeout_s))
    return line


@contextlib.contextmanager
def emulate_all(bench: Path, groups: list[list[str]], logs: Path) -> Iterator[list[Emulate]]:
    """Start one process per group (in parallel), yield them once all are reachable."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for i, group in enumerate(groups):
            log = logs / f"emulate-{i}.err"
            started.append((start_emulate(bench, *group, log=log), log))
        yield [Emulate(p, log, json_line(p, log)) for p, log in started]
    finally:
        for proc, _log in started:
            stop(proc)


def real_bench(path: Path, devices: dict[str, dict[str, Any]]) -> Path:
    """A bench of ``devices`` as the emulate processes print them (``emulated: false``)."""
    bench = {"spec": 1, "id": "mixed", "time_scale": 0.1, "devices": devices}
    path.write_text(yaml.safe_dump(bench), encoding="utf-8")
    return path
