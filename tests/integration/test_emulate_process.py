"""Emulators in their own processes (``hil emulate``), used by a bench as real devices.

The bench under test declares ev, smart_plug and power_analyzer ``emulated:
false`` and reaches them the way it would reach hardware: python-can's
``socketcand`` client (to hil's gateway in the ``hil emulate ev`` process),
a pty path, a VISA socket resource, and an actuator resource for the plug's
physical input. The shipped plans run on it unchanged.

The plug and the analyzer that measures its mains feed run in one process
(``hil emulate smart_plug power_analyzer``): the wire between them is
physics, which lives in one place.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import can
import pytest

from hil.cli import main
from hil.plan.verdicts import CATEGORY_DEADLINE
from hil.report.record import Status
from tests.conftest import PLANS
from tests.emulate_processes import (
    Emulate,
    emulate_all,
    json_line,
    real_bench,
    start_emulate,
    write_source_bench,
)
from tests.plan_runs import run_plan
from tests.processes import START_TIMEOUT_S, hil, stop

E1 = PLANS / "safety" / "E1-speed-auto-lock.yaml"
A1 = PLANS / "safety" / "A1-plug-overcurrent.yaml"
NE1 = PLANS / "energy" / "NE1-integrated-energy.yaml"


@pytest.fixture(scope="module")
def source_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_source_bench(tmp_path_factory.mktemp("emulate") / "emulated.yaml")


@pytest.fixture(scope="module")
def emulated(
    source_bench: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Emulate]]:
    """``hil emulate ev`` and ``hil emulate smart_plug power_analyzer``, for the module."""
    logs = tmp_path_factory.mktemp("emulate-logs")
    groups = [["ev"], ["smart_plug", "power_analyzer"]]
    with emulate_all(source_bench, groups, logs) as procs:
        yield {name: p for p in procs for name in p.devices}


def _entries(emulated: dict[str, Emulate], *names: str) -> dict[str, dict[str, Any]]:
    return {n: emulated[n].devices[n] for n in names}


def test_the_json_line_is_a_bench_entry_for_a_real_device(emulated: dict[str, Emulate]) -> None:
    ev = emulated["ev"].devices["ev"]
    assert ev["emulated"] is False and ev["can"]["interface"] == "socketcand"
    assert ev["can"]["channel"] == "ev-can"
    assert ev["can"]["options"]["host"] == "127.0.0.1"
    assert emulated["ev"].line["gateway"] == f"127.0.0.1:{ev['can']['options']['port']}"
    plug = emulated["smart_plug"].devices["smart_plug"]
    assert plug["serial"]["port"].startswith("/dev/") and "actuator" in plug
    analyzer = emulated["power_analyzer"].devices["power_analyzer"]
    assert analyzer["visa"]["resource"].endswith("::SOCKET")
    assert analyzer["wiring"] == {"1": "smart_plug"}
    assert emulated["smart_plug"].proc is emulated["power_analyzer"].proc


def test_shipped_plans_pass_on_devices_in_other_processes(
    emulated: dict[str, Emulate], tmp_path: Path
) -> None:
    bench = real_bench(
        tmp_path / "mixed.yaml", _entries(emulated, "ev", "smart_plug", "power_analyzer")
    )
    for plan in (E1, A1, NE1):
        record = run_plan(plan, [], tmp_path / plan.stem, bench_path=bench)
        assert record.status is Status.PASSED, f"{plan.name}: {record.reason}"


def test_a_physical_input_without_an_actuator_is_a_bench_error(
    emulated: dict[str, Emulate], tmp_path: Path
) -> None:
    plug = dict(emulated["smart_plug"].devices["smart_plug"])
    del plug["actuator"]
    bench = real_bench(tmp_path / "no-actuator.yaml", {"smart_plug": plug})
    record = run_plan(A1, [], tmp_path / "ev", bench_path=bench)
    assert record.status is Status.BROKEN
    assert "smart_plug.load_current is a physical input" in record.reason
    assert "no actuator" in record.reason


def test_two_socketcand_clients_share_the_emulated_bus(emulated: dict[str, Emulate]) -> None:
    opts = emulated["ev"].devices["ev"]["can"]["options"]
    a = can.Bus(interface="socketcand", channel="ev-can", host=opts["host"], port=opts["port"])
    b = can.Bus(interface="socketcand", channel="ev-can", host=opts["host"], port=opts["port"])
    try:
        t0 = time.time()
        seen = a.recv(timeout=5.0)  # the EV's cyclic frames, stamped by the gateway's bus
        assert seen is not None and seen.timestamp >= t0 - 1.0
        a.send(can.Message(arbitration_id=0x7A5, data=b"\x11\x22", is_extended_id=False))
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            msg = b.recv(timeout=0.5)
            if msg is not None and msg.arbitration_id == 0x7A5:
                assert bytes(msg.data) == b"\x11\x22" and msg.timestamp >= t0
                break
        else:
            raise AssertionError("b never saw a's frame")
    finally:
        a.shutdown()
        b.shutdown()


def test_defects_travel_with_an_emulator_behind_a_separate_gateway(
    source_bench: Path, tmp_path: Path, unused_tcp_port: int
) -> None:
    """``hil gateway`` in one process, the EV (with a defect) joining it from another
    (``--can-gateway``), the bench a third client: the same plan fails on the defect.
    Ctrl-C (SIGINT) then stops both processes cleanly."""
    port = str(unused_tcp_port)
    logs = (tmp_path / "gateway.err", tmp_path / "emulate.err")
    gateway = hil(["gateway", "--port", port], logs[0])
    emulate = start_emulate(
        source_bench,
        "ev",
        "--defect",
        "no_auto_lock",
        "--can-gateway",
        f"127.0.0.1:{port}",
        log=logs[1],
    )
    try:
        served = json_line(gateway, logs[0], START_TIMEOUT_S)
        assert served["gateway"] == f"127.0.0.1:{port}"
        line = json_line(emulate, logs[1], START_TIMEOUT_S)
        assert line["gateway"] is None  # it uses the one above
        assert line["devices"]["ev"]["can"]["options"] == {"host": "127.0.0.1", "port": int(port)}
        bench = real_bench(tmp_path / "mixed.yaml", line["devices"])
        record = run_plan(E1, [], tmp_path / "E1", bench_path=bench)
        assert record.status is Status.FAILED and record.category == CATEGORY_DEADLINE
        assert "UNLOCKED" in record.reason
        assert stop(emulate, signal.SIGINT) == 0
        assert stop(gateway, signal.SIGINT) == 0
    finally:
        stop(emulate)
        stop(gateway)
    for log in logs:
        assert log.read_text().strip().endswith("hil: stopped"), log.read_text()


def test_sigterm_stops_it_cleanly(source_bench: Path, tmp_path: Path) -> None:
    log = tmp_path / "emulate.err"
    proc = start_emulate(source_bench, "smart_plug", log=log)
    try:
        line = json_line(proc, log, START_TIMEOUT_S)
        assert Path(line["devices"]["smart_plug"]["serial"]["port"]).exists()
    finally:
        rc = stop(proc)
    assert rc == 0, log.read_text()
    assert "Traceback" not in log.read_text()
    assert log.read_text().strip().endswith("hil: stopped")


def test_a_wired_device_alone_is_a_located_error(
    source_bench: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before anything starts (so in-process: the CLI's error path is the same)."""
    assert main(["emulate", "power_analyzer", "--bench", str(source_bench)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hil: error: {source_bench}:") and "Traceback" not in err
    assert "name both (power_analyzer smart_plug)" in err
