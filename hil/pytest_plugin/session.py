"""The session's bench (opened once on first use) and run-wide settings."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hil.bench.bench import Bench
from hil.bench.loader import LoadedBench, load_bench
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

    def loaded_bench(self) -> LoadedBench:
        if self._loaded is None:
            self._loaded = load_bench(self.bench_path, self.defects)
        return self._loaded

    def open_bench(self) -> Bench:
        """The bench, opened on first use; a bench that failed to open fails every user."""
        if self.error is not None:
            raise self.error
        if self.bench is None:
            try:
                self.bench = Bench(self.loaded_bench()).open()
            except HilError as err:
                self.error = err
                raise
        return self.bench

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
            path = folder / f"session-{report.started:.6f}.json"
            path.write_text(redact(json.dumps(report.to_json(), indent=1)), encoding="utf-8")

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
