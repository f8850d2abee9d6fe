"""The hypothesis profiles protocol fuzzing runs under.

``fuzz-ci`` is bounded and derandomized, so a CI run (and a test) sends the
same examples in the same order every time; ``fuzz-deep`` searches longer
from a recorded random seed. Neither has a deadline: an example's time is
the device's, judged by the probe's own bounded waits, not by hypothesis.
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, Verbosity, settings

PROFILES = {"ci": "fuzz-ci", "deep": "fuzz-deep"}

_COMMON = settings(
    deadline=None,
    database=None,  # a finding is written to its own JSON file, never to a hidden store
    report_multiple_bugs=False,  # one finding per run: the device is restarted after it
    verbosity=Verbosity.quiet,  # the fuzzer reports the finding itself
    # slow examples and big inputs (a 4 kB line) are the point of the exercise
    suppress_health_check=list(HealthCheck),
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
)

# max_examples is per category of input (hil/explore/fuzz/engine.py)
settings.register_profile("fuzz-ci", max_examples=4, derandomize=True, parent=_COMMON)
settings.register_profile("fuzz-deep", max_examples=200, derandomize=False, parent=_COMMON)


def profile_settings(profile: str) -> settings:
    """The settings of ``ci`` or ``deep`` (also accepted by their full names)."""
    name = PROFILES.get(profile, profile)
    if name not in PROFILES.values():
        raise ValueError(f"unknown fuzz profile {profile!r}; expected one of {sorted(PROFILES)}")
    return settings.get_profile(name)
