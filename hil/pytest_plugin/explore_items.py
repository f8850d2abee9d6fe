"""Explore files (``explore:`` under the plan roots) as pytest items.

An item passes when the exploration finds no violation and fails naming the
violation, the shrunk sequence and the emitted reproducing plan (attached
to the Allure result with the seed, profile and database). The profile is
``ci`` unless ``HIL_EXPLORE_PROFILE`` says ``deep``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.errors import ConfigError, HilError
from hil.explore.explorer import explore
from hil.explore.loader import is_explore_path, load_explore
from hil.explore.profiles import PROFILES
from hil.pytest_plugin.session import hil_session
from hil.report.allure_explore import label_exploration
from hil.secrets import redact
from hil.yamlio import load_file


class ExplorationFailed(AssertionError):
    """A sequence broke an invariant; the message names the reproducing plan."""


def is_explore_file(path: Path) -> bool:
    return is_explore_path(path)


class ExploreFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        load_file(self.path)  # a malformed file is a collection error at its line
        loaded = load_explore(self.path)
        yield ExploreItem.from_parent(self, name=loaded.id)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, HilError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class ExploreItem(pytest.Item):
    def runtest(self) -> None:
        session = hil_session(self.config)
        bench = session.loaded_bench()
        base = session.results_dir or session.evidence_dir
        out = Path(base) / "explore"
        out.mkdir(parents=True, exist_ok=True)
        # the nightly lab run sets HIL_EXPLORE_PROFILE=deep; CI and certify run "ci"
        profile = os.environ.get("HIL_EXPLORE_PROFILE", "ci")
        if profile not in PROFILES:
            raise ConfigError(
                f"HIL_EXPLORE_PROFILE={profile!r}: expected one of {sorted(PROFILES)}"
            )
        result = explore(load_explore(self.path), bench, profile=profile, out=out)
        label_exploration(result)
        if result.found:
            raise ExplorationFailed(redact(result.summary()))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ExplorationFailed | HilError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"explore {self.name}"
