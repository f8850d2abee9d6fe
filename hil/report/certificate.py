"""Build the certificate from the run record: results, traceability, tool confidence, verdict.

Everything here is computed from the plan records that the runs wrote (the
single source of truth), the bench file, and the declared requirements; the
certificate never re-judges a plan.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hil
from hil.bench.loader import LoadedBench
from hil.report.certificate_model import (
    Authorisation,
    BenchInfo,
    Canary,
    Certificate,
    Item,
    Lab,
    Measured,
    Method,
    OverallVerdict,
    Result,
    TraceRow,
)
from hil.report.requirements import Requirement

RULE_EXPECT = (
    "PASS when every expectation holds within its bound, judged on the capture timestamps of "
    "the frames and lines observed, and no invariant is violated on any observation"
)
RULE_MEASURE = (
    "PASS when the reduced measurement is within its limit (a value in the marginal band "
    "passes and is flagged); where an expanded uncertainty U95 is stated, PASS when "
    "value + U95 <= upper limit (and value - U95 >= lower limit)"
)
INVALID_STATUS = "invalid"  # measurement conditions outside the method: neither pass nor fail


@dataclass(frozen=True)
class CanaryExpectation:
    """A defect injected on purpose and the plan (and step) that must catch it."""

    plan_id: str
    defects: tuple[str, ...]
    step: str
    status: str = "failed"  # what the run must report: failed, or invalid for a validity gate
    time_scale: float | None = None  # the canary's own time scale, when not the bench's


@dataclass(frozen=True)
class Signing:
    authorised_by: str
    role: str
    signature: str


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else ""


def latest(records: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """One record per plan instance: the newest run wins (records come oldest first)."""
    out: dict[str, Mapping[str, Any]] = {}
    for rec in sorted(records, key=lambda r: r.get("started", 0.0)):
        out[rec["plan_id"] + rec.get("instance", "")] = rec
    return out


def _steps(steps: Sequence[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for step in steps:
        yield step
        yield from _steps(step.get("children", []))


def _measured(rec: Mapping[str, Any]) -> list[Measured]:
    out: list[Measured] = []
    for step in _steps(rec.get("steps", [])):
        m = step.get("measurement")
        if m:
            u95 = m.get("uncertainty", m.get("u95"))
            value = m["value"]
            if isinstance(value, float) and not math.isfinite(value):
                value = None  # an invalid run has no value; JSON has no NaN
            out.append(
                Measured(
                    step=step["id"],
                    quantity=f"{m['name']} ({m['statistic']})",
                    value=value,
                    unit=m.get("unit"),
                    limit=m.get("limit", ""),
                    outcome=m.get("outcome", ""),
                    uncertainty=float(u95)
                    if isinstance(u95, int | float) and math.isfinite(u95)
                    else None,
                )
            )
        observed = step.get("observed", {})
        if "latency_s" in observed:
            out.append(
                Measured(
                    step=step["id"],
                    quantity="latency",
                    value=observed["latency_s"],
                    unit="s",
                    limit=str(observed.get("bound", "")),
                    outcome=step.get("status", ""),
                )
            )
    return out


def _relative(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(path).name


def _result(rec: Mapping[str, Any], root: Path) -> Result:
    measured = _measured(rec)
    rules = [
        s["measurement"].get("decision_rule")
        for s in _steps(rec.get("steps", []))
        if s.get("measurement")
    ]
    stated = next((r for r in rules if r), None)
    rule = stated or (RULE_MEASURE if rules else RULE_EXPECT)
    return Result(
        plan_id=rec["plan_id"],
        instance=rec.get("instance", ""),
        title=rec["title"],
        status=rec["status"],
        category=rec.get("category", ""),
        reason=rec.get("reason", ""),
        started=iso(rec.get("started", 0.0)),
        ended=iso(rec.get("ended", 0.0)),
        requirements=list(rec.get("requirements", [])),
        decision_rule=rule,
        measured=measured,
        evidence=[_relative(p, root) for p in rec.get("evidence", [])],
        defects=sorted(f"{dev}:{d}" for dev, ds in rec.get("defects", {}).items() for d in ds),
    )


def _conformity(results: Sequence[Result]) -> str:
    statuses = {r.status for r in results}
    if not results:
        return "NOT COVERED"
    if "failed" in statuses:
        return "DOES NOT CONFORM"
    if INVALID_STATUS in statuses:
        return "INVALID"
    if statuses != {"passed"}:
        return "INCONCLUSIVE"
    return "CONFORMS"


def _key_value(m: Measured) -> str:
    unit = f" {m.unit}" if m.unit else ""
    u95 = f" ± {m.uncertainty:g}{unit} (U95)" if m.uncertainty is not None else ""
    value = f"{m.value:g}" if isinstance(m.value, float) else str(m.value)
    limit = f" [{m.limit}]" if m.limit else ""
    return f"{m.step}: {m.quantity} = {value}{unit}{u95}{limit}"


def traceability(
    requirements: Sequence[Requirement], results: Sequence[Result]
) -> tuple[list[TraceRow], list[str]]:
    """Rows per declared requirement, and the plans that trace to none of them."""
    rows: list[TraceRow] = []
    declared = {r.id for r in requirements}
    for req in requirements:
        mine = [r for r in results if req.id in r.requirements]
        rows.append(
            TraceRow(
                requirement=req.id,
                title=req.title,
                classification=req.classification,
                plans=[f"{r.plan_id}{r.instance} ({r.status})" for r in mine],
                conformity=_conformity(mine),  # type: ignore[arg-type]
                key_values=[_key_value(m) for r in mine for m in r.measured][:12],
                evidence=sorted({e for r in mine for e in r.evidence}),
            )
        )
    orphans = sorted(
        {
            r.plan_id + (f" (names undeclared {', '.join(r.requirements)})" * bool(r.requirements))
            for r in results
            if not declared.intersection(r.requirements)
        }
    )
    return rows, orphans


def canaries(
    expected: Sequence[CanaryExpectation], records: Iterable[Mapping[str, Any]]
) -> list[Canary]:
    """Each expected canary with what its run reported; a missing run is not caught."""
    runs: dict[tuple[str, tuple[str, ...]], Mapping[str, Any]] = {}
    for run in sorted(records, key=lambda r: r.get("started", 0.0)):
        injected = tuple(
            sorted(f"{dev}:{d}" for dev, ds in run.get("defects", {}).items() for d in ds)
        )
        runs[(run["plan_id"], injected)] = run
    out: list[Canary] = []
    for exp in expected:
        rec = runs.get((exp.plan_id, tuple(sorted(exp.defects))))
        failed = (
            [s["id"] for s in _steps(rec.get("steps", [])) if s.get("status") == exp.status]
            if rec
            else []
        )
        status = rec["status"] if rec else "not run"
        caught = status == exp.status and exp.step in failed
        out.append(
            Canary(
                plan_id=exp.plan_id,
                defects=list(exp.defects),
                expected_step=exp.step,
                expected_status=exp.status,
                status=status,
                failed_step=", ".join(failed),
                caught=caught,
                reason=(rec or {}).get("reason", "the canary run is missing from the result set"),
            )
        )
    return out


def verdict(
    results: Sequence[Result],
    rows: Sequence[TraceRow],
    checks: Sequence[Canary],
    missing: Sequence[str],
) -> OverallVerdict:
    failed = [r for r in results if r.status == "failed"]
    if failed:
        reqs = sorted({q for r in failed for q in r.requirements}) or ["(no requirement)"]
        plans = ", ".join(f"{r.plan_id}{r.instance}" for r in failed)
        return OverallVerdict(
            value="NOT CERTIFIED",
            reason=f"requirement(s) {', '.join(reqs)} not met: plan(s) {plans} failed",
        )
    invalid = [r for r in results if r.status == INVALID_STATUS]
    if invalid:
        plans = ", ".join(f"{r.plan_id}{r.instance}" for r in invalid)
        return OverallVerdict(
            value="INVALID", reason=f"measurement conditions outside the method in {plans}"
        )
    gaps: list[str] = []
    if not results:
        gaps.append("no plan results in the result set")
    gaps += [f"{m} has no result (not run, or the run was cut short)" for m in missing]
    gaps += [f"{row.requirement} is not covered by any plan" for row in rows if not row.plans]
    gaps += [f"{r.plan_id}{r.instance} is {r.status}" for r in results if r.status != "passed"]
    if not checks:
        gaps.append("no canary runs: the tool's ability to catch defects is not shown")
    gaps += [
        f"canary {c.plan_id} with {', '.join(c.defects)} was not caught ({c.status})"
        for c in checks
        if not c.caught
    ]
    if gaps:
        return OverallVerdict(value="INCOMPLETE", reason="; ".join(gaps))
    return OverallVerdict(
        value="CERTIFIED",
        reason=f"all {len(results)} results passed, every requirement is covered and "
        f"conforms, and all {len(checks)} canaries were caught",
    )


def _items(bench: LoadedBench, records: Iterable[Mapping[str, Any]]) -> list[Item]:
    identities: dict[str, dict[str, str]] = {}
    for rec in records:
        for name, ident in rec.get("identities", {}).items():
            if ident and ("error" not in ident or name not in identities):
                identities[name] = dict(ident)
    items = []
    for name, definition in sorted(bench.definitions().items()):
        dev = bench.config.devices[name]
        items.append(
            Item(
                device=name,
                type=dev.type,
                emulated=dev.emulated,
                identity=identities.get(name, {}),
                definition_sha256={
                    Path(p).name: hashlib.sha256(Path(p).read_bytes()).hexdigest()
                    for p in definition.files
                },
            )
        )
    return items


def _methods(records: Iterable[Mapping[str, Any]], root: Path) -> list[Method]:
    by_plan: dict[str, Method] = {}
    for rec in records:
        method = by_plan.setdefault(
            rec["plan_id"],
            Method(
                plan_id=rec["plan_id"],
                title=rec["title"],
                version=str(rec.get("version", "")),
                file=Path(rec["file"]).name,
                sha256=rec.get("file_sha256", ""),
                instances=[],
            ),
        )
        method.instances.append(rec.get("instance", "") or "(single)")
    return [by_plan[k] for k in sorted(by_plan)]


def _deviations(bench: LoadedBench, results: Sequence[Result]) -> list[str]:
    out = []
    scale = bench.config.time_scale
    if scale != 1:
        out.append(
            f"waits and measurement durations ran at {scale:g} x real time on this bench "
            "(the plans' numbers are unchanged; deadlines were never scaled)"
        )
    for plan, params in sorted(bench.config.parameters.items()):
        values = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
        out.append(f"plan parameters set by the bench for {plan}: {values}")
    if any(r.defects for r in results):
        out.append(
            "DEFECTS WERE INJECTED into emulators for this run (a tool check, not a product "
            "test): " + "; ".join(sorted({d for r in results for d in r.defects}))
        )
    emulated = sorted(n for n, d in bench.config.devices.items() if d.emulated)
    if emulated:
        out.append(f"emulated devices (not the physical product): {', '.join(emulated)}")
    out += [
        f"{r.plan_id}{r.instance} skipped: {r.reason}" for r in results if r.status == "skipped"
    ]
    return out


def _environment(records: Iterable[Mapping[str, Any]], bench: LoadedBench) -> list[str]:
    out = []
    for rec in records:
        for step in _steps(rec.get("steps", [])):
            conditions = (step.get("measurement") or {}).get("conditions")
            if isinstance(conditions, Mapping) and conditions:
                text = ", ".join(f"{k} {v}" for k, v in conditions.items())
                out.append(f"{rec['plan_id']}{rec.get('instance', '')} {step['id']}: {text}")
    if not out:
        out.append("no environmental conditions were measured in this result set")
    if all(d.emulated for d in bench.config.devices.values()):
        out.append("all devices emulated: ambient conditions do not affect the results")
    return out


def build(
    *,
    bench: LoadedBench,
    records: Sequence[Mapping[str, Any]],
    canary_records: Sequence[Mapping[str, Any]],
    expected_canaries: Sequence[CanaryExpectation],
    requirements: Sequence[Requirement],
    root: Path,
    signing: Signing,
    customer: str = "",
    expected_plans: Sequence[str] = (),
    git_commit: str = "unknown",
    now: float | None = None,
) -> Certificate:
    """The certificate of one result set (``root``: the directory the files live in)."""
    issued = time.time() if now is None else now
    runs = latest(records)
    results = [_result(runs[k], root) for k in sorted(runs)]
    rows, orphans = traceability(requirements, results)
    checks = canaries(expected_canaries, canary_records)
    missing = [p for p in expected_plans if p not in runs]
    digest = hashlib.sha256("".join(sorted(runs)).encode() + str(issued).encode()).hexdigest()
    starts = [r.get("started", 0.0) for r in runs.values()]
    lab = bench.config.lab
    return Certificate(
        report_id=f"HIL-{bench.id}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(issued))}-"
        f"{digest[:6].upper()}",
        title=f"Certification test report — {bench.config.name or bench.id}",
        issued=iso(issued),
        lab=Lab(
            name=lab.name if lab else "",
            location=lab.location if lab else "",
            operator=lab.operator if lab else "",
        ),
        bench=BenchInfo(
            id=bench.id,
            name=bench.config.name,
            file=bench.path.name,
            sha256=bench.sha256,
            time_scale=bench.config.time_scale,
        ),
        customer=customer,
        items=_items(bench, runs.values()),
        methods=_methods(runs.values(), root),
        test_dates={"first": iso(min(starts, default=0.0)), "last": iso(max(starts, default=0.0))},
        results=results,
        deviations=_deviations(bench, results),
        environment=_environment(runs.values(), bench),
        decision_rules={"expectation": RULE_EXPECT, "measurement": RULE_MEASURE},
        traceability=rows,
        plans_without_requirements=orphans,
        canaries=checks,
        verdict=verdict(results, rows, checks, missing),
        authorisation=Authorisation(
            authorised_by=signing.authorised_by,
            role=signing.role,
            date=iso(issued),
            signature=signing.signature,
        ),
        hil_version=hil.__version__,
        git_commit=git_commit,
    )
