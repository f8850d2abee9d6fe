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

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import can
import pytest
import yaml

from hil.cli import main
from hil.plan.verdicts import CATEGORY_DEADLINE
from hil.report.record import Status
from tests.conftest import PLANS, ROOT
from tests.plan_runs import run_plan

E1 = PLANS / "safety" / "E1-speed-auto-lock.yaml"
A1 = PLANS / "safety" / "A1-plug-overcurrent.yaml"
NE1 = PLANS / "energy" / "NE1-integrated-energy.yaml"
START_TIMEOUT_S = 60.0  # interpreter start and imports on a loaded 2-core machine
STOP_TIMEOUT_S = 15.0

EMULATED = {
    "spec": 1,
    "id": "emulate-source",
    "time_scale": 0.1,
    "devices": {
        "ev": {
            "type": "ev",
            "emulated": True,
            "can": {"interface": "virtual", "channel": "ev-can"},
        },
        "smart_plug": {"type": "smart_plug", "emulated": True, "serial": {"port": "auto"}},
        "power_analyzer": {
            "type": "power_analyzer",
            "emulated": True,
            "visa": {"resource": "auto"},
            "wiring": {"1": "smart_plug"},
        },
    },
}


@dataclass
class Emulate:
    """One ``hil emulate`` process and what it printed."""

    proc: subprocess.Popen[bytes]
    stderr: Path
    line: dict[str, Any]

    @property
    def devices(self) -> dict[str, dict[str, Any]]:
        return dict(self.line["devices"])

    def errors(self) -> str:
        return self.stderr.read_text(errors="replace")


def _start(bench: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    return _hil(["emulate", *args, "--bench", str(bench)], log)


def _hil(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "hil", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )


def _first_line(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> dict[str, Any]:
    """The JSON line the process prints once its emulators are reachable (bounded wait)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no JSON line within {timeout} s; stderr: {log.read_text()}")
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                proc.wait(timeout=STOP_TIMEOUT_S)
                raise AssertionError(f"exited {proc.returncode}; stderr: {log.read_text()}")
            buf += chunk
    line: dict[str, Any] = json.loads(buf.split(b"\n", 1)[0])
    return line


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Signal, wait (bounded), kill if it must: never leaves a zombie or an orphan."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="module")
def source_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("emulate") / "emulated.yaml"
    path.write_text(yaml.safe_dump(EMULATED), encoding="utf-8")
    return path


@contextlib.contextmanager
def _emulate_all(bench: Path, groups: list[list[str]], logs: Path) -> Iterator[list[Emulate]]:
    """Start one process per group (in parallel), yield them once all are reachable."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for i, group in enumerate(groups):
            log = logs / f"emulate-{i}.err"
            started.append((_start(bench, *group, log=log), log))
        yield [Emulate(p, log, _first_line(p, log, START_TIMEOUT_S)) for p, log in started]
    finally:
        for proc, _log in started:
            _stop(proc)


@pytest.fixture(scope="module")
def emulated(
    source_bench: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Emulate]]:
    """``hil emulate ev`` and ``hil emulate smart_plug power_analyzer``, for the module."""
    logs = tmp_path_factory.mktemp("emulate-logs")
    groups = [["ev"], ["smart_plug", "power_analyzer"]]
    with _emulate_all(source_bench, groups, logs) as procs:
        yield {name: p for p in procs for name in p.devices}


def _real_bench(path: Path, devices: dict[str, dict[str, Any]]) -> Path:
    bench = {"spec": 1, "id": "mixed", "time_scale": 0.1, "devices": devices}
    path.write_text(yaml.safe_dump(bench), encoding="utf-8")
    return path


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
    bench = _real_bench(
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
    bench = _real_bench(tmp_path / "no-actuator.yaml", {"smart_plug": plug})
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
    gateway = _hil(["gateway", "--port", port], logs[0])
    emulate = _start(
        source_bench,
        "ev",
        "--defect",
        "no_auto_lock",
        "--can-gateway",
        f"127.0.0.1:{port}",
        log=logs[1],
    )
    try:
        served = _first_line(gateway, logs[0], START_TIMEOUT_S)
        assert served["gateway"] == f"127.0.0.1:{port}"
        line = _first_line(emulate, logs[1], START_TIMEOUT_S)
        assert line["gateway"] is None  # it uses the one above
        assert line["devices"]["ev"]["can"]["options"] == {"host": "127.0.0.1", "port": int(port)}
        bench = _real_bench(tmp_path / "mixed.yaml", line["devices"])
        record = run_plan(E1, [], tmp_path / "E1", bench_path=bench)
        assert record.status is Status.FAILED and record.category == CATEGORY_DEADLINE
        assert "UNLOCKED" in record.reason
        assert _stop(emulate, signal.SIGINT) == 0
        assert _stop(gateway, signal.SIGINT) == 0
    finally:
        _stop(emulate)
        _stop(gateway)
    for log in logs:
        assert log.read_text().strip().endswith("hil: stopped"), log.read_text()


def test_sigterm_stops_it_cleanly(source_bench: Path, tmp_path: Path) -> None:
    log = tmp_path / "emulate.err"
    proc = _start(source_bench, "smart_plug", log=log)
    try:
        line = _first_line(proc, log, START_TIMEOUT_S)
        assert Path(line["devices"]["smart_plug"]["serial"]["port"]).exists()
    finally:
        rc = _stop(proc)
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
