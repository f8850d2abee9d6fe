"""Judging expectations on capture timestamps: deadlines, anchors, stays-within.

Every wait here is bounded, and every verdict is taken from the timestamps
the transports recorded, never from when the runner happened to look.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hil.bench.bench import Bench
from hil.plan.conditions import Condition
from hil.plan.resolved import Expectation
from hil.plan.timeline import State, Timeline
from hil.plan.verdicts import (
    CATEGORY_CONDITION,
    CATEGORY_DEADLINE,
    GRACE_S,
    LATE_WATCH_S,
    POLL_S,
    StepFailed,
    fmt_labels,
)
from hil.report.record import StepRecord


class Judge:
    """Waits for and judges one expectation at a time."""

    def __init__(
        self, bench: Bench, lookup: Callable[[str], Any], check_links: Callable[[], None]
    ) -> None:
        self.bench = bench
        self.lookup = lookup
        self.check_links = check_links

    def expect(self, e: Expectation, rec: StepRecord, stimulus_t: float | None) -> Any:
        """Judge an expectation; returns the (first) signal's value that met it."""
        t0 = time.time()
        if e.condition.changes and stimulus_t is not None and e.after is None:
            # "set X, then expect Y changes": the change counts from the stimulus,
            # so a device that answered before this step began is not missed
            t0 = stimulus_t
        condition = e.condition.bind(self.lookup)
        if condition != e.condition:
            rec.observed["bound"] = e.describe(condition)
        ta = self._await_anchor(e, t0, rec) if e.after else t0
        if e.stays_for is not None:
            return self._stays(e, condition, t0, e.stays_for, rec)
        assert e.within is not None
        return self._within(e, condition, ta, e.within, rec)

    def _await_anchor(self, e: Expectation, t0: float, rec: StepRecord) -> float:
        trig = e.after
        assert trig is not None
        condition = trig.condition.bind(self.lookup)
        line = Timeline(self.bench, [trig.signal], t0)
        end = t0 + trig.timeout
        while True:
            for state in line.advance():
                if state.t >= t0 and condition.holds(state.values[0], None, state.previous[0]):
                    rec.observed["anchor_t"] = state.t
                    rec.observed["anchor"] = trig.describe()
                    return state.t
            if time.time() > end + GRACE_S:
                self._settle_links([trig.signal.device])
                raise StepFailed(
                    f"the anchor never happened: waited {trig.timeout:g} s for "
                    f"{trig.describe()}; last seen {fmt_labels(line.labels())}",
                    CATEGORY_CONDITION,
                    {"last": line.labels()},
                )
            self.check_links()
            time.sleep(POLL_S)

    def _within(
        self, e: Expectation, condition: Condition, ta: float, within: float, rec: StepRecord
    ) -> Any:
        line = Timeline(self.bench, e.signals, ta)
        deadline = ta + within
        # after a miss, keep watching a little longer so the report can say how
        # late the device was, not only that it was late
        give_up = deadline + GRACE_S + min(max(within, LATE_WATCH_S), 5.0)
        hit: State | None = None
        at_deadline: dict[str, str] | None = None
        while hit is None:
            for state in line.advance():
                if at_deadline is None and state.t > deadline:
                    at_deadline = line.labels()
                if line.all_hold(condition, state):
                    hit = state
                    break
            if hit is None:
                now = time.time()
                if now > deadline + GRACE_S and at_deadline is None:
                    at_deadline = line.labels()
                if now > give_up:
                    break
                self.check_links()
                time.sleep(POLL_S)
        rec.observed["last"] = at_deadline or line.labels()
        if hit is not None:
            rec.observed["latency_s"] = round(hit.t - ta, 6)
            if hit.t <= deadline:
                rec.message = (
                    f"met after {(hit.t - ta) * 1000:.0f} ms (bound {within * 1000:.0f} ms)"
                )
                return hit.values[0]
        self._settle_links([ref.device for ref in e.signals])
        anchor = f" after {e.after.describe()}" if e.after else ""
        late = f"; first met {(hit.t - ta) * 1000:.0f} ms after" if hit is not None else ""
        what = " and ".join(f"{s.text} {condition.describe(s.info)}" for s in e.signals)
        raise StepFailed(
            f"expected {what} within {within * 1000:.0f} ms{anchor}; "
            f"observed {fmt_labels(at_deadline or line.labels())} at the deadline{late}",
            CATEGORY_DEADLINE,
        )

    def _settle_links(self, devices: list[str]) -> None:
        """Before a miss is judged: a device whose pulse is overdue may have vanished,
        and then the plan is BROKEN ("device not responding"), not FAILED. Wait, bounded
        by the device's silence bound, until its link is judged lost (``check_links``
        raises) or it is heard again (the miss stands)."""
        while True:
            doubts = [
                t
                for t in (self.bench.get(name).link_doubt_until() for name in set(devices))
                if t is not None
            ]
            if not doubts or time.time() > max(doubts) + GRACE_S:
                self.check_links()
                return
            self.check_links()
            time.sleep(POLL_S)

    def _stays(
        self, e: Expectation, condition: Condition, t0: float, duration: float, rec: StepRecord
    ) -> Any:
        line = Timeline(self.bench, e.signals, t0)
        end = t0 + duration

        def violated(state: State, when: str) -> StepFailed:
            rec.observed["violation_t"] = state.t
            return StepFailed(
                f"expected {e.describe(condition)}; {when} observed {fmt_labels(line.labels())}",
                CATEGORY_CONDITION,
                {"last": line.labels()},
            )

        while True:
            for state in line.advance():
                if None in state.values:
                    continue  # not every signal seen yet; judged once all are
                if state.t <= end and not line.all_hold(condition, state):
                    raise violated(state, f"at +{(state.t - t0) * 1000:.0f} ms")
            if time.time() >= end:
                break
            self.check_links()
            time.sleep(min(0.02, max(0.0, end - time.time())))
        for ref in e.signals:  # one fresh observation at the end of the window
            self.bench.get(ref.device).read(ref.name)
        for state in line.advance():
            judged = None not in state.values and state.t <= end + GRACE_S
            if judged and not line.all_hold(condition, state):
                raise violated(state, "at the end")
        unseen = [ref.text for ref, v in zip(e.signals, line.current, strict=True) if v is None]
        if unseen:
            raise StepFailed(
                f"no observation of {', '.join(unseen)} during the window", CATEGORY_CONDITION
            )
        rec.observed["last"] = line.labels()
        rec.observed["observations"] = line.count
        return line.current[0]

    # --- measure --------------------------------------------------------------------
