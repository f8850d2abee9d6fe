"""Executes a resolved plan on an open bench and fills a PlanRecord.

Setup, then steps until the first failure, then teardown (always, even after
a failure or Ctrl-C). Every wait is bounded; every verdict is judged on
capture timestamps.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from hil.bench.bench import Bench
from hil.errors import DeviceError, DeviceLost, DeviceTimeout, HilError, ProtocolError
from hil.measure.limits import Outcome, reduce
from hil.plan.conditions import bind
from hil.plan.iec62301 import Iec62301Run
from hil.plan.judge import Judge
from hil.plan.prompts import Prompter, interpret
from hil.plan.resolved import (
    Block,
    Expectation,
    Measurement,
    Pause,
    Question,
    ResolvedPlan,
    ResolvedStep,
    Stimulus,
)
from hil.plan.verdicts import (
    CATEGORY_CONDITION,
    CATEGORY_DEADLINE,
    CATEGORY_DEVICE,
    CATEGORY_INVALID,
    CATEGORY_LIMIT,
    CATEGORY_OPERATOR,
    CATEGORY_PLAN,
    CATEGORY_SAFETY,
    CATEGORY_TIMEOUT,
    MeasurementInvalid,
    StepFailed,
)
from hil.plan.watch import InvariantWatch, Violation, write_violation_evidence
from hil.report.record import MeasurementRecord, PlanRecord, Status, StepRecord
from hil.safety.interlock import drive_safe
from hil.safety.watchdog import PlanTimedOut, PlanWatchdog


class _ChildFailed(Exception):
    def __init__(self, record: StepRecord) -> None:
        super().__init__(record.message)
        self.record = record


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
        prompter: Prompter | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self.bench = bench
        self.timeout_s = timeout_s  # the watchdog's default when a plan gives none
        self.observer = observer
        self.evidence_dir = evidence_dir
        self._folder: Path | None = None  # this plan's evidence folder, once running
        self.prompter = prompter
        self.scale = bench.time_scale
        self.saved: dict[str, Any] = {}
        self.params: dict[str, Any] = {}
        self._stimulus_t: float | None = None  # when the current step's stimulus went out
        self._previous_stimulus_t: float | None = None  # … and the step before's
        self._judge = Judge(bench, self._lookup, self._tick)
        self._violation: Violation | None = None  # the first, once seen: the plan has failed

    def run(self, plan: ResolvedPlan) -> PlanRecord:
        meta = plan.instance.plan
        bench = self.bench
        record = PlanRecord(
            plan_id=meta.id,
            title=meta.title,
            file=str(plan.instance.loaded.path),
            file_sha256=plan.instance.loaded.sha256,
            version=meta.version,
            requirements=[r.id for r in meta.requirements],
            severity=meta.severity,
            tags=list(meta.tags),
            bench_id=bench.config.id,
            bench_sha256=bench.loaded.sha256,
            defects={n: list(d.defects) for n, d in bench.config.devices.items() if d.defects},
            time_scale=bench.time_scale,
            started=time.time(),
            owner=meta.owner,
            instance=plan.instance.suffix,
            parameters=dict(plan.instance.values),
            requirement_classes={
                r.id: (f"ASIL {r.asil}" if r.asil else r.safety_class or "")
                for r in meta.requirements
                if r.asil or r.safety_class
            },
            invariants=[
                {"id": i.id, "name": i.name, "always": i.expr.source} for i in plan.invariants
            ],
        )
        if plan.skip is not None:
            record.status, record.reason, record.ended = Status.SKIPPED, plan.skip, time.time()
            return record
        try:
            back = bench.ensure_reachable(plan.devices)
        except DeviceError as err:  # lost in an earlier plan and not reconnected
            record.status, record.category = Status.BROKEN, CATEGORY_DEVICE
            record.reason = f"not run: {err}"
            record.lost = {"device": err.device, "lost_at": err.fields.get("at")}
            record.ended = time.time()
            return record
        if back:
            record.reconnected = back
        identities = bench.identities()
        record.identities = {n: identities.get(n, {}) for n in plan.devices}
        self._devices = plan.devices
        self._folder = (
            self.evidence_dir / (meta.id + plan.instance.suffix) if self.evidence_dir else None
        )
        self.params = dict(plan.instance.values)
        self.saved = {}
        self._record = record
        self._watch = InvariantWatch(bench, plan.invariants, record.started, self._lookup)
        self._violation = None
        timeout = meta.timeout if meta.timeout is not None else self.timeout_s
        label = meta.id + plan.instance.suffix
        self._watchdog = PlanWatchdog(label, timeout) if timeout is not None else None
        if timeout is not None:
            record.timeout_s = timeout
        try:
            self._run_guarded(plan, record)
        finally:
            record.ended = time.time()
            if self._folder is not None:
                written = [str(p) for p in bench.write_evidence(self._folder, plan.devices)]
                record.evidence = [*written, *_measurement_files(record.steps)]
                # imported here: plots pull in matplotlib, which every pytest start
                # with the plugin would otherwise pay for
                from hil.report.evidence import write_plan_evidence

                record.evidence += map(str, write_plan_evidence(bench, plan, record, self._folder))
        return record

    def _run_guarded(self, plan: ResolvedPlan, record: PlanRecord) -> None:
        """Setup and steps, then teardown (always), under the plan's watchdog."""
        with self._watchdog or contextlib.nullcontext():  # none: no timeout given
            try:
                failed = self._run_sequence(
                    record.steps, (*plan.setup, *plan.steps), stop_on_failure=True
                )
                if failed is not None:
                    self._fail_plan(record, failed, "")
            finally:
                if self._violation is not None:
                    # a safety violation: the bench is made safe before anything else runs
                    why = f"plan {record.plan_id}{record.instance}: safety violation"
                    record.interlock = drive_safe(self.bench, why).to_json()
                if self._watchdog is not None:
                    self._watchdog.extend_for_teardown()
                # teardown always runs, and its own failures never hide the first one
                failed = self._run_sequence(record.steps, plan.teardown, stop_on_failure=False)
                if failed is not None and record.status is Status.PASSED:
                    self._fail_plan(record, failed, "teardown: ")

    @staticmethod
    def _fail_plan(record: PlanRecord, step: StepRecord, where: str) -> None:
        record.status = step.status
        record.reason = f"{where}step {step.id} ({step.title}): {step.message}"
        record.category = step.observed.get("category", "")
        if "device" in step.observed:  # a device lost or not answering: which, and when
            record.lost = {k: step.observed[k] for k in ("device", "lost_at") if k in step.observed}

    def _run_sequence(
        self, into: list[StepRecord], steps: Iterable[ResolvedStep], *, stop_on_failure: bool
    ) -> StepRecord | None:
        """Run ``steps``, appending their records; returns the first that failed."""
        first: StepRecord | None = None
        for step in steps:
            if first is not None and stop_on_failure:
                into.append(self._skipped(step, "not run: an earlier step failed"))
                continue
            step_rec = self._run_step(step)
            into.append(step_rec)
            if step_rec.status in (Status.PASSED, Status.SKIPPED):
                self._check_invariants(step_rec)
            if step_rec.status not in (Status.PASSED, Status.SKIPPED) and first is None:
                first = step_rec
        return first

    def _check_invariants(self, rec: StepRecord) -> None:
        """Judge the invariants on everything observed since the last check."""
        try:
            self._watch_invariants()
        except StepFailed as failed:
            rec.status = Status.FAILED
            rec.message = failed.message
            rec.observed.update(failed.observed, category=failed.category)

    def _watch_invariants(self) -> None:
        """Raise the first violation since the last look, once (the plan has then failed)."""
        if self._violation is not None:
            return
        violation = self._watch.check()
        if violation is None:
            return
        self._violation = violation
        observed = dict(violation.observed)
        if self._folder is not None:
            path = write_violation_evidence(self.bench, violation, self._folder)
            observed["evidence"] = str(path)
        raise StepFailed(violation.message, CATEGORY_SAFETY, observed)

    def _skipped(self, step: ResolvedStep, why: str) -> StepRecord:
        return StepRecord(
            step.id, step.title, step.kind, step.section, step.line, Status.SKIPPED, why
        )

    def _lookup(self, name: str) -> Any:
        """What a ``${…}`` or an invariant sees: parameters, saved values, signals."""
        if name in self.saved:
            return self.saved[name]
        if name in self.params:
            return self.params[name]
        device, _, signal = name.partition(".")
        sample = self.bench.get(device).read(signal)
        info = self.bench.definitions[device].signals[signal]
        return info.label(sample.value) if info.choices else sample.value

    def _run_step(self, step: ResolvedStep) -> StepRecord:
        if step.skip is not None:
            return self._skipped(step, f"skipped: {step.skip}")
        rec = StepRecord(
            step.id, step.title, step.kind, step.section, step.line, started=time.time()
        )
        rec.parameters = _parameters(step)
        if self.observer:
            self.observer.step_started(step, rec)
        try:
            value = self._execute(step, rec)
            if step.save_as is not None:
                self.saved[step.save_as] = value
                rec.observed["saved"] = {step.save_as: value}
        except _ChildFailed as child:
            rec.status, rec.message = (
                child.record.status,
                f"{child.record.id}: {child.record.message}",
            )
            rec.observed["category"] = child.record.observed.get("category", "")
        except PlanTimedOut as out:
            rec.status, rec.message = Status.BROKEN, out.message
            rec.observed.update(category=CATEGORY_TIMEOUT, timeout_s=out.limit_s)
        except StepFailed as failed:
            invalid = isinstance(failed, MeasurementInvalid)
            rec.status = Status.INVALID if invalid else Status.FAILED
            rec.message = failed.message
            rec.observed.update(failed.observed, category=failed.category)
        except DeviceError as err:
            rec.status, rec.message = Status.BROKEN, str(err)
            rec.observed.update(category=CATEGORY_DEVICE, device=err.device)
            if isinstance(err, DeviceLost | DeviceTimeout):  # gone or mute, not a refusal
                rec.observed["lost_at"] = err.fields.get("at", time.time())
                self.bench.mark_lost(err.device, err)
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

    def _execute(self, step: ResolvedStep, rec: StepRecord) -> Any:
        """Run one step; returns the value ``save_as`` keeps (if the kind yields one)."""
        action = step.action
        self._previous_stimulus_t, self._stimulus_t = self._stimulus_t, None
        if isinstance(action, Stimulus):
            values = {k: bind(v, self._lookup) for k, v in action.values.items()}
            self._stimulus_t = time.time()
            if action.refused:
                return self._expect_refusal(action, values, rec)
            rec.observed["t"] = self.bench.stimulate(action.device, action.stimulus, values)
            return None
        if isinstance(action, Expectation):
            return self._judge.expect(action, rec, self._previous_stimulus_t)
        if isinstance(action, Measurement):
            return self._measure(action, rec)
        if isinstance(action, Question):
            return self._ask(step, action, rec)
        if isinstance(action, Block):
            failed = self._run_sequence(rec.children, step.children, stop_on_failure=True)
            if failed is not None:
                raise _ChildFailed(failed)
            return None
        assert isinstance(action, Pause)
        self._sleep(action.duration * (self.scale if action.scaled else 1.0))
        return None

    def _expect_refusal(self, s: Stimulus, values: dict[str, Any], rec: StepRecord) -> None:
        """The device must answer this command with an error (a protocol-level refusal)."""
        try:
            rec.observed["t"] = self.bench.stimulate(s.device, s.stimulus, values)
        except ProtocolError as err:  # the device answered, and said no
            rec.observed["refused"] = {"code": err.fields.get("code"), "answer": err.reason}
            rec.message = f"refused as required: {err.reason}"
            return
        raise StepFailed(
            f"{s.device}.{s.stimulus} was accepted; the device must refuse it",
            CATEGORY_CONDITION,
        )

    def _ask(self, step: ResolvedStep, q: Question, rec: StepRecord) -> Any:
        if self.prompter is None:
            raise StepFailed(
                "this plan asks the operator; run it interactively (-s) or give an answers "
                "file (--hil-answers FILE)",
                CATEGORY_OPERATOR,
            )
        try:  # whatever the prompter returns is read as the prompt's kind
            answer = interpret(q.prompt, self.prompter.ask(step.id, q.prompt), step.id)
        except ValueError as err:
            raise StepFailed(str(err), CATEGORY_OPERATOR) from None
        entry = {
            "step": step.id,
            "message": q.prompt.message,
            "kind": q.prompt.kind,
            "answer": answer,
            "t": time.time(),
        }
        self._record.answers.append(entry)
        rec.observed["answer"] = answer
        if q.expect is not None and answer != q.expect:
            raise StepFailed(
                f"operator answered {answer!r} to {q.prompt.message!r} (expected {q.expect!r})",
                CATEGORY_OPERATOR,
            )
        return answer

    # --- waiting, always bounded --------------------------------------------------

    def _tick(self) -> None:
        """What every poll of every wait checks: the plan's devices still answer, no
        invariant was violated by anything captured since the last look (so a violation
        fails the plan while it lasts, not after the step), and the watchdog."""
        for name in self._devices:
            self.bench.get(name).check_link()
        self._watch_invariants()
        if self._watchdog is not None:
            self._watchdog.check()

    def _sleep(self, seconds: float) -> None:
        end = time.time() + seconds
        while (left := end - time.time()) > 0:
            self._tick()
            time.sleep(min(left, 0.05))

    # --- expect ---------------------------------------------------------------------

    def _measure(self, m: Measurement, rec: StepRecord) -> float:
        if m.method == "iec62301":
            run = Iec62301Run(self.scale, self._sleep, self._folder)
            return run.run(m, rec, self.bench.get(m.signal.device))
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
        return value


