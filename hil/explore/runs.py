"""Run one drawn sequence as a plan, on a bench opened for it alone.

Examples must not leak state into each other (a latched fault, a counter, a
half-finished preheat), and the emulators have no reset that reaches every
internal variable: so each sequence runs on a freshly opened bench, the way
a plan run starts. Only the devices the exploration names are opened, with
what they link or are wired to, which keeps an example's set-up to a few
tenths of a second. A device wired *to* them (the car on the wallbox's
pilot, an analyzer measuring them) is opened only when the explore file
names it: the wallbox then simulates its own car, as documented.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from hil.bench.bench import Bench
from hil.bench.links import dependencies
from hil.bench.loader import LoadedBench
from hil.emulation.physics import HOUSEHOLD
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan
from hil.plan.runner import PlanRunner
from hil.report.record import PlanRecord


def devices_needed(loaded: LoadedBench, devices: Iterable[str]) -> list[str]:
    """``devices`` with what they link or are wired to (recursively), in file order."""
    config = loaded.config
    wanted: set[str] = set()
    todo = list(devices)
    while todo:
        name = todo.pop()
        if name in wanted or name == HOUSEHOLD:
            continue
        wanted.add(name)
        todo.extend(peer for _, peer in dependencies(config, name))
    return [n for n in config.devices if n in wanted]


def sub_bench(loaded: LoadedBench, devices: Iterable[str]) -> LoadedBench:
    """The same bench file with only ``devices`` (and what they need)."""
    keep = devices_needed(loaded, devices)
    config = loaded.config.model_copy(
        update={"devices": {n: loaded.config.devices[n] for n in keep}}
    )
    return LoadedBench(config, loaded.path, loaded.sha256, loaded.locations)


class _ReopenedBench(Bench):
    """A bench opened again for the next example: the same devices, so the identities
    read on the first opening stand (reading them costs a second per example)."""

    def __init__(self, loaded: LoadedBench, known: dict[str, dict[str, str]]) -> None:
        super().__init__(loaded)
        self._known = known

    def identities(self) -> dict[str, dict[str, str]]:
        if not self._known:
            self._known.update(super().identities())
        return self._known


class SequenceRunner:
    """Runs plan files, each on a freshly opened ``loaded`` bench."""

    def __init__(self, loaded: LoadedBench) -> None:
        self.loaded = loaded
        self.identities: dict[str, dict[str, str]] = {}

    def __call__(self, path: Path) -> PlanRecord:
        """Load ``path`` with the normal plan loader and run it on a fresh bench."""
        plan = load_plan(path)
        overrides = self.loaded.parameter_overrides(plan.id)
        with _ReopenedBench(self.loaded, self.identities) as bench:
            resolved = resolve_plan(
                plan.instances(overrides)[0], bench.definitions, self.loaded.capabilities()
            )
            return PlanRunner(bench).run(resolved)
