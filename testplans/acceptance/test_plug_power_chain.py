"""A hand-written acceptance test: the same drivers as the plans, through fixtures.

What the YAML format does not say, Python can: here the chain from the plug's
relay through its own power report to the analyzer's independent reading.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from devices.ev.driver import EvDriver
from devices.power_analyzer.driver import PowerAnalyzerDriver
from devices.smart_plug.driver import SmartPlugDriver
from hil.bench.bench import Bench


def test_plug_power_reaches_the_analyzer(
    bench: Bench, smart_plug: SmartPlugDriver, power_analyzer: PowerAnalyzerDriver
) -> None:
    bench.stimulate("smart_plug", "load_current", {"value": 2.0})
    smart_plug.switch(True)
    try:
        assert smart_plug.is_on
        # 2 A at 230 V resistive: about 460 W, seen by both the plug and the analyzer
        watts = _settled_power(power_analyzer, lambda w: w > 400)
        assert 400 < watts < 520, watts
        assert abs(smart_plug.power_w - watts) < 0.1 * watts
    finally:
        smart_plug.switch(False)
        bench.stimulate("smart_plug", "load_current", {"value": 0.0})
    # relay open: the analyzer sees only the plug's own standby draw
    assert _settled_power(power_analyzer, lambda w: w < 1.0) < 1.0


def _settled_power(analyzer: PowerAnalyzerDriver, ok: Callable[[float], bool]) -> float:
    """Poll the analyzer (it updates at its own rate) until ``ok`` or 5 s pass."""
    deadline = time.monotonic() + 5.0
    watts = analyzer.measure_power()
    while not ok(watts) and time.monotonic() < deadline:
        time.sleep(0.05)
        watts = analyzer.measure_power()
    return watts


def test_car_reports_its_identity_and_is_parked(ev: EvDriver) -> None:
    identity = ev.identity()
    assert identity["model"] and identity["firmware"] and identity["serial"]
    ev.drive(0, gear="P")
    sample = ev.wait_for("DRIVE_Status.Gear", "P", 2.0)
    assert ev.gear == "P"
    assert sample.t > 0
