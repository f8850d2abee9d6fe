"""The session's bench: opened once on first use, closed when the session ends."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from hil.errors import HilError


@dataclass
class HilSession:
    bench_path: Path
    defects: list[str]
    results_dir: Path | None
    requirement_url: str
    bench: Bench | None = None
    error: HilError | None = None
    scratch: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    def open_bench(self) -> Bench:
        """The bench, opened on first use; a bench that failed to open fails every user."""
        if self.error is not None:
            raise self.error
        if self.bench is None:
            try:
                self.bench = Bench(load_bench(self.bench_path, self.defects)).open()
            except HilError as err:
                self.error = err
                raise
        return self.bench

    @property
    def evidence_dir(self) -> Path:
        if self.results_dir is not None:
            return self.results_dir / "evidence"
        if self.scratch is None:
            self.scratch = tempfile.TemporaryDirectory(prefix="hil-evidence-")
        return Path(self.scratch.name)

    def close(self) -> None:
        if self.bench is not None:
            self.bench.close()
            self.bench = None
        if self.scratch is not None:
            self.scratch.cleanup()
            self.scratch = None


SESSION_KEY = pytest.StashKey[HilSession]()


def hil_session(config: pytest.Config) -> HilSession:
    return config.stash[SESSION_KEY]
