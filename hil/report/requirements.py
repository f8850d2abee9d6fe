"""The requirements a certification covers (``testplans/requirements.yaml``).

Traceability runs both ways: every requirement declared here must be verified
by at least one plan (else it is NOT COVERED and the certificate is
INCOMPLETE), and plans that name no declared requirement are listed too.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from hil.errors import ConfigError
from hil.yamlio import check_spec, load_file, validate

SUPPORTED_SPEC = 1
REQUIREMENT_ID = r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$"


class Requirement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=REQUIREMENT_ID, description="e.g. REQ-CAR-LOCK-001")
    title: str
    asil: str | None = Field(default=None, pattern=r"^(QM|A|B|C|D)$")
    safety_class: str | None = None
    source: str = Field(
        default="", description="where it comes from: a standard, a regulation, a spec"
    )

    @property
    def classification(self) -> str:
        if self.asil:
            return f"ASIL {self.asil}"
        return self.safety_class or ""


class RequirementsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    spec: int
    requirements: list[Requirement] = Field(min_length=1)


def load_requirements(path: Path) -> list[Requirement]:
    """Read and check ``path``; a duplicate id is an error at its line."""
    data, locs = load_file(path, ConfigError)
    check_spec(data, locs, SUPPORTED_SPEC, ConfigError, "requirements file")
    parsed = validate(RequirementsFile, data, locs, ConfigError)
    seen: dict[str, int] = {}
    for index, req in enumerate(parsed.requirements):
        if req.id in seen:
            raise locs.error(
                ConfigError,
                ("requirements", index, "id"),
                f"requirement {req.id!r} is declared twice (first as item {seen[req.id] + 1})",
            )
        seen[req.id] = index
    return list(parsed.requirements)
