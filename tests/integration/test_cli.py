"""The ``hil`` command end to end: certify writes the reports; errors are one line."""

from __future__ import annotations

import json
import os
import re
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
    reports = tmp_path / "reports"
    proc = hil("certify", "--reports", str(reports), "--allure", str(ALLURE))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verdict: ALL PLANS PASSED" in proc.stdout
    assert f"report: {reports / 'allure-report' / 'index.html'}" in proc.stdout
    results = list((reports / "allure-results").glob("*-result.json"))
    assert len(results) >= 5  # three plans and the hand-written acceptance tests
    assert all(json.loads(p.read_text())["status"] == "passed" for p in results)
    html = (reports / "allure-report" / "index.html").read_text()
    assert "<html" in html.lower() and len(html) > 100_000  # single file, data inlined
    summary = (reports / "summary.txt").read_text()
    for plan in ("E1", "A1", "N1"):
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
        (
            "spec: 1\nid: x\ndevices:\n  plug: {type: smart_plug, serial: {port: /dev/hil-nope}}\n",
            "device 'plug': cannot open serial port '/dev/hil-nope'",
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
