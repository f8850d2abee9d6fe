"""The Allure view of a plan run (only this module and the plugin touch allure).

Steps are opened and closed live as the runner reports them, so their
timings are real and a step that crashes is still in the report.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import allure
from allure_commons._allure import StepContext
from allure_commons.types import AttachmentType

from hil.plan.resolved import ResolvedStep
from hil.report.record import PlanRecord, Status, StepRecord
from hil.secrets import redact

log = logging.getLogger(__name__)

_SEVERITY = {
    "blocker": allure.severity_level.BLOCKER,
    "critical": allure.severity_level.CRITICAL,
    "normal": allure.severity_level.NORMAL,
    "minor": allure.severity_level.MINOR,
    "trivial": allure.severity_level.TRIVIAL,
}

_ATTACHMENT_TYPES = {
    ".asc": AttachmentType.TEXT,
    ".jsonl": AttachmentType.TEXT,
    ".json": AttachmentType.JSON,
    ".csv": AttachmentType.CSV,
    ".png": AttachmentType.PNG,
    ".txt": AttachmentType.TEXT,
}


class _Failed(AssertionError):
    """Marks an Allure step as failed, carrying the step's message."""


class _Broken(RuntimeError):
    """Marks an Allure step as broken."""


class AllureObserver:
    """Mirrors the runner's steps into the current Allure test."""

    def __init__(self) -> None:
        self._open: dict[int, StepContext] = {}

    def step_started(self, step: ResolvedStep, record: StepRecord) -> None:
        params = {k: redact(_text(v)) for k, v in record.parameters.items()}
        if step.line is not None:
            params["plan line"] = str(step.line)
        title = redact(f"[{step.section}] {step.title}")
        # live progress for the lab (pytest --log-cli-level=INFO shows it as it happens)
        log.info("step started: %s (plan line %s)", title, step.line)
        ctx = StepContext(title, params)
        ctx.__enter__()
        self._open[id(record)] = ctx

    def step_finished(self, step: ResolvedStep, record: StepRecord) -> None:
        ctx = self._open.pop(id(record), None)
        if ctx is None:
            return
        if record.measurement is not None:
            m = record.measurement
            allure.attach(
                redact(_measurement_table(record)),
                name=f"measurement {m.name}",
                attachment_type=AttachmentType.CSV,
            )
        observed = {k: v for k, v in record.observed.items() if k != "category"}
        if observed or record.message:
            allure.attach(
                redact(json.dumps({"message": record.message, **observed}, indent=1, default=str)),
                name="observed",
                attachment_type=AttachmentType.JSON,
            )
        if record.status is Status.FAILED:
            err: BaseException | None = _Failed(redact(record.message))
        elif record.status is Status.BROKEN:
            err = _Broken(redact(record.message))
        else:
            err = None
        ctx.__exit__(type(err) if err else None, err, None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _measurement_table(record: StepRecord) -> str:
    m = record.measurement
    assert m is not None
    lim = m.limits
    rows = [
        "quantity,method,statistic,value,unit,u95,min,max,marginal_min,marginal_max,"
        "outcome,samples,decision_rule",
        ",".join(
            str(x if x is not None else "")
            for x in (
                m.name,
                m.method,
                m.statistic,
                f"{m.value:.6g}",
                m.unit,
                f"{m.uncertainty:.3g}" if m.uncertainty is not None else "",
                lim.get("min"),
                lim.get("max"),
                lim.get("marginal_min"),
                lim.get("marginal_max"),
                m.outcome,
                len(m.samples),
                f'"{m.decision_rule}"' if m.decision_rule else "",
            )
        ),
    ]
    return "\n".join(rows) + "\n"


def label_plan(record: PlanRecord, requirement_url: str, description: str) -> None:
    """Labels and links of the current Allure test, from the plan's metadata."""
    allure.dynamic.title(redact(f"{record.plan_id}{record.instance}: {record.title}"))
    if description:
        allure.dynamic.description(redact(description))
    allure.dynamic.severity(_SEVERITY[record.severity])
    area = Path(record.file).parent.name
    allure.dynamic.epic(epic(area, record.tags))
    allure.dynamic.feature(area)
    allure.dynamic.story(record.plan_id)
    for tag in record.tags:
        allure.dynamic.tag(tag)
    if record.owner:
        allure.dynamic.label("owner", record.owner)
    for name, value in record.parameters.items():
        allure.dynamic.parameter(name, redact(str(value)))
    for req in record.requirements:
        allure.dynamic.link(requirement_url.format(id=req), link_type="requirement", name=req)
    allure.dynamic.parameter("bench", record.bench_id)
    for device, defects in sorted(record.defects.items()):
        allure.dynamic.parameter(f"defects[{device}]", ",".join(defects))


def epic(area: str, tags: list[str]) -> str:
    """Car / Home / Person × Car × Home / Energy, from the plan's folder and tags."""
    if area == "energy":
        return "Energy"
    if area == "interop" or {"car", "home"} <= set(tags):
        return "Person × Car × Home"
    if "car" in tags:
        return "Car"
    if "home" in tags:
        return "Home"
    return area.capitalize() or "Plans"


def attach_evidence(record: PlanRecord) -> None:
    """The captures (CAN .asc, serial and SCPI transcripts) and the plan record itself."""
    for name in record.evidence:
        path = Path(name)
        if path.is_file():
            allure.attach.file(
                str(path),
                name=path.name,
                attachment_type=_ATTACHMENT_TYPES.get(path.suffix, AttachmentType.TEXT),
            )
    if record.answers:
        allure.attach(
            redact(json.dumps(record.answers, indent=1, default=str)),
            name="operator prompt answers",
            attachment_type=AttachmentType.JSON,
        )
    allure.attach(
        redact(json.dumps(record.to_json(), indent=1, default=str)),
        name="hil plan record",
        attachment_type=AttachmentType.JSON,
    )
