"""Per-plan evidence beyond the raw captures: decoded signals and plots.

The raw captures (CAN ``.asc``, serial and SCPI transcripts) are what the
wire carried; a reviewer also wants the *decoded* values the verdict rests on
(``signals.csv``: every observation of every signal the plan names, with its
capture timestamp) and pictures where a person would rather look than read:
each timed expectation's signals with the stimulus and the deadline marked,
and each measurement's samples with their regression line and the limit.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hil import secrets
from hil.bench.bench import Bench
from hil.bench.driver import Sample
from hil.errors import HilError
from hil.plan.resolved import Expectation, ResolvedPlan, ResolvedStep
from hil.report.record import PlanRecord, StepRecord

log = logging.getLogger(__name__)
# per plan: every failed expectation, then the timed ones of the plan's own steps (not its
# setup), up to this many; a plot costs about 0.1 s, and a suite runs hundreds of plans
MAX_PLOTS = 4


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _samples(bench: Bench, plan: ResolvedPlan, since: float) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for text, ref in sorted(plan.signals.items()):
        driver = bench.drivers.get(ref.device)
        if driver is None:
            continue
        try:
            out[text] = [s for s in driver.samples(ref.name, since) if s.t >= since]
        except HilError as err:  # a lost device still leaves the other signals' evidence
            log.warning("evidence: %s: %s", text, err)
    return out


def write_signals_csv(path: Path, series: dict[str, list[Sample]], plan: ResolvedPlan) -> Path:
    rows = sorted((s.t, name, s.value) for name, samples in series.items() for s in samples)
    t0 = rows[0][0] if rows else 0.0
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["t_capture", "t_rel_s", "signal", "value", "label"])
        for t, name, value in rows:
            label = plan.signals[name].info.label(value)
            out.writerow([f"{t:.6f}", f"{t - t0:.6f}", name, value, label])
    return path


def _timed(steps: Sequence[StepRecord]) -> Iterable[StepRecord]:
    for step in steps:
        if step.kind == "expect":
            yield step
        yield from _timed(step.children)


def _worth_plotting(steps: Sequence[StepRecord]) -> list[StepRecord]:
    """Failed expectations first, then those of the plan's steps that met a deadline."""
    every = list(_timed(steps))
    failed = [s for s in every if s.status != "passed" and s.status != "skipped"]
    met = [s for s in every if s.section == "steps" and "latency_s" in s.observed]
    return (failed + [s for s in met if s not in failed])[:MAX_PLOTS]


def _figure() -> tuple[Figure, Any]:
    # the object API, without pyplot's global state: thread-safe and quicker
    fig = Figure(figsize=(7.5, 3.2), dpi=80)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def expectations(plan: ResolvedPlan) -> dict[str, Expectation]:
    """Step id → its resolved expectation (signals, bound, anchor)."""
    out: dict[str, Expectation] = {}
    stack: list[ResolvedStep] = [*plan.setup, *plan.steps, *plan.teardown]
    while stack:
        step = stack.pop()
        stack.extend(step.children)
        if isinstance(step.action, Expectation):
            out[step.id] = step.action
    return out