def _measurement_files(steps: Iterable[StepRecord]) -> list[str]:
    """Raw-sample files the steps' measurements wrote (IEC 62301 CSV and JSON)."""
    out: list[str] = []
    for step in steps:
        if step.measurement is not None:
            out.extend(step.measurement.evidence)
        out.extend(_measurement_files(step.children))
    return out


def _parameters(step: ResolvedStep) -> dict[str, Any]:
    a = step.action
    if isinstance(a, Stimulus):
        return {"device": a.device, "stimulus": a.stimulus, **a.values}
    if isinstance(a, Expectation):
        return {"expect": a.describe()}
    if isinstance(a, Measurement):
        shown = {
            "signal": a.signal.text,
            "duration_s": a.duration,
            "interval_s": a.interval,
            "limit": a.limit.describe(),
        }
        if a.method != "sampling":
            shown.update(method=a.method, max_duration_s=a.max_duration, settle_s=a.settle)
        return shown
    if isinstance(a, Question):
        return {"kind": a.prompt.kind, "message": a.prompt.message}
    if isinstance(a, Block):
        return {"steps": len(step.children)}
    assert isinstance(a, Pause)
    return {"duration_s": a.duration}


# re-exported: tests and reports name the categories through the runner
__all__ = [
    "CATEGORY_CONDITION",
    "CATEGORY_DEADLINE",
    "CATEGORY_DEVICE",
    "CATEGORY_INVALID",
    "CATEGORY_LIMIT",
    "CATEGORY_OPERATOR",
    "CATEGORY_PLAN",
    "CATEGORY_SAFETY",
    "CATEGORY_TIMEOUT",
    "PlanRunner",
    "RunObserver",
    "StepFailed",
]
