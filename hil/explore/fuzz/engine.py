"""The fuzz loop: hypothesis draws examples, a target sends them, the oracle judges.

After each example the target's liveness probe must pass, the device must
have answered bad input as its protocol requires, and no safety signal may
have moved on invalid input. A violation is raised inside the hypothesis
test, so hypothesis shrinks it to a minimal input; the device is restarted
before the next example once it failed, so a hang left by one example is
never blamed on the next one (shrinking depends on it).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import hypothesis
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure, FlakyReplay

from hil.explore.fuzz.profiles import profile_settings
from hil.explore.fuzz.report import ERROR_ANSWER, LIVENESS, SAFETY, Finding, FuzzReport


@dataclass(frozen=True)
class Example:
    """One input: its category, its wire form for the report, and what it must get back."""

    category: str
    wire: str  # hex of a frame, a MIoT line, SCPI text: what the finding shows
    must_error: bool  # bad input: the protocol's error answer is required
    invalid: bool  # the safety envelope must not move on it
    data: Any = field(default=None, compare=False)  # what the target needs to send it


@dataclass(frozen=True)
class Outcome:
    """What the device did with one example, judged by the target's protocol rules
    once the probe has passed (a live device has answered everything sent before it).

    ``error_ok`` is None when no error answer was required; ``answer`` is what came.
    """

    answer: str
    error_ok: bool | None = None
    safety: str | None = None  # why the envelope was violated, if it was


class FuzzTarget(ABC):
    """One device, reached through its real transport, and its protocol's oracle."""

    protocol: str
    device: str

    @abstractmethod
    def examples(self) -> dict[str, st.SearchStrategy[Example]]:
        """A strategy per category of input, derived from the device's definition, in the
        order they are run: the inputs most likely to break a parser first."""

    @abstractmethod
    def send(self, example: Example) -> None:
        """Put ``example`` on the wire (bounded waits only)."""

    @abstractmethod
    def probe(self) -> str | None:
        """None if the device answers a known-good request in time, else why not."""

    @abstractmethod
    def judge(self, example: Example) -> Outcome:
        """After a passing probe: did the device answer ``example`` as its protocol requires,
        and did the safety envelope hold?"""

    @abstractmethod
    def restart(self) -> None:
        """Bring the device back (power-cycle the emulator, reopen the transport)."""

    def close(self) -> None:  # noqa: B027 - most targets open nothing of their own
        """Release what the target opened itself (the device is the caller's)."""

    def shown(self, example: Example) -> str:
        """The input as it went on the wire (a target may complete it when sending)."""
        return example.wire


class _Violation(Exception):
    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.reason)
        self.finding = finding


def run_fuzz(target: FuzzTarget, profile: str = "ci", *, seed: int | None = None) -> FuzzReport:
    """Fuzz ``target`` under ``profile``, category by category, until the first finding.

    Each category gets the profile's ``max_examples`` of its own, so a rare
    kind of input (a 513-byte line) is never crowded out by a common one.
    The report holds the minimal (shrunk) finding, if any.
    """
    base = profile_settings(profile)
    if base.derandomize:
        seed_text = "derandomized"
    else:
        seed = random.getrandbits(32) if seed is None else seed
        seed_text = str(seed)
    report = FuzzReport(target.protocol, target.device, profile, seed_text)
    for strategy in target.examples().values():
        _run_category(target, strategy, base, seed, report)
        if report.finding is not None:
            break
    return report


def _run_category(
    target: FuzzTarget,
    strategy: st.SearchStrategy[Example],
    base: settings,
    seed: int | None,
    report: FuzzReport,
) -> None:
    failures: list[Finding] = []
    dirty = [False]

    @base
    @given(strategy)
    def one(example: Example) -> None:
        if dirty[0]:
            target.restart()
            dirty[0] = False
        report.sent[example.category] += 1
        finding = _judge(target, example, report)
        if finding is not None:
            failures.append(finding)
            dirty[0] = True
            raise _Violation(finding)

    test = one if seed is None else hypothesis.seed(seed)(one)
    try:
        test()
    except _Violation as violation:
        report.finding = violation.finding
    except (FlakyFailure, FlakyReplay):
        report.finding, report.flaky = failures[-1], True
    if dirty[0]:
        target.restart()  # whatever comes next meets a device that works


def _judge(target: FuzzTarget, example: Example, report: FuzzReport) -> Finding | None:
    target.send(example)
    why_dead = target.probe()

    wire = target.shown(example)

    def finding(kind: str, reason: str) -> Finding:
        return Finding(target.protocol, target.device, kind, example.category, wire, reason)

    shown = short(wire)
    if why_dead is not None:
        report.liveness_failures += 1
        return finding(LIVENESS, f"liveness lost after {shown}: {why_dead}")
    outcome = target.judge(example)
    if outcome.safety is not None:
        return finding(SAFETY, f"safety envelope violated by {shown}: {outcome.safety}")
    if outcome.error_ok is False:
        return finding(ERROR_ANSWER, f"wrong answer to {shown}: {outcome.answer or 'nothing'}")
    if outcome.error_ok:
        report.errors_answered += 1
    return None


def short(wire: str, limit: int = 60) -> str:
    """``wire`` quoted, cut to ``limit`` characters with its full length (a 4 kB line)."""
    if len(wire) <= limit:
        return repr(wire)
    return f"{wire[:limit]!r}… ({len(wire.encode())} bytes)"
