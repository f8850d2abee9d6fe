"""The interlock for hand-written tests: a test (or a fixture it uses) that fails or
errors while it holds the bench leaves the bench safe before the next test runs.

Plan items make the bench safe themselves (items.py), with the outcome in their
record; here the outcome goes into the test's report as a section of its own.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from hil.pytest_plugin.items import PlanItem
from hil.pytest_plugin.session import hil_session
from hil.safety.interlock import drive_safe


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.failed or isinstance(item, PlanItem):
        return
    if "bench" not in getattr(item, "fixturenames", ()):
        return  # the test never had the bench: nothing it did can have left it unsafe
    bench = hil_session(item.config).bench
    if bench is None:
        return
    done = drive_safe(bench, f"test {item.nodeid}: {report.when} failed")
    report.sections.append(("hil interlock", done.summary()))
