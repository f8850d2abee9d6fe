"""What the certificate states, as typed data (ISO/IEC 17025:2017 clause 7.8).

``certificate.json`` is exactly this model; ``certificate.schema.json`` is
its JSON Schema, and ``certificate.html`` is a rendering of the same object,
so the printable and the machine-readable forms can never disagree.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["CERTIFIED", "NOT CERTIFIED", "INCOMPLETE", "INVALID"]
Conformity = Literal["CONFORMS", "DOES NOT CONFORM", "NOT COVERED", "INCONCLUSIVE", "INVALID"]

STATEMENT = (
    "The results in this report relate only to the items tested, in the condition and "
    "configuration stated, on the bench and with the methods named here."
)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Lab(Model):
    name: str
    location: str
    operator: str


class BenchInfo(Model):
    id: str
    name: str
    file: str
    sha256: str
    time_scale: float = Field(description="wall seconds per plan second for waits/measurements")


class Item(Model):
    """One device tested or used, with the identity it reported."""

    device: str
    type: str
    emulated: bool
    identity: dict[str, str]
    definition_sha256: dict[str, str] = Field(description="definition file → SHA-256")


class Method(Model):
    plan_id: str
    title: str
    version: str
    file: str
    sha256: str
    instances: list[str]


class Measured(Model):
    """A key measured or observed value of a result."""

    step: str
    quantity: str
    value: float | str | bool | None
    unit: str | None = None
    limit: str = ""
    outcome: str = ""
    uncertainty: float | None = Field(
        default=None, description="expanded uncertainty U95, same unit"
    )


class Result(Model):
    plan_id: str
    instance: str
    title: str
    status: str
    category: str
    reason: str
    started: str
    ended: str
    requirements: list[str]
    decision_rule: str
    measured: list[Measured]
    evidence: list[str] = Field(description="files in the result set, relative to it")
    defects: list[str] = Field(
        default_factory=list, description="emulator defects injected into this run (DEVICE:DEFECT)"
    )


class TraceRow(Model):
    requirement: str
    title: str
    classification: str
    plans: list[str]
    conformity: Conformity
    key_values: list[str]
    evidence: list[str]


class Canary(Model):
    """A known-bad run (an injected emulator defect) the tool must report as FAIL."""

    plan_id: str
    defects: list[str]
    expected_step: str
    expected_status: str = Field(default="failed", description="failed, or invalid for a gate")
    status: str
    failed_step: str
    caught: bool
    reason: str


class Authorisation(Model):
    authorised_by: str
    role: str
    date: str
    signature: str = Field(description="how the result set is sealed and by which key")


class OverallVerdict(Model):
    value: Verdict
    reason: str


class Certificate(Model):
    format: Literal["hil-certificate/1"] = "hil-certificate/1"
    report_id: str
    title: str
    issued: str
    lab: Lab
    bench: BenchInfo
    customer: str
    statement: str = STATEMENT
    items: list[Item]
    methods: list[Method]
    test_dates: dict[str, str] = Field(description="first and last plan start, ISO 8601 UTC")
    results: list[Result]
    deviations: list[str]
    environment: list[str]
    decision_rules: dict[str, str]
    traceability: list[TraceRow]
    plans_without_requirements: list[str]
    canaries: list[Canary]
    verdict: OverallVerdict
    authorisation: Authorisation
    hil_version: str
    git_commit: str


def schema_text() -> str:
    schema = Certificate.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hil certificate"
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"
