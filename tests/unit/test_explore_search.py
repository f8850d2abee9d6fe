"""The search's bookkeeping, with a plan judge in place of the bench: a budget of
distinct sequences, a plan drawn again judged from its first run, ``repeat_previous``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from hypothesis import seed
from hypothesis.stateful import run_state_machine_as_test

from hil.bench.loader import load_bench
from hil.explore.loader import load_explore, rules_for
from hil.explore.machine import SequenceContext, Tally, ViolationFound, machine_class
from hil.explore.profiles import DRAWS_PER_RUN, explore_settings
from hil.explore.sequence import plan_document
from hil.plan.loader import load_plan
from hil.report.record import PlanRecord, Status
from tests.conftest import EMULATED_BENCH, PLANS

XE1 = load_explore(PLANS / "explore" / "XE1-ev-lock-sequences.yaml")
RULES = rules_for(XE1, load_bench(EMULATED_BENCH).definitions())
Judge = Callable[[list[str]], bool]  # the stimuli, one line each → the plan fails


def _requests(path: Path) -> list[str]:
    """The lock requests and gears of the plan's drawn steps, in order (normal loader)."""
    out = []
    for step in load_plan(path).plan.steps:
        if step.send is not None:
            signals = step.send.signals
            out.append(str(signals.get("LockRequest") or signals.get("Gear")))
    return out


def _search(tmp_path: Path, judge: Judge, *, budget: int, repeat: bool) -> list[list[str]]:
    """Explore XE1's rules with ``judge`` as the bench; the sequences run, in order."""
    ran: list[list[str]] = []
    texts: list[str] = []

    def run(path: Path) -> PlanRecord:
        texts.append(path.read_text(encoding="utf-8"))
        requests = _requests(path)
        ran.append(requests)
        status = Status.FAILED if judge(requests) else Status.PASSED
        return PlanRecord(
            plan_id="judged",
            title="t",
            file=path.name,
            file_sha256="",
            version="1",
            requirements=[],
            severity="normal",
            tags=[],
            bench_id="judge",
            bench_sha256="",
            defects={},
            time_scale=1.0,
            status=status,
        )

    ctx = SequenceContext(
        rules=RULES,
        waits=[0.0],
        budget=budget,
        repeat=repeat,
        settle=0.1,
        initial={},
        document=lambda steps, settle: plan_document(XE1, steps, settle),
        run=run,
        work=tmp_path,
        tally=Tally(shrink_runs=5),
    )
    cls = machine_class("Judged", ctx)
    seed(0)(cls)
    settings = explore_settings(
        "ci", max_examples=budget * DRAWS_PER_RUN, max_steps=4, database=None
    )
    with contextlib.suppress(ViolationFound):  # the failures are in ``ran``
        run_state_machine_as_test(cls, settings=settings)
    assert len(set(texts)) == len(texts), "a sequence was run on the bench twice"
    assert ctx.tally.examples == len(ran)
    return ran


def test_each_distinct_sequence_runs_once_and_the_budget_bounds_the_runs(tmp_path: Path) -> None:
    ran = _search(tmp_path, lambda requests: False, budget=12, repeat=True)
    assert len(ran) == 12  # the budget, all of it spent on distinct plans


def test_a_failure_ends_the_search(tmp_path: Path) -> None:
    def unlocked_twice(requests: list[str]) -> bool:
        return "UNLOCK UNLOCK" in " ".join(requests)

    ran = _search(tmp_path, unlocked_twice, budget=20, repeat=True)
    assert any(unlocked_twice(r) for r in ran)
    assert len(ran) < 20  # the search ended at the failure (and its shrinking), not the budget


def test_repeat_previous_draws_the_same_stimulus_twice_in_a_row(tmp_path: Path) -> None:
    ran = _search(tmp_path, lambda requests: False, budget=20, repeat=True)
    assert any(a == b for r in ran for a, b in zip(r[1:-1], r[2:-1], strict=False))
