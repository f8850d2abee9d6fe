"""`hil certify` end to end on a small bench: the sealed certificate, its verdicts, and both
HTML reports rendered in headless Chromium (Debian's, driven by Playwright; never a
downloaded browser). Screenshots land in reports/browser/ for a person to look at."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import PLANS, ROOT

ALLURE = ROOT / ".tools" / "node_modules" / ".bin" / "allure"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "reports" / "browser"
A1 = PLANS / "safety" / "A1-plug-overcurrent.yaml"

BENCH = """\
spec: 1
id: certify-test-bench
name: plug and analyzer
lab: {name: CI lab, location: nowhere in particular, operator: ci}
time_scale: 0.1
devices:
  smart_plug:
    type: smart_plug
    emulated: true
    serial: {port: auto}
  power_analyzer:
    type: power_analyzer
    emulated: true
    visa: {resource: auto}
    wiring: {1: smart_plug}
# a secret by reference: it must never appear in any report (test below)
parameters:
  L1: {operator_badge: "${ENV:HIL_TEST_BADGE}"}
"""
SECRET = "badge-7f3a9c-secret"
# a measurement plan of the test's own, so the certificate has samples to plot
LOAD_PLAN = """\
spec: 1
id: L1
title: Plug feeds a 2 A load
version: "1"
requirements: [REQ-TEST-LOAD-001]
severity: normal
tags: [home, energy]
devices: [smart_plug, power_analyzer]
parameters:
  operator_badge: {type: string, default: none}
setup:
  - {id: load, name: "load the plug (operator ${operator_badge})", set: {target: smart_plug.load_current, value: 2 A}}
  - {id: relay-on, set: {target: smart_plug.switch.on, value: true}}
steps:
  - id: load-power
    measure: {signal: power_analyzer.P, settle: 2 s, duration: 20 s, interval: 1 s, limit: {min: 300, max: 600, unit: W}}
teardown:
  - {id: relay-off, set: {target: smart_plug.switch.on, value: false}}
  - {id: unload, set: {target: smart_plug.load_current, value: 0 A}}
"""
REQUIREMENTS = """\
spec: 1
requirements:
  - {id: REQ-PLUG-OC-001, title: "plug trips at 12 A within 2 s", safety_class: IEC 60730 class B}
  - {id: REQ-TEST-LOAD-001, title: "the plug feeds a 2 A load"}
"""
CANARIES = """\
spec: 1
canaries:
  - {plan: A1, defect: "smart_plug:no_overcurrent_trip", step: relay-opens}
