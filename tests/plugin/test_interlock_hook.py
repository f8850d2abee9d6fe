"""A hand-written test whose fixture breaks still leaves the bench safe (black-box)."""

from __future__ import annotations

import shutil
import textwrap

import pytest

from tests.conftest import PLANS

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestAssertRewriteWarning")

BENCH = """\
spec: 1
id: hook-bench
time_scale: 0.1
devices:
  smart_plug: {type: smart_plug, emulated: true, serial: {port: auto}}
  oven: {type: oven, emulated: true, serial: {port: auto}}
"""


def test_an_exception_in_a_fixture_drives_the_bench_safe(pytester: pytest.Pytester) -> None:
    shutil.copytree(PLANS, pytester.path / "testplans")
    pytester.makeconftest('pytest_plugins = ("fixtures.devices",)\n')
    pytester.makeini("[pytest]\nhil_plan_roots = testplans\n")
    (pytester.path / "bench.yaml").write_text(BENCH, encoding="utf-8")
    pytester.makepyfile(
        test_hand=textwrap.dedent(
            """\
            import time

            import pytest

            def relay(bench, wanted):
                # the relay state the plug reports, once it is the wanted one (5 s at most)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    value = bench.get("smart_plug").read("switch.on").value
                    if value is wanted:
                        return value
                    time.sleep(0.05)
                return value

            @pytest.fixture
            def plug_on(bench):
                bench.stimulate("smart_plug", "switch.on", {"value": True})
                assert relay(bench, True) is True
                raise RuntimeError("the fixture broke with the relay closed")

            def test_uses_it(plug_on):
                pass

            def test_then_the_relay_is_open(bench):
                assert relay(bench, False) is False
            """
        )
    )
    result = pytester.runpytest_subprocess(
        "test_hand.py", "--bench", "bench.yaml", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*hil interlock*",
            "*interlock (test test_hand.py::test_uses_it: setup failed): safe: oven, smart_plug*",
        ]
    )
