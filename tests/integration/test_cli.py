"""The ``hil`` command end to end: certify writes the reports; errors are one line."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EMULATED_BENCH, ROOT

ALLURE = ROOT / ".tools" / "node_modules" / ".bin" / "allure"


def hil(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ALLURE_NO_ANALYTICS="true")
    return subprocess.run(
        [sys.executable, "-m", "hil", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.skipif(
    not ALLURE.exists(), reason="the Allure command line is installed by `make install`"
)
def test_certify_writes_results_html_and_summary(tmp_path: Path) -> None:
    # two plans and the hand-written acceptance tests on the full emulated bench: the whole
    # catalogue is `make certify`'s job (its energy plans alone take minutes)
    requirements = tmp_path / "requirements.yaml"
    requirements.write_text(
        "spec: 1\nrequirements:\n  - {id: REQ-CAR-LOCK-001, title: auto-lock}\n"
        "  - {id: REQ-PLUG-OC-001, title: overcurrent trip}\n"
    )
    reports = tmp_path / "reports"
    proc = hil(
        "certify",
        "testplans/safety/E1-speed-auto-lock.yaml",
        "testplans/safety/A1-plug-overcurrent.yaml",
        "testplans/acceptance/test_plug_power_chain.py",
        "--reports",
        str(reports),
        "--allure",
        str(ALLURE),
        "--requirements",
        str(requirements),
        "--no-canaries",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # no canaries: INCOMPLETE
    assert "verdict: ALL PLANS PASSED" in proc.stdout
    assert "INCOMPLETE — no canary runs" in proc.stdout
    assert f"report: {reports / 'allure-report' / 'index.html'}" in proc.stdout
    results = list((reports / "allure-results").glob("*-result.json"))
    assert len(results) >= 4  # two plans and the hand-written acceptance tests
    assert all(json.loads(p.read_text())["status"] == "passed" for p in results)
    html = (reports / "allure-report" / "index.html").read_text()
    assert "<html" in html.lower() and len(html) > 100_000  # single file, data inlined
    summary = (reports / "summary.txt").read_text()
    for plan in ("E1", "A1"):
        assert f"  {plan} " in summary


def test_certify_with_a_defect_exits_nonzero_and_names_the_plan(tmp_path: Path) -> None:
    proc = hil(
        "certify",
        "testplans/safety/E1-speed-auto-lock.yaml",
        "--reports",
        str(tmp_path),
        "--defect",
        "ev:no_auto_lock",
        "--allure",
        str(ALLURE),
    )
    assert proc.returncode == 1
    assert re.search(r"^  E1 +FAILED +Speed auto-lock$", proc.stdout, re.MULTILINE), proc.stdout
    assert "verdict: NOT ALL PLANS PASSED" in proc.stdout


@pytest.mark.parametrize(
    ("bench_text", "words"),
    [
        (
            "spec: 1\nid: x\ndevices:\n  ev: {type: ev, emulated: true, can: {interface: virtual, channel: c}}\n"
            "  ev: {type: ev}\n",
            "bench.yaml:5:3: duplicate key 'ev' (first at line 4)",
        ),
    ],
)
def test_bench_errors_are_one_clear_line(tmp_path: Path, bench_text: str, words: str) -> None:
    bench = tmp_path / "bench.yaml"
    bench.write_text(bench_text)
    proc = hil("bench", "check", "--bench", str(bench))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("hil: error: ")
    assert words in proc.stderr


def test_bench_check_prints_identities() -> None:
    proc = hil("bench", "check", "--bench", str(EMULATED_BENCH))
    assert proc.returncode == 0, proc.stderr
    assert "YOKOGAWA" in proc.stdout or "WT310" in proc.stdout
    assert "ev" in proc.stdout and "smart_plug" in proc.stdout


def test_bench_check_is_a_table_with_endpoints_and_a_verdict() -> None:
    proc = hil("bench", "check", "--bench", str(EMULATED_BENCH))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["device", "type", "mode", "endpoint", "identity"]
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert re.search(r"emulated +virtual channel ev-can-\w+ +model=EV VCU", rows["ev"])
    assert re.search(r"emulated +/dev/\S+ +model=", rows["smart_plug"])
    assert re.search(r"TCPIP::127\.0\.0\.1::\d+::SOCKET", rows["power_analyzer"])
    assert re.fullmatch(r"bench emulated-home: all \d+ devices answered", lines[-1])


def test_bench_check_json_is_one_document_for_the_reports() -> None:
    proc = hil("bench", "check", "--bench", str(EMULATED_BENCH), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["format"], doc["bench"], doc["ok"]) == ("hil-bench-check/1", "emulated-home", True)
    rows = {r["device"]: r for r in doc["devices"]}
    assert {"ev", "smart_plug", "power_analyzer"} <= set(rows)
    assert rows["ev"]["identity"]["model"] == "EV VCU" and rows["ev"]["emulated"] is True
    assert re.fullmatch(r"\d+\.\d+\.\d+", rows["ev"]["identity"]["firmware"])  # UDS F189
    assert rows["smart_plug"]["identity"]["model"]  # MIoT model
    assert all(r["error"] is None for r in rows.values())
    assert rows["ev"]["declared"].startswith(f"{EMULATED_BENCH}:")


def test_bench_check_locates_a_device_that_does_not_answer(tmp_path: Path) -> None:
    """A real analyzer whose socket accepts but never answers: its row says so, exit 1."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # the kernel completes connects; nobody ever answers
        port = silent.getsockname()[1]
        bench = tmp_path / "bench.yaml"
        bench.write_text(
            "spec: 1\nid: silent\ndevices:\n"
            "  plug: {type: smart_plug, emulated: true, serial: {port: auto}}\n"
            "  meter:\n    type: power_analyzer\n"
            f"    visa: {{resource: 'TCPIP::127.0.0.1::{port}::SOCKET', timeout_s: 0.5}}\n"
        )
        table = hil("bench", "check", "--bench", str(bench))
        doc = json.loads(hil("bench", "check", "--bench", str(bench), "--json").stdout)
    assert table.returncode == 1, table.stderr
    meter = next(line for line in table.stdout.splitlines() if line.startswith("meter"))
    assert f"ERROR ({bench}:5): device 'meter'" in meter
    assert table.stdout.splitlines()[-1] == "bench silent: 1 of 2 devices failed: meter"
    rows = {r["device"]: r for r in doc["devices"]}
    assert doc["ok"] is False and rows["plug"]["error"] is None
    assert "device 'meter'" in rows["meter"]["error"] and rows["meter"]["emulated"] is False


def test_a_device_that_cannot_open_is_its_own_row(tmp_path: Path) -> None:
    bench = tmp_path / "bench.yaml"
    bench.write_text(
        "spec: 1\nid: x\ndevices:\n"
        "  plug: {type: smart_plug, serial: {port: /dev/hil-nope}}\n"
        "  oven: {type: oven, emulated: true, serial: {port: auto}}\n"
    )
    proc = hil("bench", "check", "--bench", str(bench))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"hil: error: {bench}:4: device 'plug': cannot open serial port")
    plug = next(line for line in proc.stdout.splitlines() if line.startswith("plug"))
    assert re.search(r"plug +smart_plug +real +/dev/hil-nope +ERROR", plug)
    assert proc.stdout.splitlines()[-1] == "bench x: 1 of 2 devices failed: plug"
    doc = json.loads(hil("bench", "check", "--bench", str(bench), "--json").stdout)
    rows = {r["device"]: r for r in doc["devices"]}
    assert doc["ok"] is False and rows["oven"]["error"] is None
    assert "cannot open serial port '/dev/hil-nope'" in rows["plug"]["error"]
