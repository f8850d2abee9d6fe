"""The hypothesis profiles exploration runs under: bounded CI, deep nightly.

Both fix the seed (the explore file's, recorded with every finding), keep a
failure database in a directory under the run's reports (a found sequence
is replayed first on the next run) and have no per-example deadline: one
example is a whole sequence on a freshly opened bench.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILES = {"ci": "explore-ci", "deep": "explore-deep"}
# sequences run while shrinking a failure, at most (see hil.explore.machine.Tally)
SHRINK_RUNS = {"ci": 15, "deep": 400}
# hypothesis examples per sequence of the budget: it draws many plans again (its
# per-example rule subsets and mutations change choices, not steps), and those cost
# no bench time, so they do not count (see hil.explore.machine)
DRAWS_PER_RUN = 10
_SLOW = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

# parent: hypothesis' defaults, not whatever profile is loaded when this is imported
# (a test suite's derandomize=True would replace the recorded seed with a digest)
_BASE = settings.get_profile("default")
settings.register_profile(
    "explore-ci",
    parent=_BASE,
    derandomize=False,
    max_examples=25,
    deadline=None,
    suppress_health_check=_SLOW,
    verbosity=Verbosity.quiet,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
    print_blob=False,
    report_multiple_bugs=False,
)
settings.register_profile(
    "explore-deep",
    parent=_BASE,
    derandomize=False,
    max_examples=500,
    deadline=None,
    suppress_health_check=_SLOW,
    verbosity=Verbosity.quiet,
    print_blob=False,
    report_multiple_bugs=False,
)


def explore_settings(
    profile: str, *, max_examples: int, max_steps: int, database: Path | None
) -> settings:
    """The named profile with this exploration's budget, sequence length and database."""
    db = DirectoryBasedExampleDatabase(str(database)) if database is not None else None
    return settings(
        settings.get_profile(PROFILES[profile]),
        max_examples=max_examples,
        stateful_step_count=max_steps,
        database=db,
    )
