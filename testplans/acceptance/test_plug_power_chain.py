"""A hand-written acceptance test: the same drivers as the plans, through fixtures.

What the YAML format does not say, Python can: here the chain from the plug's
relay through its own power report to the analyzer's independent reading.
"""

from __future__ import annotations

import time

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
        deadline = time.monotonic() + 5.0
        watts = power_analyzer.measure_power()
        while watts < 400 and time.monotonic() < deadline:
            time.sleep(0.05)
            watts = power_analyzer.measure_power()
        assert 400 < watts < 520, watts
        assert abs(smart_plug.power_w - watts) < 0.1 * watts
    finally:
        smart_plug.switch(False)
        bench.stimulate("smart_plug", "load_current", {"value": 0.0})
    assert power_analyzer.measure_power() < 1.0


def test_car_reports_its_identity_and_is_parked(ev: EvDriver) -> None:
    identity = ev.identity()
    assert identity["model"] and identity["firmware"] and identity["serial"]
    ev.drive(0, gear="P")
    sample = ev.wait_for("DRIVE_Status.Gear", "P", 2.0)
    assert ev.gear == "P"
    assert sample.t > 0
