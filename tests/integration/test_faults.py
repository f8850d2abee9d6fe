"""Faults survived: a device that vanishes, goes mute or floods its bus mid-plan.

Each fault is made on the real transport (the emulator's pty closed, its SCPI
server gone, the CAN node silent, error frames on the bus), never by
patching a driver. The plan that meets it is BROKEN in the category
"device not responding", naming the device and when it was lost; the bench
stays open, plans that do not need the device still pass, and a plan that
does is broken at once unless the device's ``reconnect`` policy brings it
back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import can
import pytest

from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from hil.plan.runner import CATEGORY_DEVICE, CATEGORY_SAFETY, CATEGORY_TIMEOUT
from hil.plan.verdicts import CATEGORY_DEADLINE
from hil.report.record import Status
from hil.safety.watchdog import PlanTimedOut, PlanWatchdog
from tests.emulate_processes import Emulate, emulate_all, real_bench, write_source_bench
from tests.integration.fault_bench import (
    FAULT_AFTER_S,
    LONG_WAIT_S,
    assert_lost,
    plan_file,
    run_plan,
    strike_after,
)


def _long_wait(tmp_path: Path, plan_id: str, device: str) -> Path:
    return plan_file(
        tmp_path,
        plan_id,
        [device],
        [{"id": "hold", "wait": {"duration": LONG_WAIT_S, "scaled": False}}],
    )


def _analyzer_hold(tmp_path: Path) -> Path:
    """An analyzer measurement far longer than the test: what cuts it short is the fault."""
    measure = {
        "signal": "power_analyzer.P",
        "duration": LONG_WAIT_S * 10,  # x time_scale 0.1: LONG_WAIT_S of wall time
        "interval": 2,
        "limit": {"min": 0, "max": 5000, "unit": "W"},
    }
    return plan_file(
        tmp_path, "ANALYZER-HOLD", ["power_analyzer"], [{"id": "hold", "measure": measure}]
    )


def _ev_alive(tmp_path: Path) -> Path:
    return plan_file(
        tmp_path,
        "EV-ALIVE",
        ["ev"],
        [
            {
                "id": "speed-seen",
                "expect": {"signal": "ev.DRIVE_Status.VehicleSpeed", "max": 300, "within": 2},
            }
        ],
    )


def _plug_alive(tmp_path: Path, plan_id: str = "PLUG-ALIVE") -> Path:
    return plan_file(
        tmp_path,
        plan_id,
        ["smart_plug"],
        [
            {"id": "relay-off", "set": {"target": "smart_plug.switch.on", "value": False}},
            {
                "id": "off",
                "expect": {"signal": "smart_plug.switch.on", "equals": False, "within": 2},
            },
        ],
    )


def test_a_serial_port_that_disappears_breaks_the_plan_and_the_session_goes_on(
    open_bench: Callable[..., Bench], tmp_path: Path
) -> None:
    bench = open_bench()
    strike_after(FAULT_AFTER_S, bench.emulators["smart_plug"].close)  # the MCU and its pty are gone
    record = run_plan(bench, _long_wait(tmp_path, "PLUG-HOLD", "smart_plug"), tmp_path / "e1")
    assert_lost(record, "smart_plug", "smart_plug")
    # plans that do not need the plug still run on the same bench
    assert run_plan(bench, _ev_alive(tmp_path), tmp_path / "e2").status is Status.PASSED
    # one that does is broken at once, saying what was lost and that nothing reconnects it
    begun = time.monotonic()
    again = run_plan(bench, _plug_alive(tmp_path), tmp_path / "e3")
    assert again.status is Status.BROKEN and again.category == CATEGORY_DEVICE
    assert again.reason.startswith("not run: device 'smart_plug': lost at "), again.reason
    assert "no 'reconnect' policy" in again.reason and not again.steps
    assert time.monotonic() - begun < 5.0


def test_a_reconnect_policy_brings_the_device_back_for_the_next_plan(
    open_bench: Callable[..., Bench], tmp_path: Path
) -> None:
    bench = open_bench(smart_plug={"reconnect": {"attempts": 2, "interval": "200 ms"}})
    strike_after(FAULT_AFTER_S, bench.emulators["smart_plug"].close)
    assert_lost(
        run_plan(bench, _long_wait(tmp_path, "PLUG-HOLD", "smart_plug"), tmp_path / "e1"),
        "smart_plug",
        "smart_plug",
    )
    record = run_plan(bench, _plug_alive(tmp_path), tmp_path / "e2")
    assert record.status is Status.PASSED, record.reason
    # the analyzer wired to the plug holds its emulator: reopened with it, in open order
    assert record.reconnected == ["smart_plug", "power_analyzer"], record.reconnected
    assert "smart_plug" not in bench.lost


def test_an_instrument_whose_connection_drops_breaks_the_plan(
    open_bench: Callable[..., Bench], tmp_path: Path
) -> None:
    bench = open_bench()
    plan = _analyzer_hold(tmp_path)
    strike_after(
        FAULT_AFTER_S, bench.emulators["power_analyzer"].close
    )  # the SCPI server goes away
    record = run_plan(bench, plan, tmp_path / "e1")
    assert_lost(record, "power_analyzer", "power_analyzer")


def test_a_can_node_that_goes_silent_is_lost_not_failed(
    open_bench: Callable[..., Bench], tmp_path: Path
) -> None:
    bench = open_bench()
    strike_after(FAULT_AFTER_S, bench.emulators["ev"].close)  # the car stops transmitting
    record = run_plan(bench, _long_wait(tmp_path, "EV-HOLD", "ev"), tmp_path / "e1")
    assert_lost(record, "ev", "nothing heard on CAN")
    assert "DRIVE_Status" in record.reason


def _ev_never_moves(tmp_path: Path) -> Path:
    """A deadline far shorter than the CAN silence bound (3 s), missed either way: the
    parked car never reaches 5 km/h."""
    moving = {"signal": "ev.DRIVE_Status.VehicleSpeed", "min": 5, "within": 0.3}
    settle = {"duration": 2 * FAULT_AFTER_S, "scaled": False}
    steps = [{"id": "settle", "wait": settle}, {"id": "moving", "expect": moving}]
    return plan_file(tmp_path, "EV-MOVES", ["ev"], steps)


def test_a_deadline_missed_by_a_device_that_is_heard_is_failed(
    open_bench: Callable[..., Bench], tmp_path: Path
) -> None:
    record = run_plan(open_bench(), _ev_never_moves(tmp_path), tmp_path / "e1")
    assert record.status is Status.FAILED, record.reason
    assert record.category == CATEGORY_DEADLINE, record.reason


def test_a_deadline_missed_because_the_node_vanished_is_broken_not_failed(
    open_bench: Callable[..., Bench], tmp_path: Path
) -> None:
    # the node goes quiet during the plan, shortly before the step: at the missed
    # deadline its pulse is overdue but not yet silent for the bound (3 s), so the
    # verdict waits for the link's
    bench = open_bench()
    strike_after(FAULT_AFTER_S, bench.emulators["ev"].close)
    record = run_plan(bench, _ev_never_moves(tmp_path), tmp_path / "e1")
    assert record.status is Status.BROKEN, record.reason
    assert record.category == CATEGORY_DEVICE, record.reason
    assert record.lost["device"] == "ev", record.lost
    assert "nothing heard on CAN" in record.reason, record.reason
    assert [s.status for s in record.steps] == [Status.PASSED, Status.BROKEN], record.steps


def test_a_bus_flooded_with_error_frames_is_lost(
    open_bench: Callable[..., Bench], tmp_path: Path
) -> None:
    bench = open_bench()
    channel = bench.transports["ev"].channel  # type: ignore[attr-defined]

    def flood() -> None:
        with can.Bus(interface="virtual", channel=channel) as bus:
            for _ in range(400):
                bus.send(can.Message(arbitration_id=0x20000004, is_error_frame=True, data=bytes(8)))

    strike_after(FAULT_AFTER_S, flood)
    record = run_plan(bench, _long_wait(tmp_path, "EV-HOLD", "ev"), tmp_path / "e1")
    assert_lost(record, "ev", "error frames")


def test_the_watchdog_aborts_a_plan_that_outlives_its_timeout(
    open_bench: Callable[..., Bench], tmp_path: Path
) -> None:
    bench = open_bench()
    plan = plan_file(
        tmp_path,
        "SLOW",
        ["smart_plug"],
        [{"id": "hold", "wait": {"duration": LONG_WAIT_S, "scaled": False}}],
        timeout="1 s",
        teardown=[{"id": "relay-off", "set": {"target": "smart_plug.switch.on", "value": False}}],
    )
    record = run_plan(bench, plan, tmp_path / "e1", timeout_s=600)
    assert record.status is Status.BROKEN and record.category == CATEGORY_TIMEOUT, record.reason
    assert "exceeded its timeout of 1 s" in record.reason and record.timeout_s == 1.0
    assert record.ended - record.started < LONG_WAIT_S / 2
    teardown = [s for s in record.steps if s.section == "teardown"]
    assert [s.status for s in teardown] == [Status.PASSED]  # the teardown still ran
    # the bench default applies to a plan without its own timeout
    plain = _long_wait(tmp_path, "PLAIN", "smart_plug")
    record = run_plan(bench, plain, tmp_path / "e2", timeout_s=1.0)
    assert record.category == CATEGORY_TIMEOUT and record.timeout_s == 1.0


def test_an_invariant_is_judged_while_a_step_runs_not_after_it(
    open_bench: Callable[..., Bench], tmp_path: Path
) -> None:
    bench = open_bench()
    plan = plan_file(
        tmp_path,
        "LIVE-INVARIANT",
        ["smart_plug"],
        [
            {"id": "relay-on", "set": {"target": "smart_plug.switch.on", "value": True}},
            {"id": "hold", "wait": {"duration": LONG_WAIT_S, "scaled": False}},
        ],
        invariants=[
            {"id": "low-current", "always": "smart_plug.power-consumption.electric-current <= 1"}
        ],
        teardown=[{"id": "relay-off", "set": {"target": "smart_plug.switch.on", "value": False}}],
    )
    # a load appears while the plan waits: the current it draws breaks the invariant
    strike_after(FAULT_AFTER_S, lambda: bench.stimulate("smart_plug", "load_current", {"value": 4}))
    record = run_plan(bench, plan, tmp_path / "e1")
    assert record.status is Status.FAILED and record.category == CATEGORY_SAFETY, record.reason
    held = next(s for s in record.steps if s.id == "hold")
    assert held.status is Status.FAILED and "low-current" in held.message
    violation_t = held.observed["violation_t"]
    assert held.started <= violation_t <= held.ended < held.started + LONG_WAIT_S / 2
    # the frames around it are evidence, and the bench was made safe before teardown
    assert Path(held.observed["evidence"]).is_file()
    assert record.interlock["reason"].endswith("safety violation")
    made = {d["device"]: d for d in record.interlock["devices"]}
    assert made["smart_plug"]["reached"] and "relay open" in made["smart_plug"]["actions"][0]


def test_the_watchdog_interrupts_a_call_that_never_polls() -> None:
    """The last resort: a plan stuck in a call that never returns to a poll."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("the hard stage signals the main thread; this test runs elsewhere")
    watchdog = PlanWatchdog("STUCK", 0.2, hard_grace_s=0.3)
    begun = time.monotonic()
    with pytest.raises(PlanTimedOut, match="stuck in a call that never returned"), watchdog:
        time.sleep(LONG_WAIT_S)  # a blocking call that never polls the watchdog
    assert watchdog.interrupted and watchdog.expired_at is not None
    assert time.monotonic() - begun < LONG_WAIT_S / 2


