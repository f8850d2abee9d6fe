"""Executes a resolved plan on an open bench and fills a PlanRecord.

Setup, then steps until the first failure, then teardown (always, even after
a failure or Ctrl-C). Every wait is bounded; every verdict is judged on
capture timestamps.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from hil.bench.bench import Bench
from hil.errors import DeviceError, HilError
from hil.measure.limits import Outcome, reduce
from hil.plan.resolve import (
    Expectation,
    Measurement,
    Pause,
    ResolvedPlan,
    ResolvedStep,
    Stimulus,
)
from hil.plan.timeline import Timeline, all_hold, triggered
from hil.report.record import MeasurementRecord, PlanRecord, Status, StepRecord

GRACE_S = 0.2  # frames stamped before a deadline may still be in flight this long
LATE_WATCH_S = 1.5  # how long past a missed deadline to look for the late arrival
POLL_S = 0.005

CATEGORY_DEADLINE = "deadline missed"
CATEGORY_CONDITION = "expectation not met"
CATEGORY_LIMIT = "measurement out of limits"
CATEGORY_DEVICE = "device not responding"
CATEGORY_PLAN = "plan error"


class StepFailed(Exception):
    """The device did not do what the step expects (a verdict, not a crash)."""

    def __init__(self, message: str, category: str, observed: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.observed = observed or {}


class RunObserver(Protocol):
    """Sees each step as it runs (the Allure writer is one)."""

    def step_started(self, step: ResolvedStep, record: StepRecord) -> None: ...

    def step_finished(self, step: ResolvedStep, record: StepRecord) -> None: ...


class PlanRunner:
    def __init__(
        self,
        bench: Bench,
        *,
        observer: RunObserver | None = None,
        evidence_dir: Path | None = None,
    ) -> None:
        self.bench = bench
        self.observer = observer
        self.evidence_dir = evidence_dir
        self.scale = bench.time_scale

    def run(self, plan: ResolvedPlan) -> PlanRecord:
        meta = plan.loaded.plan
        bench = self.bench
        record = PlanRecord(
            plan_id=meta.id,
            title=meta.title,
            file=str(plan.loaded.path),
            file_sha256=plan.loaded.sha256,
            version=meta.version,
            requirements=list(meta.requirements),
            severity=meta.severity,
            tags=list(meta.tags),
            bench_id=bench.config.id,
            bench_sha256=bench.loaded.sha256,
            defects={n: list(d.defects) for n, d in bench.config.devices.items() if d.defects},
            time_scale=bench.time_scale,
            started=time.time(),
        )
        identities = bench.identities()
        record.identities = {n: identities.get(n, {}) for n in plan.devices}
        self._devices = plan.devices
        try:
            self._run_sections(record, (*plan.setup, *plan.steps))
        finally:
            # teardown always runs, and its own failures never hide the first one
            for step in plan.teardown:
                step_rec = self._run_step(step)
                record.steps.append(step_rec)
                if step_rec.status is not Status.PASSED and record.status is Status.PASSED:
                    record.status, record.reason = step_rec.status, f"teardown: {step_rec.message}"
            record.ended = time.time()
            if self.evidence_dir is not None:
                paths = bench.write_evidence(self.evidence_dir / meta.id, plan.devices)
                record.evidence = [str(p) for p in paths]
        return record

    def _run_sections(self, record: PlanRecord, steps: Iterable[ResolvedStep]) -> None:
        stopped = False
        for step in steps:
            if stopped:
                record.steps.append(self._skipped(step))
                continue
            step_rec = self._run_step(step)
            record.steps.append(step_rec)
            if step_rec.status is not Status.PASSED:
                record.status = step_rec.status
                record.reason = f"step {step.id} ({step.title}): {step_rec.message}"
                record.category = step_rec.observed.get("category", "")
                stopped = True

    def _skipped(self, step: ResolvedStep) -> StepRecord:
        return StepRecord(
            step.id,
            step.title,
            step.kind,
            step.section,
            step.line,
            Status.SKIPPED,
            "not run: an earlier step failed",
        )

    def _run_step(self, step: ResolvedStep) -> StepRecord:
        rec = StepRecord(
            step.id, step.title, step.kind, step.section, step.line, started=time.time()
        )
        rec.parameters = _parameters(step)
        if self.observer:
            self.observer.step_started(step, rec)
        try:
            self._execute(step, rec)
        except StepFailed as failed:
            rec.status, rec.message = Status.FAILED, failed.message
            rec.observed.update(failed.observed, category=failed.category)
        except DeviceError as err:
            rec.status, rec.message = Status.BROKEN, str(err)
            rec.observed["category"] = CATEGORY_DEVICE
        except HilError as err:
            rec.status, rec.message = Status.BROKEN, str(err)
            rec.observed["category"] = CATEGORY_PLAN
        except KeyboardInterrupt:
            rec.status, rec.message = Status.BROKEN, "interrupted by the operator (Ctrl-C)"
            rec.ended = time.time()
            if self.observer:
                self.observer.step_finished(step, rec)
            raise
        rec.ended = time.time()
        if self.observer:
            self.observer.step_finished(step, rec)
        return rec

    def _execute(self, step: ResolvedStep, rec: StepRecord) -> None:
        action = step.action
        if isinstance(action, Stimulus):
            rec.observed["t"] = self.bench.stimulate(action.device, action.stimulus, action.values)
        elif isinstance(action, Expectation):
            self._expect(action, rec)
        elif isinstance(action, Measurement):
            self._measure(action, rec)
        else:
            assert isinstance(action, Pause)
            self._sleep(action.duration * self.scale)

    # --- waiting, always bounded --------------------------------------------------

    def _check_links(self) -> None:
        for name in self._devices:
            self.bench.get(name).check_link()

    def _sleep(self, seconds: float) -> None:
        end = time.time() + seconds
        while (left := end - time.time()) > 0:
            self._check_links()
            time.sleep(min(left, 0.05))

    # --- expect ---------------------------------------------------------------------

    def _expect(self, e: Expectation, rec: StepRecord) -> None:
        t0 = time.time()
        ta = self._await_anchor(e, t0, rec) if e.after else t0
        if e.stays_for is not None:
            self._stays(e, t0, e.stays_for, rec)
        else:
            assert e.within is not None
            self._within(e, ta, e.within, rec)

    def _await_anchor(self, e: Expectation, t0: float, rec: StepRecord) -> float:
        trig = e.after
        assert trig is not None
        line = Timeline(self.bench, [trig.signal], t0)
        previous: Any = None
        end = t0 + trig.timeout
        while True:
            for state in line.advance():
                value = state.values[0]
                if state.t >= t0 and triggered(trig, previous, value):
                    rec.observed["anchor_t"] = state.t
                    rec.observed["anchor"] = trig.describe()
                    return state.t
                previous = value
            if time.time() > end + GRACE_S:
                raise StepFailed(
                    f"the anchor never happened: waited {trig.timeout:g} s for "
                    f"{trig.describe()}; last seen {line.labels()}",
                    CATEGORY_CONDITION,
                    {"last": line.labels()},
                )
            self._check_links()
            time.sleep(POLL_S)

    def _within(self, e: Expectation, ta: float, within: float, rec: StepRecord) -> None:
        line = Timeline(self.bench, e.signals, ta)
        deadline = ta + within
        # after a miss, keep watching a little longer so the report can say how
        # late the device was, not only that it was late
        give_up = deadline + GRACE_S + min(max(within, LATE_WATCH_S), 5.0)
        hit: float | None = None
        at_deadline: dict[str, str] | None = None
        while hit is None:
            for state in line.advance():
                if at_deadline is None and state.t > deadline:
                    at_deadline = line.labels()
                if all_hold(e.condition, state):
                    hit = state.t
                    break
            if hit is None:
                now = time.time()
                if now > deadline + GRACE_S and at_deadline is None:
                    at_deadline = line.labels()
                if now > give_up:
                    break
                self._check_links()
                time.sleep(POLL_S)
        rec.observed["last"] = at_deadline or line.labels()
        if hit is not None and hit <= deadline:
            rec.observed["latency_s"] = round(hit - ta, 6)
            rec.message = f"met after {(hit - ta) * 1000:.0f} ms (bound {within * 1000:.0f} ms)"
            return
        anchor = f" after {e.after.describe()}" if e.after else ""
        late = f"; first met {(hit - ta) * 1000:.0f} ms after" if hit is not None else ""
        if hit is not None:
            rec.observed["latency_s"] = round(hit - ta, 6)
        raise StepFailed(
            f"expected {e.describe().split(' within ')[0]} within {within * 1000:.0f} ms{anchor}; "
            f"observed {_fmt(at_deadline or line.labels())} at the deadline{late}",
            CATEGORY_DEADLINE,
        )

    def _stays(self, e: Expectation, t0: float, duration: float, rec: StepRecord) -> None:
        line = Timeline(self.bench, e.signals, t0)
        end = t0 + duration
        while True:
            for state in line.advance():
                if state.t <= end and not all_hold(e.condition, state):
                    rec.observed["violation_t"] = state.t
                    raise StepFailed(
                        f"expected {e.describe()}; at +{(state.t - t0) * 1000:.0f} ms observed "
                        f"{_fmt(line.labels())}",
                        CATEGORY_CONDITION,
                        {"last": line.labels()},
                    )
            if time.time() >= end:
                break
            self._check_links()
            time.sleep(min(0.02, max(0.0, end - time.time())))
        for ref in e.signals:  # one fresh observation at the end of the window
            self.bench.get(ref.device).read(ref.name)
        for state in line.advance():
            if state.t <= end + GRACE_S and not all_hold(e.condition, state):
                raise StepFailed(
                    f"expected {e.describe()}; at the end observed {_fmt(line.labels())}",
                    CATEGORY_CONDITION,
                )
        unseen = [ref.text for ref, v in zip(e.signals, line.current, strict=True) if v is None]
        if unseen:
            raise StepFailed(
                f"no observation of {', '.join(unseen)} during the window", CATEGORY_CONDITION
            )
        rec.observed["last"] = line.labels()
        rec.observed["observations"] = line.count

    # --- measure --------------------------------------------------------------------

    def _measure(self, m: Measurement, rec: StepRecord) -> None:
        driver = self.bench.get(m.signal.device)
        if m.settle:
            self._sleep(m.settle * self.scale)
        n = max(1, round(m.duration / m.interval))
        interval = m.interval * self.scale
        samples: list[tuple[float, float]] = []
        next_t = time.time()
        for _ in range(n):
            wait = next_t - time.time()
            if wait > 0:
                self._sleep(wait)
            sample = driver.read(m.signal.name)
            samples.append((sample.t, float(sample.value)))
            next_t += interval
        value = reduce([v for _, v in samples], m.statistic)
        outcome = m.limit.evaluate(value)
        lim = m.limit
        rec.measurement = MeasurementRecord(
            name=m.signal.text,
            value=value,
            unit=lim.unit,
            statistic=m.statistic,
            limit=lim.describe(),
            limits={
                "min": lim.minimum,
                "max": lim.maximum,
                "marginal_min": lim.marginal_min,
                "marginal_max": lim.marginal_max,
            },
            outcome=outcome.value,
            samples=samples,
        )
        unit = f" {lim.unit}" if lim.unit else ""
        rec.message = (
            f"{m.statistic} {value:.4g}{unit} over {len(samples)} samples ({outcome.value})"
        )
        if outcome is Outcome.FAIL:
            raise StepFailed(
                f"{m.signal.text} {m.statistic} = {value:.4g}{unit}, outside {lim.describe()} "
                f"({len(samples)} samples)",
                CATEGORY_LIMIT,
            )


def _fmt(labels: dict[str, str]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in labels.items())


def _parameters(step: ResolvedStep) -> dict[str, Any]:
    a = step.action
    if isinstance(a, Stimulus):
        return {"device": a.device, "stimulus": a.stimulus, **a.values}
    if isinstance(a, Expectation):
        return {"expect": a.describe()}
    if isinstance(a, Measurement):
        return {
            "signal": a.signal.text,
            "duration_s": a.duration,
            "interval_s": a.interval,
            "limit": a.limit.describe(),
        }
    assert isinstance(a, Pause)
    return {"duration_s": a.duration}
