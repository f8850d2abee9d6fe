"""The run record: every outcome lands here first; reports are views of it.

Each plan's record is written as one JSON file the moment the plan ends
(atomically: temp file + rename), so a crash loses nothing that finished.
"""

from __future__ import annotations

import copy
import enum
import json
import os
import tempfile
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from hil.secrets import redact


class Status(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # the device did not meet the plan
    BROKEN = "broken"  # the run could not judge (device lost, plan error)
    SKIPPED = "skipped"
    # neither passed nor failed: measurement conditions out of bounds (IEC 62301 supply,
    # instrument); category "invalid measurement conditions"
    INVALID = "invalid"


@dataclass
class MeasurementRecord:
    name: str
    value: float
    unit: str | None
    statistic: str
    limit: str
    limits: dict[str, float | None]
    outcome: str  # pass / marginal / fail, or "invalid" (conditions out of bounds)
    samples: list[tuple[float, float]] = field(default_factory=list)
    method: str = "sampling"  # or "iec62301"
    uncertainty: float | None = None  # U95, in the measurement's unit
    decision_rule: str = ""  # how the outcome follows from value, uncertainty and limit
    stability: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)  # criteria, and what broke them
    evidence: list[str] = field(default_factory=list)  # raw-sample files (CSV, JSON)


@dataclass
class StepRecord:
    id: str
    title: str
    kind: str
    section: str
    line: int | None
    status: Status = Status.PASSED
    message: str = ""
    started: float = 0.0
    ended: float = 0.0
    parameters: dict[str, Any] = field(default_factory=dict)
    observed: dict[str, Any] = field(default_factory=dict)
    measurement: MeasurementRecord | None = None
    children: list[StepRecord] = field(default_factory=list)


@dataclass
class PlanRecord:
    plan_id: str
    title: str
    file: str
    file_sha256: str
    version: str
    requirements: list[str]
    severity: str
    tags: list[str]
    bench_id: str
    bench_sha256: str
    defects: dict[str, list[str]]
    time_scale: float
    status: Status = Status.PASSED
    reason: str = ""
    category: str = ""
    started: float = 0.0
    ended: float = 0.0
    steps: list[StepRecord] = field(default_factory=list)
    identities: dict[str, dict[str, str]] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    owner: str = ""
    instance: str = ""  # matrix suffix, e.g. "[target_kmh=30]"
    parameters: dict[str, Any] = field(default_factory=dict)
    requirement_classes: dict[str, str] = field(default_factory=dict)  # id → ASIL / safety class
    answers: list[dict[str, Any]] = field(default_factory=list)  # operator prompts and answers
    invariants: list[dict[str, Any]] = field(default_factory=list)
    interlock: dict[str, Any] = field(default_factory=dict)  # what was made safe after an abort
    timeout_s: float | None = None  # the watchdog's limit for this plan (wall seconds)
    lost: dict[str, Any] = field(default_factory=dict)  # the device that stopped answering, when
    reconnected: list[str] = field(default_factory=list)  # reopened for it (lost + holders)

    def to_json(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(self)
        return plain


_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(obj: Any) -> Any:
    """``dataclasses.asdict`` without its deep copy of every leaf: the same result,
    several times faster on a record of a thousand steps (written after every plan)."""
    if obj is None or isinstance(obj, str | int | float):
        return obj  # immutable (a Status is a str): asdict would copy it for nothing
    names = _FIELDS.get(type(obj))
    if names is None and is_dataclass(obj) and not isinstance(obj, type):
        names = _FIELDS[type(obj)] = tuple(f.name for f in fields(obj))
    if names is not None:
        return {name: _plain(getattr(obj, name)) for name in names}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_plain(v) for v in obj)
    if isinstance(obj, dict):
        return {_plain(k): _plain(v) for k, v in obj.items()}
    return copy.deepcopy(obj)


def write_record(record: PlanRecord, directory: Path) -> Path:
    """Write ``record`` as ``<plan>-<start>.json`` atomically; returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = f"{record.started:.6f}".replace(".", "")
    safe = "".join(
        c if c.isalnum() or c in "-_.=," else "_" for c in record.plan_id + record.instance
    )
    path = directory / f"{safe}-{stamp}.json"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(redact(json.dumps(record.to_json(), indent=1, default=str)))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_records(directory: Path) -> list[dict[str, Any]]:
    """Every plan record in ``directory`` (oldest first); unreadable files are skipped."""
    out: list[dict[str, Any]] = []
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.json")):
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue
    out.sort(key=lambda r: r.get("started", 0.0))
    return out
