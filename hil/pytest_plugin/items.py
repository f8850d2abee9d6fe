"""YAML plans collected as pytest items, with stable node ids (``file::PLAN-ID[matrix]``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.errors import HilError
from hil.plan.loader import PlanInstance, load_plan
from hil.plan.resolve import resolve_plan
from hil.plan.runner import PlanRunner
from hil.plan.tools import NOT_PLANS
from hil.pytest_plugin.session import hil_session
from hil.report.allure_writer import AllureObserver, attach_evidence, label_plan
from hil.report.record import Status, write_record
from hil.safety.interlock import drive_safe
from hil.secrets import redact


class PlanFailed(AssertionError):
    """The device did not meet the plan (Allure: failed)."""


class PlanInvalid(AssertionError):
    """Measured outside the method's conditions: no verdict on the device. pytest and Allure
    show it as failed, in the category "invalid measurement conditions"; the certificate
    says INVALID."""


class PlanBroken(RuntimeError):
    """The plan could not be judged: device lost, plan invalid for the bench (Allure: broken)."""


def is_plan_file(path: Path, roots: list[Path]) -> bool:
    if path.suffix not in (".yaml", ".yml") or path.name.startswith(("_", ".")):
        return False
    if path.name in NOT_PLANS:
        return False
    return any(root == path.parent or root in path.parents for root in roots)


class PlanFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        session = hil_session(self.config)
        loaded = load_plan(self.path)
        try:
            overrides = session.overrides(loaded.id)
        except HilError:
            overrides = {}  # the bench itself is broken: each item reports it when it runs
        for instance in loaded.instances(overrides):
            yield PlanItem.from_parent(self, name=instance.id, instance=instance)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, HilError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class PlanItem(pytest.Item):
    def __init__(self, *, instance: PlanInstance, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instance = instance
        for tag in instance.plan.tags:
            self.config.addinivalue_line("markers", f"{tag}: hil plan tag")
            self.add_marker(tag)

    def runtest(self) -> None:
        session = hil_session(self.config)
        bench = session.open_bench()
        resolved = resolve_plan(self.instance, bench.definitions, bench.loaded.capabilities())
        runner = PlanRunner(
            bench,
            observer=AllureObserver(),
            evidence_dir=session.evidence_dir,
            prompter=session.prompter(),
            timeout_s=bench.config.plan_timeout,
        )
        record = runner.run(resolved)
        if record.status in (Status.FAILED, Status.BROKEN) and not record.interlock:
            # an aborted plan may leave a heater on or a contactor closed: make all safe
            why = f"plan {record.plan_id}{record.instance} {record.status.value}"
            record.interlock = drive_safe(bench, why).to_json()
        if session.results_dir is not None:
            write_record(record, session.results_dir)
        label_plan(record, session.requirement_url, self.instance.plan.description)
        attach_evidence(record)
        if record.status is Status.SKIPPED:
            pytest.skip(redact(f"{record.plan_id}{record.instance}: {record.reason}"))
        # the category in brackets is what Allure's categories.json matches on
        category = f" [{record.category}]" if record.category else ""
        if record.status is Status.FAILED:
            raise PlanFailed(
                redact(f"{record.plan_id}{record.instance} FAILED{category}: {record.reason}")
            )
        if record.status is Status.BROKEN:
            raise PlanBroken(
                redact(f"{record.plan_id}{record.instance} BROKEN{category}: {record.reason}")
            )
        if record.status is Status.INVALID:
            raise PlanInvalid(
                redact(f"{record.plan_id}{record.instance} INVALID{category}: {record.reason}")
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, PlanFailed | PlanBroken | PlanInvalid | HilError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"plan {self.instance.id}: {self.instance.plan.title}"