def plot_expectation(
    path: Path, step: StepRecord, series: dict[str, list[Sample]], expectation: Expectation
) -> Path | None:
    names = [ref.text for ref in expectation.signals]
    if expectation.after is not None:
        names.append(expectation.after.signal.text)
    names = [n for n in names if n in series]
    anchor = float(step.observed.get("anchor_t", step.started))
    bound = expectation.within if expectation.within is not None else expectation.stays_for
    end = max(step.ended, anchor + (bound or 0.0))
    lo, hi = anchor - 1.0, end + 0.5
    fig, ax = _figure()
    drawn = False
    for name in names[:6]:
        points = [(s.t - anchor, _numeric(s.value)) for s in series[name] if lo <= s.t <= hi]
        xs = [p[0] for p in points if p[1] is not None]
        ys = [p[1] for p in points if p[1] is not None]
        if xs:
            ax.step(xs, ys, where="post", label=name)
            drawn = True
    if not drawn:
        return None
    what = "anchor: " + expectation.after.describe() if expectation.after else "stimulus"
    ax.axvline(0.0, color="tab:green", linestyle="--", label=what)
    if bound is not None:
        kind = "deadline" if expectation.within is not None else "hold until"
        ax.axvline(bound, color="tab:red", label=f"{kind} {bound:g} s")
    latency = step.observed.get("latency_s")
    if isinstance(latency, int | float):
        ax.axvline(float(latency), color="tab:blue", linestyle=":", label=f"met at {latency:.3f} s")
    ax.set_xlabel("seconds from the stimulus (capture timestamps)")
    ax.set_title(f"{step.id}: {expectation.describe()} [{step.status}]", fontsize=8)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.15)
    fig.savefig(path, format="png")
    return path


def plot_measurement(path: Path, step: StepRecord, time_scale: float) -> Path | None:
    """Samples against plan time (wall time / the bench's time scale), fit and limits."""
    m = step.measurement
    if m is None or len(m.samples) < 2:
        return None
    t0 = m.samples[0][0]
    xs = [(t - t0) / time_scale for t, _ in m.samples]
    ys = [v for _, v in m.samples]
    fig, ax = _figure()
    ax.plot(xs, ys, ".", markersize=3, label=f"{m.name} samples")
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    if var > 0:
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var
        fit = [mean_y + slope * (x - mean_x) for x in xs]
        ax.plot(
            xs, fit, "-", color="tab:orange", label=f"regression ({slope * 3600:+.4g} {m.unit}/h)"
        )
    for key, style in (("max", "tab:red"), ("min", "tab:red"), ("marginal_max", "tab:olive")):
        limit = m.limits.get(key)
        if limit is not None:
            ax.axhline(limit, color=style, linestyle="--", label=f"{key} {limit:g} {m.unit or ''}")
    ax.set_xlabel(f"plan seconds (wall time / time scale {time_scale:g})")
    ax.set_ylabel(m.unit or "")
    ax.set_title(
        f"{step.id}: {m.statistic} = {m.value:.4g} {m.unit or ''} [{m.outcome}]", fontsize=9
    )
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.15)
    fig.savefig(path, format="png")
    return path


def _all(steps: Sequence[StepRecord]) -> Iterable[StepRecord]:
    for step in steps:
        yield step
        yield from _all(step.children)


def redact_folder(folder: Path) -> None:
    """Mask every known secret in the files of ``folder`` (rewritten only if one occurs)."""
    if not secrets.known():
        return
    for path in folder.iterdir():
        if path.is_file():
            data = path.read_bytes()
            masked = secrets.redact_bytes(data)
            if masked != data:
                path.write_bytes(masked)


def write_plan_evidence(
    bench: Bench, plan: ResolvedPlan, record: PlanRecord, folder: Path
) -> list[Path]:
    """``signals.csv`` and the plots of one finished plan; never raises for a plot."""
    folder.mkdir(parents=True, exist_ok=True)
    redact_folder(folder)  # the drivers' captures and transcripts, written just before
    series = _samples(bench, plan, record.started)
    written = [write_signals_csv(folder / "signals.csv", series, plan)]
    judged = expectations(plan)
    for step in _worth_plotting(record.steps):
        if step.id not in judged:
            continue
        try:
            made = plot_expectation(folder / f"plot-{step.id}.png", step, series, judged[step.id])
        except (ValueError, OverflowError) as err:
            log.warning("evidence: no plot for %s: %s", step.id, err)
            continue
        if made:
            written.append(made)
    for step in _all(record.steps):
        if step.measurement is not None:
            made = plot_measurement(
                folder / f"plot-{step.id}-measurement.png", step, record.time_scale
            )
            if made:
                written.append(made)
    return written
