"""Explore one explore file on a bench: search, shrink, emit the reproducing plan.

``explore()`` is what ``hil explore`` and the pytest items call: it runs the
hypothesis state machine under the chosen profile and, when a sequence
violates an invariant (or a ``refused`` rule is accepted), writes the shrunk
sequence as an ordinary YAML plan in ``out`` and reports where.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from hil.bench.loader import LoadedBench
from hil.explore.loader import LoadedExplore, rules_for
from hil.explore.machine import (
    SequenceContext,
    Tally,
    ViolationFound,
    initial_writes,
    machine_class,
)
from hil.explore.profiles import DRAWS_PER_RUN, SHRINK_RUNS, explore_settings
from hil.explore.runs import SequenceRunner, devices_needed, sub_bench
from hil.explore.sequence import plan_document, with_header


@dataclass
class ExploreResult:
    """What one exploration did and found; ``asdict`` is the run record."""

    explore_id: str
    file: str
    bench_id: str
    profile: str
    seed: int
    database: str
    max_examples: int
    max_steps: int
    defects: list[str]
    devices_opened: list[str]
    examples: int = 0
    steps: int = 0
    ended_by_refusal: int = 0
    not_run: int = 0
    repeated: int = 0  # sequences drawn again, judged from their first run
    replayed: str = ""  # the emitted plan's status when run once more
    elapsed_s: float = 0.0
    found: bool = False
    found_at: int = 0  # the sequence (counted as in ``examples``) that first failed
    flaky: bool = False
    reason: str = ""  # the emitted plan's failure, as the runner words it
    category: str = ""
    failed_step: str = ""
    stimuli: int = 0  # in the shrunk sequence
    plan: str = ""  # where the emitted plan is
    sequence: list[str] = field(default_factory=list)  # its steps, one line each

    def summary(self) -> str:
        head = (
            f"{self.explore_id}: {self.examples} sequences ({self.steps} stimuli) on "
            f"{self.bench_id}, profile {self.profile}, seed {self.seed}"
        )
        if not self.found:
            return head + ": no violation found"
        lines = [
            head + (": FLAKY violation" if self.flaky else ": violation found"),
            f"  {self.reason}",
            f"  shrunk to {self.stimuli} stimuli:",
            *(f"    {s}" for s in self.sequence),
            f"  reproducing plan: {self.plan}",
        ]
        return "\n".join(lines)


def explore(
    loaded: LoadedExplore,
    bench: LoadedBench,
    *,
    profile: str = "ci",
    out: Path,
    max_examples: int | None = None,
) -> ExploreResult:
    """Search ``loaded``'s sequences on ``bench``; emit a plan in ``out`` if one fails."""
    spec = loaded.file.explore
    rules = rules_for(loaded, bench.definitions())
    opened = devices_needed(bench, loaded.file.devices)
    small = sub_bench(bench, loaded.file.devices)
    work = out / "work" / loaded.id
    work.mkdir(parents=True, exist_ok=True)
    database = out / "hypothesis-db"
    budget = max_examples or getattr(spec.budget, profile)
    result = ExploreResult(
        explore_id=loaded.id,
        file=_shown_path(loaded.path),
        bench_id=bench.id,
        profile=profile,
        seed=spec.seed,
        database=_shown_path(database),
        max_examples=budget,
        max_steps=spec.max_steps,
        defects=[f"{n}:{d}" for n, dev in bench.config.devices.items() for d in dev.defects],
        devices_opened=opened,
    )
    tally = Tally(shrink_runs=SHRINK_RUNS[profile])
    runner = SequenceRunner(small)
    ctx = SequenceContext(
        rules=rules,
        waits=spec.waits,
        budget=budget,
        repeat=spec.repeat,
        settle=spec.settle,
        initial=initial_writes(loaded.file.setup),
        document=lambda steps, settle: plan_document(loaded, steps, settle),
        run=runner,
        work=work,
        tally=tally,
    )
    cls = machine_class(f"Explore_{_ident(loaded.id)}", ctx)
    hypothesis_seed(spec.seed)(cls)
    started = time.monotonic()
    found: ViolationFound | None = None
    try:
        run_state_machine_as_test(
            cls,
            settings=explore_settings(
                profile,
                # the budget counts distinct sequences run (machine.Tally): hypothesis
                # may draw as many again, judged without the bench, and the draws past
                # the budget end at once
                max_examples=budget * DRAWS_PER_RUN,
                max_steps=spec.max_steps,
                database=database,
            ),
        )
    except (ViolationFound, Flaky):
        # Flaky: the final replay "passed" because the shrink budget was spent (or the
        # failure did not repeat); either way the smallest failure seen is the result
        if not tally.failures:
            raise
        found = tally.smallest()
        result.found_at = tally.failures[0].example
    result.examples, result.steps = tally.examples, tally.steps
    result.ended_by_refusal, result.not_run = tally.ended_by_refusal, tally.not_run
    result.repeated = tally.repeated
    if found is not None:
        path = _emit(found, result, out)
        # proof: the emitted file, read by the normal loader, fails again
        replay = runner(path)
        result.replayed = replay.status.value
        result.flaky = replay.status is not found.record.status
    result.elapsed_s = round(time.monotonic() - started, 3)
    (out / f"{loaded.id}.explore.json").write_text(
        json.dumps(asdict(result), indent=2), encoding="utf-8"
    )
    return result


def _emit(found: ViolationFound, result: ExploreResult, out: Path) -> Path:
    record = found.record
    header = [
        f"Found by `hil explore` from {result.file} on bench {result.bench_id}",
        f"defects injected: {', '.join(result.defects) or 'none'}",
        f"violation: {record.reason}",
        f"hypothesis: profile explore-{result.profile}, seed {result.seed}, "
        f"database {result.database}",
    ]
    # the header is comments only: the plan below is byte for byte the one that failed
    path = out / f"{record.plan_id}.yaml"
    path.write_text(with_header(found.text, header), encoding="utf-8")
    failed = [s for s in record.steps if s.status.value == record.status.value]
    result.found = True
    result.reason = record.reason
    result.category = record.category
    result.failed_step = failed[0].id if failed else ""
    result.stimuli = found.stimuli
    result.plan = str(path)
    result.sequence = [describe_step(s) for s in found.steps]
    return path


def describe_step(step: Mapping[str, Any]) -> str:
    """One line per step: ``s3: send ev.BODY_LockCmd LockRequest=UNLOCK Source=PHONE``."""
    kind = next(k for k in ("send", "set", "call", "wait") if k in step)
    body = step[kind]
    if kind == "wait":
        return f"{step['id']}: wait {body['duration']}"
    if kind == "set":
        return f"{step['id']}: set {body['target']} = {body['value']}"
    ref = body.get("message") or body.get("action")
    values = body.get("signals") or body.get("args") or {}
    shown = " ".join(f"{k}={v}" for k, v in values.items())
    refused = " (must be refused)" if body.get("expect") == "refused" else ""
    return f"{step['id']}: {kind} {ref} {shown}{refused}".rstrip()


def _ident(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def _shown_path(path: Path) -> str:
    """Relative to the working directory when under it (reports name no machine paths)."""
    here = Path.cwd().resolve()
    full = path.resolve()
    return str(full.relative_to(here)) if full.is_relative_to(here) else str(path)
