"""The pytest plugin, black-box through pytester: collection, verdicts, Allure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import EMULATED_BENCH, PLANS, ROOT

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestAssertRewriteWarning")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project folder with the shipped plans and fixtures, like a lab's checkout."""
    shutil.copytree(PLANS, pytester.path / "testplans")
    pytester.makeconftest('pytest_plugins = ("fixtures.devices",)\n')
    pytester.makeini("[pytest]\nhil_plan_roots = testplans\n")
    return pytester


def _results(alluredir: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")]


def test_plans_collect_with_stable_ids(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("testplans", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "testplans/energy/N1-plug-standby.yaml::N1",
            "testplans/safety/A1-plug-overcurrent.yaml::A1",
            "testplans/safety/E1-speed-auto-lock.yaml::E1",
        ]
    )
    assert result.ret == 0


def test_plan_passes_and_allure_records_steps_links_attachments(project: pytest.Pytester) -> None:
    alluredir = project.path / "allure"
    result = project.runpytest_subprocess(
        "testplans/safety/E1-speed-auto-lock.yaml",
        "--bench",
        str(EMULATED_BENCH),
        "--alluredir",
        str(alluredir),
        "--hil-results",
        str(project.path / "records"),
    )
    result.assert_outcomes(passed=1)
    (res,) = _results(alluredir)
    assert res["status"] == "passed"
    assert res["name"] == "E1: Speed auto-lock"
    labels = {(lab["name"], lab["value"]) for lab in res["labels"]}  # type: ignore[attr-defined]
    assert ("severity", "critical") in labels and ("story", "E1") in labels
    assert ("epic", "Car") in labels and ("feature", "safety") in labels
    env = (alluredir / "environment.properties").read_text()
    assert "bench.id=emulated-home" in env and "device.ev.definition.ev.dbc.sha256=" in env
    assert "device.ev.firmware=" in env  # identities, as the devices reported them
    names = {c["name"] for c in json.loads((alluredir / "categories.json").read_text())}
    assert {"Safety violation", "Deadline missed", "Device not responding", "Plan error"} <= names
    links = res["links"]
    assert {"type": "requirement", "name": "REQ-CAR-LOCK-001", "url": "REQ-CAR-LOCK-001"} in links  # type: ignore[operator]
    titles = [s["name"] for s in res["steps"]]  # type: ignore[attr-defined]
    assert any("[steps] expect" in t for t in titles), titles
    attachments = {a["name"] for a in res["attachments"]}  # type: ignore[attr-defined]
    assert "ev.asc" in attachments and "hil plan record" in attachments
    records = list((project.path / "records").glob("E1-*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["status"] == "passed"


def test_defect_fails_the_plan_with_its_reason_in_the_report(project: pytest.Pytester) -> None:
    alluredir = project.path / "allure"
    result = project.runpytest_subprocess(
        "testplans/safety/A1-plug-overcurrent.yaml",
        "--bench",
        str(EMULATED_BENCH),
        "--hil-defect",
        "smart_plug:no_overcurrent_trip",
        "--alluredir",
        str(alluredir),
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*A1 FAILED ?deadline missed?: step relay-opens*within 2000 ms*"])
    assert "Traceback" not in result.stdout.str()
    (res,) = _results(alluredir)
    assert res["status"] == "failed"
    assert "step relay-opens" in res["statusDetails"]["message"]  # type: ignore[index]
    failed_steps = [s for s in res["steps"] if s["status"] == "failed"]  # type: ignore[attr-defined]
    assert (
        len(failed_steps) == 1 and "relay-opens" not in failed_steps[0]["name"]
    )  # titled by action


def test_hand_written_test_uses_the_same_fixtures(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess(
        "testplans/acceptance/test_plug_power_chain.py", "--bench", str(EMULATED_BENCH)
    )
    result.assert_outcomes(passed=2)


def test_bad_bench_is_reported_without_traceback(project: pytest.Pytester) -> None:
    bad = project.path / "bad.yaml"
    bad.write_text(
        "spec: 1\nid: x\ndevices:\n  ev: {type: ev, emulated: true, can: {interface: virtual}}\n"
    )
    result = project.runpytest_subprocess(
        "testplans/safety/E1-speed-auto-lock.yaml", "--bench", str(bad)
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{bad}:4:*missing required key 'channel' in devices.ev.can*"])
    assert "Traceback" not in result.stdout.str()


def test_unknown_signal_in_a_plan_is_reported_without_traceback(project: pytest.Pytester) -> None:
    plan = project.path / "testplans" / "safety" / "E1-speed-auto-lock.yaml"
    plan.write_text(plan.read_text().replace("BODY_Status.LockRR", "BODY_Status.LockRRR", 1))
    result = project.runpytest_subprocess(str(plan), "--bench", str(EMULATED_BENCH))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*E1-speed-auto-lock.yaml:*unknown signal 'BODY_Status.LockRRR'*"])
    assert "Traceback" not in result.stdout.str()


def test_malformed_plan_is_a_located_collection_error(project: pytest.Pytester) -> None:
    plan = project.path / "testplans" / "broken.yaml"
    plan.write_text(
        "spec: 1\nid: B\ntitle: broken\ndevices: [ev]\nsteps:\n  - wait: {duration: 1}\n  - wait: [\n"
    )
    result = project.runpytest_subprocess(str(plan), "--bench", str(EMULATED_BENCH))
    assert result.ret == 2  # collection error
    result.stdout.fnmatch_lines([f"*{plan}:8:*malformed YAML*"])
    assert "Traceback" not in result.stdout.str()


def test_root_project_config_registers_plan_roots() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'hil_plan_roots = ["testplans"]' in text


def test_matrix_items_tags_as_markers_and_k_selection(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess(
        "testplans", "--collect-only", "-q", "-m", "safety", "-k", "E2 and not 60"
    )
    result.stdout.fnmatch_lines(
        [
            "testplans/safety/E2-no-unlock-while-moving.yaml::E2[speed_kmh=16]",
            "testplans/safety/E2-no-unlock-while-moving.yaml::E2[speed_kmh=30]",
        ]
    )
    assert "speed_kmh=60" not in result.stdout.str()
    assert "A0" not in result.stdout.str()  # tagged home/miot, not safety


def test_command_line_parameter_and_answers_file(project: pytest.Pytester) -> None:
    answers = project.path / "answers.yaml"
    answers.write_text("connect-load: no\n")
    result = project.runpytest_subprocess(
        "testplans/acceptance/PM1-plug-meter-accuracy.yaml",
        "--bench",
        str(EMULATED_BENCH),
        "--hil-answers",
        str(answers),
        "--hil-param",
        "PM1.load_a=3",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*PM1 FAILED ?operator?: step connect-load*Connect a 3 A resistive load*"]
    )


def test_gated_plan_is_reported_skipped_with_the_reason(project: pytest.Pytester) -> None:
    bench = project.path / "bench.yaml"
    bench.write_text(
        EMULATED_BENCH.read_text()
        .replace("answers: emulated-answers.yaml\n", "")
        .replace(
            '    visa: {resource: auto, backend: "@py"}\n',
            '    visa: {resource: auto, backend: "@py"}\n    capabilities: [power_meter]\n',
        )
    )
    result = project.runpytest_subprocess(
        "testplans/energy/NE1-integrated-energy.yaml", "--bench", str(bench), "-rs"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*NE1: requires power_analyzer.energy_meter; the bench lacks power_analyzer.energy_meter*"]
    )


def test_plans_run_under_xdist_each_worker_with_its_own_bench(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess(
        "testplans/safety",
        "--bench",
        str(EMULATED_BENCH),
        "-n",
        "2",
        "-k",
        "speed-auto-lock or plug-overcurrent or 16",
    )
    result.assert_outcomes(passed=3)


def test_last_failed_reruns_only_the_failed_plan(project: pytest.Pytester) -> None:
    first = project.runpytest_subprocess(
        "testplans/safety",
        "--bench",
        str(EMULATED_BENCH),
        "-k",
        "speed-auto-lock or plug-overcurrent",
        "--hil-defect",
        "ev:no_auto_lock",
    )
    first.assert_outcomes(passed=1, failed=1)
    again = project.runpytest_subprocess(
        "testplans/safety",
        "--bench",
        str(EMULATED_BENCH),
        "-k",
        "speed-auto-lock or plug-overcurrent",
        "--lf",
    )
    again.assert_outcomes(passed=1)  # only E1 ran again, now on the healthy bench
    again.stdout.fnmatch_lines(
        ["run-last-failure: rerun previous 1 failure*", "*E1-speed-auto-lock.yaml .*"]
    )