"""


def hil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hil", *args],
        cwd=ROOT,
        env=dict(os.environ, ALLURE_NO_ANALYTICS="true", HIL_TEST_BADGE=SECRET),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


class Lab:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bench = root / "bench.yaml"
        self.plans = root / "plans"
        self.requirements = root / "requirements.yaml"
        self.canaries = root / "canaries.yaml"
        self.key = root / "keys" / "lab.pem"
        self.public = root / "keys" / "lab.pub.pem"

    def certify(self, reports: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return hil(
            "certify",
            str(A1),
            str(self.plans),
            "--bench",
            str(self.bench),
            "--reports",
            str(reports),
            "--allure",
            str(ALLURE),
            "--requirements",
            str(self.requirements),
            "--canaries",
            str(self.canaries),
            "--key",
            str(self.key),
            "--authorised-by",
            "Q. A. Lead",
            *extra,
        )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    lab = Lab(tmp_path_factory.mktemp("lab"))
    lab.bench.write_text(BENCH, encoding="utf-8")
    lab.plans.mkdir()
    (lab.plans / "L1-load.yaml").write_text(LOAD_PLAN, encoding="utf-8")
    lab.requirements.write_text(REQUIREMENTS, encoding="utf-8")
    lab.canaries.write_text(CANARIES, encoding="utf-8")
    proc = hil("report", "keygen", "-o", str(lab.key))
    assert proc.returncode == 0, proc.stderr
    return lab


@pytest.fixture(scope="module")
def certified(lab: Lab) -> Path:
    if not ALLURE.exists():
        pytest.fail("the Allure command line is missing: run `make install`")
    reports = lab.root / "reports"
    proc = lab.certify(reports)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "certificate HIL-certify-test-bench-" in proc.stdout
    assert ": CERTIFIED" in proc.stdout, proc.stdout
    assert "canary 1/1: A1 with smart_plug:no_overcurrent_trip: caught" in proc.stdout
    trend = json.loads((reports / "allure-history" / "history-trend.json").read_text())
    assert trend[0]["data"]["passed"] == 2  # the next run's report shows it as a trend
    return reports


def test_the_certificate_is_complete_and_valid(certified: Path) -> None:
    folder = certified / "certificate"
    cert = json.loads((folder / "certificate.json").read_text())
    jsonschema.validate(cert, json.loads((folder / "certificate.schema.json").read_text()))
    assert cert["verdict"]["value"] == "CERTIFIED"
    assert [r["conformity"] for r in cert["traceability"]] == ["CONFORMS", "CONFORMS"]
    assert cert["canaries"][0]["caught"] is True
    assert cert["canaries"][0]["failed_step"] == "relay-opens"
    assert {i["device"] for i in cert["items"]} == {"smart_plug", "power_analyzer"}
    assert all(i["identity"] for i in cert["items"]), cert["items"]
    assert cert["authorisation"]["authorised_by"] == "Q. A. Lead"
    assert "Ed25519" in cert["authorisation"]["signature"]
    load = next(r for r in cert["results"] if r["plan_id"] == "L1")
    assert load["measured"][0]["unit"] == "W" and 300 <= load["measured"][0]["value"] <= 600
    # every result's evidence is in the sealed set
    for result in cert["results"]:
        assert result["evidence"]
        assert all((certified / e).is_file() for e in result["evidence"]), result["evidence"]


def test_the_sealed_set_verifies_and_tampering_is_named(
    lab: Lab, certified: Path, tmp_path: Path
) -> None:
    proc = hil("report", "verify", str(certified), "--public-key", str(lab.public))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "intact, signed by ed25519:" in proc.stdout
    copy = tmp_path / "copy"
    shutil.copytree(certified, copy)
    record = sorted((copy / "hil-results").glob("A1-*.json"))[0]
    record.write_text(record.read_text().replace('"passed"', '"skipped"', 1))
    proc = hil("report", "verify", str(copy), "--public-key", str(lab.public))
    assert proc.returncode == 1
    assert f"hil-results/{record.name}: changed after signing" in proc.stdout


def test_deleting_a_requirements_plan_makes_it_incomplete(
    lab: Lab, certified: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(certified, copy)
    for record in (copy / "hil-results").glob("L1-*.json"):
        record.unlink()
    proc = hil(
        "report",
        "certificate",
        str(copy),
        "--bench",
        str(lab.bench),
        "--requirements",
        str(lab.requirements),
        "--canaries",
        str(lab.canaries),
        "--key",
        str(lab.key),
    )
    assert proc.returncode == 1
    assert "INCOMPLETE" in proc.stdout and "REQ-TEST-LOAD-001 is not covered" in proc.stdout
    assert hil("report", "verify", str(copy)).returncode == 0  # re-sealed after the change


def test_an_injected_defect_is_not_certified_naming_the_requirement(
    lab: Lab, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    proc = lab.certify(reports, "--defect", "smart_plug:no_overcurrent_trip", "--no-canaries")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cert = json.loads((reports / "certificate" / "certificate.json").read_text())
    assert cert["verdict"]["value"] == "NOT CERTIFIED"
    assert "REQ-PLUG-OC-001" in cert["verdict"]["reason"]
    assert "NOT CERTIFIED" in proc.stdout
    # the failed plan triggered the interlock: the plug's relay was opened, and it says so
    record = json.loads(next((reports / "hil-results").glob("A1-*.json")).read_text())
    assert record["interlock"]["reason"] == "plan A1 failed"
    assert record["interlock"]["unreachable"] == []
    plug = next(d for d in record["interlock"]["devices"] if d["device"] == "smart_plug")
    assert plug["actions"] == ["relay open"]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing: `make install` installs it")
        pytest.skip("Debian's chromium is not installed (make install installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


def test_the_certificate_renders_in_chromium(browser: object, certified: Path) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((certified / "certificate" / "certificate.html").as_uri())
    verdict = page.locator("#verdict")
    assert verdict.is_visible() and verdict.inner_text() == "CERTIFIED"
    table = page.locator("#traceability")
    assert table.is_visible()
    assert table.locator("tbody tr").count() == 2
    assert "REQ-PLUG-OC-001" in table.inner_text()
    plot = page.locator("svg.plot").first
    plot.scroll_into_view_if_needed()
    assert plot.is_visible() and plot.bounding_box() is not None
    assert page.locator("footer").inner_text().startswith("End of report HIL-")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "certificate.png"), full_page=True)
    assert [u for u in requests if not u.startswith("file://")] == []  # nothing fetched
    page.close()


def test_the_allure_report_renders_in_chromium(browser: object, certified: Path) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto((certified / "allure-report" / "index.html").as_uri())
    page.wait_for_selector("text=test cases", timeout=30_000)
    assert page.locator("text=test cases").first.is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "allure-overview.png"), full_page=True)
    page.goto((certified / "allure-report" / "index.html").as_uri() + "#suites")
    for text in ("testplans.safety", "A1-plug-overcurrent", "A1: Smart plug overcurrent trip"):
        page.locator(f"text={text}").first.click(timeout=30_000)
    assert page.locator("text=REQ-PLUG-OC-001").first.is_visible()  # the requirement link
    page.locator("text=plot-relay-opens.png").first.click(timeout=30_000)
    plot = page.locator("img[src^='data:image/png']").first
    plot.wait_for(state="visible", timeout=30_000)
    plot.scroll_into_view_if_needed()
    assert plot.is_visible()
    box = plot.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 80
    plot.screenshot(path=str(SCREENSHOTS / "allure-plot.png"))
    page.close()


def test_bench_secrets_never_reach_a_report(certified: Path) -> None:
    leaks = [
        str(path.relative_to(certified))
        for path in certified.rglob("*")
        if path.is_file() and SECRET.encode() in path.read_bytes()
    ]
    assert leaks == []
    record = next((certified / "hil-results").glob("L1-*.json")).read_text()
    assert "operator ***" in record  # it was used, and masked
