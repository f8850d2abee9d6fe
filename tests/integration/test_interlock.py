"""The safe-state interlock: in rank order, bounded per device, and on Ctrl-C and SIGTERM of a
real pytest process — proven through the emulators, which run in a process of their own
(`hil emulate`) so they outlive the run they make safe."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from hil.safety.interlock import drive_safe, safe_plan
from tests.conftest import ROOT

EMULATED = """\
spec: 1
id: interlock-bench
time_scale: 0.1
devices:
  smart_plug: {type: smart_plug, emulated: true, serial: {port: auto}}
  oven: {type: oven, emulated: true, serial: {port: auto}}
  power_analyzer:
    type: power_analyzer
    emulated: true
    visa: {resource: auto}
    wiring: {1: smart_plug}
"""
# a plan that leaves the oven heating and the plug loaded, then waits (600 s plan time)
HOT_PLAN = """\
spec: 1
id: HOT1
title: Oven heating and plug loaded, then a long wait
version: "1"
severity: normal
devices: [smart_plug, oven]
setup:
  - {id: someone-home, set: {target: oven.home.occupancy, value: true}}
  - {id: bake, set: {target: oven.oven.mode, value: bake}}
  - {id: relay-on, set: {target: smart_plug.switch.on, value: true}}
steps:
  - {id: heating, expect: {signal: oven.oven.heater, equals: true, within: 5 s}}
  - {id: hold, name: hold everything on, wait: {duration: 600 s}}
"""


def _bench(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bench.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_drive_safe_acts_in_rank_order_and_reaches_every_device(tmp_path: Path) -> None:
    with Bench(load_bench(_bench(tmp_path, EMULATED))) as bench:
        assert [name for name, _, _ in safe_plan(bench)] == ["oven", "smart_plug", "power_analyzer"]
        oven, plug = bench.emulators["oven"], bench.emulators["smart_plug"]
        bench.stimulate("oven", "home.occupancy", {"value": True})
        bench.stimulate("oven", "oven.mode", {"value": 2})  # bake
        bench.stimulate("smart_plug", "switch.on", {"value": True})
        bench.stimulate("power_analyzer", "integration", {"command": "START"})
        deadline = time.monotonic() + 5
        while not oven.heater_on and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.02)
        assert oven.heater_on  # type: ignore[attr-defined]
        report = drive_safe(bench, "test")
        assert report.unreachable == []
        assert [d.device for d in report.devices] == ["oven", "smart_plug", "power_analyzer"]
        assert report.devices[0].actions == ["oven off, heater off"]
        # through the emulators: the hardware is safe
        assert oven.heater_on is False  # type: ignore[attr-defined]
        assert oven.value("oven.on") is False  # type: ignore[attr-defined]
        assert plug.value("switch.on") is False  # type: ignore[attr-defined]
        assert report.devices[2].actions == ["integration stopped"]


CAR_BENCH = """\
spec: 1
id: car-interlock
time_scale: 0.1
devices:
  ev:
    type: ev
    emulated: true
    can: {interface: virtual, channel: ev-can}
    wiring: {inlet: charger}
  charger: {type: charger, emulated: true, can: {interface: virtual, channel: home-can}}
"""


def test_drive_safe_stops_the_charge_and_the_car(tmp_path: Path) -> None:
    """The wallbox is unplugged first (pilot off), then the car stops and drops HV."""
    with Bench(load_bench(_bench(tmp_path, CAR_BENCH))) as bench:
        ev, charger = bench.get("ev"), bench.get("charger")
        assert [name for name, _, _ in safe_plan(bench)] == ["charger", "ev"]
        bench.stimulate("charger", "HIL_EVSE_Ctrl", {"PlugState": "PLUGGED", "PilotFault": "NONE"})
        ev.wait_for("OBC_Status.ChargeState", "CHARGING", 10)  # type: ignore[attr-defined]
        ev.wait_for("BMS_Status.ContactorState", "CLOSED", 5)  # type: ignore[attr-defined]
        report = drive_safe(bench, "test")
        assert report.unreachable == [] and [d.device for d in report.devices] == ["charger", "ev"]
        after = time.time()
        # through the wire and the car's own frames: no current, pilot off, contactors open
        charger.wait_for("EVSE_Status.PilotState", "A", 3, since=after)  # type: ignore[attr-defined]
        ev.wait_for("OBC_Status.ChargeLineCurrent", lambda a: a <= 0.05, 3, since=after)  # type: ignore[attr-defined]
        ev.wait_for("BMS_Status.ContactorState", "OPEN", 3, since=after)  # type: ignore[attr-defined]
        # a car on the move is brought to a stop
        bench.stimulate("ev", "HIL_VehicleSim", {"TargetSpeed": 30, "Gear": "D", "Accel": 8})
        ev.wait_for("DRIVE_Status.VehicleSpeed", lambda v: v > 20, 10)  # type: ignore[attr-defined]
        report = drive_safe(bench, "test")
        assert report.devices[1].actions == ["stop the car, HV request off (contactors open)"]
        ev.wait_for("DRIVE_Status.VehicleSpeed", lambda v: v < 0.5, 15, since=time.time())  # type: ignore[attr-defined]


def test_a_lost_device_is_reported_and_the_others_still_made_safe(tmp_path: Path) -> None:
    with Bench(load_bench(_bench(tmp_path, EMULATED))) as bench:
        bench.stimulate("smart_plug", "switch.on", {"value": True})
        bench.emulators["oven"].close()  # the oven's MCU dies: its link goes silent
        report = drive_safe(bench, "test", timeout_s=1.0)
        by_name = {d.device: d for d in report.devices}
        assert not by_name["oven"].reached and by_name["oven"].error
        assert by_name["oven"].seconds <= 1.5  # bounded: it did not hold up the others
        assert by_name["smart_plug"].reached and by_name["power_analyzer"].reached
        assert bench.emulators["smart_plug"].value("switch.on") is False  # type: ignore[attr-defined]
        assert "NOT REACHED: oven" in report.summary()
    # the oven's worker may still be waiting for its answer; it ends within the RPC timeout
    deadline = time.monotonic() + 6
    while any(t.name.startswith("hil-interlock") for t in __import__("threading").enumerate()):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)


@pytest.fixture
def remote_emulators(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """smart_plug and oven emulators in their own process (`hil emulate`)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hil",
            "emulate",
            "smart_plug",
            "oven",
            "--bench",
            str(_bench(tmp_path, EMULATED)),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = _read_line(proc, lambda text: text.startswith("{"), 30)
        yield json.loads(line)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# bytes after the last line returned, per process (not per fd: fd numbers are reused)
