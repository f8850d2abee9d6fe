"""The device under fuzz: one device of a bench file, opened alone and restartable.

Protocol fuzzing talks to one device over its own transport, so the device is
opened without its links and wiring (peers and physics add nothing to a
parser's robustness, and a restart after a finding must be quick). For an
emulated device a restart is a power cycle of the emulator; for a real one
it reopens the transport (power-cycling real hardware needs an actuator).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hil.bench.bench import Bench
from hil.bench.loader import LoadedBench, load_bench
from hil.errors import BenchError, did_you_mean
from hil.lifecycle import Resource


class DeviceUnderFuzz(Resource):
    """Device ``device`` of bench file ``bench_path`` with ``defects`` injected."""

    def __init__(self, bench_path: Path, device: str, defects: Iterable[str] = ()) -> None:
        super().__init__()
        loaded = load_bench(bench_path, [f"{device}:{d}" for d in defects] if defects else ())
        devices = loaded.config.devices
        if device not in devices:
            raise BenchError(
                f"bench {loaded.id!r} has no device {device!r}; " + did_you_mean(device, devices),
                file=str(bench_path),
            )
        alone = devices[device].model_copy(update={"links": {}, "wiring": {}})
        config = loaded.config.model_copy(update={"devices": {device: alone}})
        self.loaded: LoadedBench = dataclasses.replace(loaded, config=config)
        self.name = device
        self.type = alone.type
        self.defects = tuple(alone.defects)
        self.restarts = 0
        self._bench: Bench | None = None

    @property
    def bench(self) -> Bench:
        if self._bench is None:
            raise BenchError(f"{self.name}: the device under fuzz is not open")
        return self._bench

    @property
    def driver(self) -> Any:
        return self.bench.drivers[self.name]

    @property
    def transport(self) -> Any:
        return self.bench.transports[self.name]

    def _open_impl(self) -> None:
        self._bench = Bench(self.loaded).open()

    def _close_impl(self) -> None:
        bench, self._bench = self._bench, None
        if bench is not None:
            bench.close()

    def restart(self) -> None:
        """Close and reopen the device (and its emulator)."""
        self._close_impl()
        self._open_impl()
        self.restarts += 1
