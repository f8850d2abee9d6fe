"""Allure for an exploration: its seed, profile and database as parameters, the
emitted reproducing plan and the run record as attachments."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import allure
from allure_commons.types import AttachmentType

if TYPE_CHECKING:
    from hil.explore.explorer import ExploreResult


def label_exploration(result: ExploreResult) -> None:
    allure.dynamic.parameter("profile", f"explore-{result.profile}")
    allure.dynamic.parameter("seed", str(result.seed))
    allure.dynamic.parameter("database", result.database)
    allure.dynamic.parameter("sequences", str(result.examples))
    allure.dynamic.tag("explored")  # type: ignore[no-untyped-call]
    allure.attach(
        json.dumps(asdict(result), indent=2),
        name="exploration record",
        attachment_type=AttachmentType.JSON,
    )
    if result.plan and Path(result.plan).is_file():
        allure.attach.file(  # type: ignore[no-untyped-call]
            result.plan, name="reproducing plan (YAML)", attachment_type=AttachmentType.YAML
        )