_unread: weakref.WeakKeyDictionary[subprocess.Popen[str], bytes] = weakref.WeakKeyDictionary()


def _read_line(proc: subprocess.Popen[str], wanted: Any, timeout: float) -> str:
    """The first line of ``proc``'s stdout that ``wanted`` accepts, within ``timeout``.

    Reads the pipe unbuffered (``os.read``): a buffered ``readline`` can hold the next
    lines in Python while ``select`` reports the pipe empty.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = _unread.pop(proc, b"")
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        while b"\n" in buffer:
            raw, buffer = buffer.split(b"\n", 1)
            line = raw.decode(errors="replace") + "\n"
            seen.append(line)
            if wanted(line):
                _unread[proc] = buffer
                return line
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buffer += chunk
    raise AssertionError(f"no such line within {timeout} s; got:\n{''.join(seen[-30:])}")


def _pytest_session(plans: Path, bench: Path, results: Path) -> subprocess.Popen[str]:
    """``pytest`` on every plan in ``plans``, logging each step live on its stdout."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            *map(str, sorted(plans.glob("*.yaml"))),
            *("--bench", str(bench), "--hil-results", str(results)),
            *("-p", "no:cacheprovider", "-s", "-q", "--log-cli-level=INFO"),
            *("-o", "log_cli_format=%(message)s"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_pytest_leaves_every_device_safe(
    remote_emulators: dict[str, Any], tmp_path: Path, sig: signal.Signals
) -> None:
    remote = {
        "spec": 1,
        "id": "remote-bench",
        "time_scale": remote_emulators["time_scale"],
        "devices": remote_emulators["devices"],
    }
    bench_path = tmp_path / "remote.yaml"
    bench_path.write_text(yaml.safe_dump(remote), encoding="utf-8")
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "HOT1.yaml").write_text(HOT_PLAN, encoding="utf-8")
    results = tmp_path / "results"
    run = _pytest_session(plans, bench_path, results)
    try:
        # mid-plan: the oven is heating and the plug is on when the hold begins
        _read_line(run, lambda text: "step started: [steps] hold everything on" in text, 60)
        run.send_signal(sig)
        out, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == pytest.ExitCode.INTERRUPTED, out
    reports = list((results / "interlock").glob("session-*.json"))
    assert len(reports) == 1, out
    report = json.loads(reports[0].read_text())
    assert report["reason"].startswith("session interrupted")
    assert report["unreachable"] == []
    assert [d["device"] for d in report["devices"]] == ["oven", "smart_plug"]
    # through the emulators (still running in their own process): everything is safe
    with Bench(load_bench(bench_path)) as bench:
        assert bench.get("oven").read("oven.heater").value is False
        assert bench.get("oven").read("oven.on").value is False
        assert bench.get("smart_plug").read("switch.on").value is False


QUICK_PLAN = """\
spec: 1
id: {id}
title: plug switches ({id})
version: "1"
severity: normal
devices: [smart_plug]
steps:
  - {{id: relay-on, set: {{target: smart_plug.switch.on, value: true}}}}
  - {{id: reported, expect: {{signal: smart_plug.switch.on, equals: true, within: 2 s}}}}
  - {{id: relay-off, set: {{target: smart_plug.switch.on, value: false}}}}
"""


def test_a_killed_session_keeps_finished_results_and_certifies_incomplete(tmp_path: Path) -> None:
    bench = _bench(tmp_path, EMULATED)
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "K1.yaml").write_text(QUICK_PLAN.format(id="K1"), encoding="utf-8")
    (plans / "K2.yaml").write_text(HOT_PLAN.replace("HOT1", "K2"), encoding="utf-8")
    reports = tmp_path / "reports"
    run = _pytest_session(plans, bench, reports / "hil-results")
    try:
        _read_line(run, lambda text: "step started: [steps] hold everything on" in text, 60)
        run.kill()  # SIGKILL: no handler, no teardown, no interlock
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    records = list((reports / "hil-results").glob("*.json"))
    assert [json.loads(p.read_text())["plan_id"] for p in records] == ["K1"]  # valid JSON
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hil",
            "report",
            "certificate",
            str(reports),
            "--bench",
            str(bench),
            "--plans",
            str(plans),
            "--requirements",
            "",
            "--canaries",
            "",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "INCOMPLETE" in proc.stdout
    assert "K2 has no result (not run, or the run was cut short)" in proc.stdout
