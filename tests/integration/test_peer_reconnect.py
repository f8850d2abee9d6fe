"""A lost peer is reconnected before the next plan on the devices it links with.

Faults are made on the real transport (an emulator closed mid-plan or between
plans) on the shipped emulated bench; see ``test_faults.py`` for faults met
within a plan.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from hil.errors import DeviceLost
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan
from hil.plan.runner import PlanRunner
from hil.report.record import PlanRecord, Status
from tests.conftest import EMULATED_BENCH, PLANS
from tests.integration.fault_bench import LONG_WAIT_S, assert_lost, plan_file, run_plan

# --- a lost peer is reconnected before the next plan on the devices it links with -----
#
# Each side of a link keeps state about the other: the hub counts the load an appliance
# last reported, the car reads the wallbox's side of the charging cable. A peer that died
# mid-plan leaves that state behind, so the next plan on the other side must find it
# reconnected (by its policy), not run beside the stale half of a dead link.


@pytest.fixture
def home_bench(tmp_path: Path) -> Iterator[Bench]:
    """The shipped emulated bench (car, wallbox, hub, appliances, phone), every device
    with a reconnect policy."""
    data = yaml.safe_load(EMULATED_BENCH.read_text(encoding="utf-8"))
    data.pop("answers", None)  # no plan here prompts
    for dev in data["devices"].values():
        dev["reconnect"] = {"attempts": 2, "interval": "200 ms"}
    path = tmp_path / "home.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with Bench(load_bench(path)) as bench:
        yield bench


def _run_shipped(bench: Bench, plan: Path, evidence: Path) -> PlanRecord:
    loaded = load_plan(plan)
    instance = loaded.instances(bench.loaded.parameter_overrides(loaded.id))[0]
    resolved = resolve_plan(instance, bench.definitions, bench.loaded.capabilities())
    return PlanRunner(bench, evidence_dir=evidence).run(resolved)


def _strike_once_seen(
    driver: Any, signal: str, seen: Callable[[Any], bool], fault: Callable[[], object]
) -> threading.Thread:
    """Strike ``fault`` as soon as ``signal`` shows ``seen`` on the capture (a bounded
    wait), so the fault lands in the state the next plan would inherit."""

    def strike() -> None:
        driver.wait_for(signal, seen, 10.0)
        fault()

    thread = threading.Thread(target=strike, daemon=True)
    thread.start()
    return thread


def test_an_appliance_lost_while_heating_is_reconnected_before_a_plan_on_its_hub(
    home_bench: Bench, tmp_path: Path
) -> None:
    bench = home_bench
    bake = plan_file(
        tmp_path,
        "OVEN-BAKES",
        ["oven"],
        [
            {"id": "bake", "set": {"target": "oven.oven.mode", "value": "bake"}},
            {"id": "hold", "wait": {"duration": LONG_WAIT_S, "scaled": False}},
        ],
    )
    # the oven's MCU vanishes once the hub counts its heating load (about 11 A)
    striker = _strike_once_seen(
        bench.get("hub"),
        "HUB_Status.HouseholdCurrent",
        lambda amps: amps >= 8,
        bench.emulators["oven"].close,
    )
    assert_lost(run_plan(bench, bake, tmp_path / "e1"), "oven", "oven")
    striker.join(timeout=5)
    # X4 uses the hub and the wallbox only; the hub's limit is the household limit less
    # what the appliances draw, so a dead oven's last load would leave 16 - 11 < 6 A
    record = _run_shipped(bench, PLANS / "interop" / "X4-hub-lost-charger-fallback.yaml", tmp_path)
    assert record.status is Status.PASSED, record.reason
    assert "oven" in record.reconnected and "oven" not in bench.lost, record.reconnected
    assert "hub" not in record.reconnected  # the hub held nothing of the oven but its load


def test_a_wallbox_lost_while_charging_is_reconnected_before_a_plan_on_its_car(
    home_bench: Bench, tmp_path: Path
) -> None:
    bench = home_bench
    plug = {"PlugState": "PLUGGED", "PilotFault": "NONE", "CarMode": "FOLLOWS_PILOT"}
    charge = plan_file(
        tmp_path,
        "CAR-CHARGES",
        ["charger"],
        [
            {"id": "plug-in", "send": {"message": "charger.HIL_EVSE_Ctrl", "signals": plug}},
            {"id": "hold", "wait": {"duration": LONG_WAIT_S, "scaled": False}},
        ],
    )
    # the wallbox vanishes while its contactor feeds the car: its side of the cable goes dead
    striker = _strike_once_seen(
        bench.get("charger"),
        "EVSE_Status.MeasuredCurrent",
        lambda amps: amps >= 6,
        bench.emulators["charger"].close,
    )
    assert_lost(run_plan(bench, charge, tmp_path / "e1"), "charger", "nothing heard on CAN")
    striker.join(timeout=5)
    # E9 uses the car alone, but its inlet is wired to the wallbox: the car must meet a
    # live wallbox on its cable again, not the pilot error a dead one leaves
    record = _run_shipped(bench, PLANS / "safety" / "E9-precharge.yaml", tmp_path)
    assert record.status is Status.PASSED, record.reason
    # the wallbox first, then what holds it (the car's inlet is wired to it), open order
    assert record.reconnected[:2] == ["charger", "ev"], record.reconnected
    assert not bench.lost, bench.lost


def test_a_peer_lost_between_plans_is_found_and_reconnected_before_the_next(
    home_bench: Bench, tmp_path: Path
) -> None:
    bench = home_bench
    heat = plan_file(
        tmp_path,
        "OVEN-HEATS",
        ["oven", "hub"],
        [
            {"id": "bake", "set": {"target": "oven.oven.mode", "value": "bake"}},
            {
                "id": "hub-counts-it",
                "expect": {"signal": "hub.HUB_Status.HouseholdCurrent", "min": 8, "within": 5},
            },
        ],
    )
    assert run_plan(bench, heat, tmp_path / "e1").status is Status.PASSED
    bench.emulators["oven"].close()  # after the plan: no plan step ever meets the loss
    oven = bench.get("oven")
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:  # the port's reader has seen the pty go
        try:
            oven.check_link()
        except DeviceLost:
            break
        time.sleep(0.02)
    assert "oven" not in bench.lost  # nothing has marked it: the check before X4 must
    record = _run_shipped(bench, PLANS / "interop" / "X4-hub-lost-charger-fallback.yaml", tmp_path)
    assert record.status is Status.PASSED, record.reason
    assert "oven" in record.reconnected, record.reconnected


def test_a_lost_peer_without_a_policy_is_left_lost_and_the_plan_still_runs(
    open_bench: Callable[..., Bench], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the analyzer is wired to the plug: the plug is its peer, but not a device of the plan
    bench = open_bench(power_analyzer={"reconnect": {"attempts": 1, "interval": "100 ms"}})
    bench.emulators["smart_plug"].close()
    bench.mark_lost("smart_plug", DeviceLost("its pty is gone", device="smart_plug"))
    settle = {"id": "settle", "wait": {"duration": 0.1, "scaled": False}}
    plan = plan_file(tmp_path, "ANALYZER-ONLY", ["power_analyzer"], [settle])
    record = run_plan(bench, plan, tmp_path / "e1")
    assert record.status is Status.PASSED, record.reason
    assert record.reconnected == [] and "smart_plug" in bench.lost
    assert "smart_plug is lost and has no reconnect policy" in caplog.text
