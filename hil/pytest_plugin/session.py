"""The session's bench (leased from the pool and opened once, on first use) and run-wide settings.

A run names one bench file or a pool of them (``--bench a.yaml --bench b.yaml``).
Each process that runs plans (an xdist worker, or a plain run) leases one bench
of the pool with a file lock and holds it for the session; a bench with real
devices is leased even alone, so two runs never drive one bench at once. A
bench that names a labgrid place also acquires the place before it opens.
An all-emulated bench run alone is not leased: every process has its own
emulators, so there is nothing to share.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hil.bench.bench import Bench
from hil.bench.labgrid_place import Place
from hil.bench.loader import LoadedBench, load_bench
from hil.bench.pool import BenchLease, lease_bench
from hil.errors import HilError, PlanError
from hil.plan.prompts import AnswersFile, Prompter, Terminal
from hil.safety.interlock import drive_safe
from hil.secrets import redact


@dataclass
class HilSession:
    bench_path: Path
    defects: list[str]
    results_dir: Path | None
    requirement_url: str
    params: list[str] = field(default_factory=list)  # NAME=VALUE or PLAN.NAME=VALUE
    answers: Path | None = None
    terminal: Callable[[str], str] | None = None  # reads an answer with capture suspended
    bench: Bench | None = None
    error: HilError | None = None
    _loaded: LoadedBench | None = None
    _prompter: Prompter | None = None
    scratch: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)
    pool: list[Path] = field(default_factory=list)  # the benches this run may use
    leases: bool = True  # False in an xdist controller: it runs no plan, it leases nothing
    worker: str = "main"  # the xdist worker id (gw0, gw1…), or main
    lease_timeout_s: float = 60.0
    lease_dir: Path | None = None  # default: pool.default_lease_dir()
    lease: BenchLease | None = None
    place: Place | None = None

    def loaded_bench(self) -> LoadedBench:
        """The bench this process runs on: leased from the pool on first use, then loaded."""
        if self._loaded is None:
            if self.error is not None:
                raise self.error  # the lease failed once: every later user hears the same
            try:
                self._loaded = self._claim()
            except HilError as err:
                self.error = err
                raise
        return self._loaded

    def _claim(self) -> LoadedBench:
        pool = self.pool or [self.bench_path]
        if len(pool) == 1:
            loaded = load_bench(pool[0], self.defects)
            real = any(not dev.emulated for dev in loaded.config.devices.values())
            if not self.leases or not (real or loaded.config.place):
                return loaded
        elif not self.leases:
            return load_bench(pool[0], self.defects)  # for the report's environment only
        self.lease = lease_bench(
            pool, worker=self.worker, lease_dir=self.lease_dir, timeout_s=self.lease_timeout_s
        )
        self.bench_path = self.lease.bench
        return load_bench(self.bench_path, self.defects)

    def open_bench(self) -> Bench:
        """The bench, opened on first use; a bench that failed to open fails every user."""
        if self.error is not None:
            raise self.error
        if self.bench is None:
            try:
                loaded = self.loaded_bench()
                self._acquire_place(loaded)
                self.bench = Bench(loaded).open()
            except HilError as err:
                self.error = err
                raise
        return self.bench

    def _acquire_place(self, loaded: LoadedBench) -> None:
        spec = loaded.config.place
        if spec is None or self.place is not None:
            return
        place = Place(spec.name, tags=spec.tags, coordinator=spec.coordinator, worker=self.worker)
        place.acquire(spec.timeout_s)
        self.place = place

    def overrides(self, plan_id: str) -> dict[str, Any]:
        """Parameter values for ``plan_id``: the bench file's, then the command line's."""
        values = self.loaded_bench().parameter_overrides(plan_id)
        for item in self.params:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise PlanError(
                    f"--hil-param {item!r} must look like NAME=VALUE or PLAN.NAME=VALUE"
                )
            plan, dot, param = name.rpartition(".")
            if not dot:
                values[name] = value
            elif plan == plan_id:
                values[param] = value
        return values

    def prompter(self) -> Prompter | None:
        if self._prompter is None:
            answers = self.answers
            config = self.loaded_bench().config
            if answers is None and config.answers:
                answers = (self.bench_path.parent / config.answers).resolve()
            if answers is not None:
                self._prompter = AnswersFile(answers)
            elif self.terminal is not None:
                self._prompter = Terminal(read=self.terminal)
        return self._prompter

    @property
    def evidence_dir(self) -> Path:
        if self.results_dir is not None:
            return self.results_dir / "evidence"
        if self.scratch is None:
            self.scratch = tempfile.TemporaryDirectory(prefix="hil-evidence-")
        return Path(self.scratch.name)

    def make_safe(self, reason: str) -> None:
        """The interlock, before the bench closes: every device it can reach, made safe;
        what it did (and could not do) is written beside the plan records."""
        if self.bench is None:
            return
        report = drive_safe(self.bench, reason)
        if self.results_dir is not None:
            folder = self.results_dir / "interlock"
            folder.mkdir(parents=True, exist_ok=True)
            # xdist workers share the folder: the worker's name keeps their files apart
            path = folder / f"session-{self.worker}-{report.started:.6f}.json"
            path.write_text(redact(json.dumps(report.to_json(), indent=1)), encoding="utf-8")

    def close(self) -> None:
        """The bench, then its labgrid place, then the lease: the reverse of taking them."""
        if self.bench is not None:
            self.bench.close()
            self.bench = None
        try:
            if self.place is not None:
                place, self.place = self.place, None
                place.release()
        finally:
            if self.lease is not None:  # even when labgrid could not be told
                self.lease.release()
                self.lease = None
        if self.scratch is not None:
            self.scratch.cleanup()
            self.scratch = None


SESSION_KEY = pytest.StashKey[HilSession]()


def hil_session(config: pytest.Config) -> HilSession:
    return config.stash[SESSION_KEY]