# --- emulators in their own process (`hil emulate`), reached as real devices ----------


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[tuple[Bench, dict[str, Emulate]]]:
    """``hil emulate ev`` and ``hil emulate smart_plug power_analyzer``, and a bench that
    reaches them as real devices (socketcand, a pty path, a VISA socket)."""
    source = write_source_bench(tmp_path / "source.yaml")
    with emulate_all(source, [["ev"], ["smart_plug", "power_analyzer"]], tmp_path) as procs:
        by_device = {name: p for p in procs for name in p.devices}
        entries = {n: dict(by_device[n].devices[n]) for n in by_device}
        entries["power_analyzer"]["visa"] = {**entries["power_analyzer"]["visa"], "timeout_s": 1.0}
        bench = Bench(load_bench(real_bench(tmp_path / "remote.yaml", entries))).open()
        try:
            yield bench, by_device
        finally:
            bench.close()
            for p in procs:  # a stopped process must be let go before it can be stopped
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.proc.pid, signal.SIGCONT)


def test_an_emulator_process_killed_mid_plan_breaks_only_what_needs_it(
    remote: tuple[Bench, dict[str, Emulate]], tmp_path: Path
) -> None:
    bench, procs = remote
    strike_after(FAULT_AFTER_S, procs["ev"].proc.kill)  # SIGKILL: the gateway's sockets die with it
    record = run_plan(bench, _long_wait(tmp_path, "EV-HOLD", "ev"), tmp_path / "e1")
    assert_lost(record, "ev", "socketcand server closed the connection")
    # the plug's process is alive: its plans still run on this bench
    assert run_plan(bench, _plug_alive(tmp_path), tmp_path / "e2").status is Status.PASSED


def test_an_instrument_that_stops_answering_breaks_the_plan(
    remote: tuple[Bench, dict[str, Emulate]], tmp_path: Path
) -> None:
    bench, procs = remote
    frozen = procs["power_analyzer"].proc
    strike_after(FAULT_AFTER_S, lambda: os.kill(frozen.pid, signal.SIGSTOP))  # alive, but mute
    plan = _analyzer_hold(tmp_path)
    record = run_plan(bench, plan, tmp_path / "e1")
    assert_lost(record, "power_analyzer", "no answer")
