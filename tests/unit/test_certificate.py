"""The certificate: verdict rules, traceability both ways, canaries, schema, offline HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from hil.bench.loader import LoadedBench, load_bench
from hil.errors import ConfigError
from hil.report.canary import load_canaries
from hil.report.certificate import CanaryExpectation, Signing, build, canaries
from hil.report.certificate_html import plots_from_records, render
from hil.report.certificate_model import Certificate, schema_text
from hil.report.commands import expected_plans, merge, write_certificate
from hil.report.manifest import keygen, verify
from hil.report.record import (
    MeasurementRecord,
    PlanRecord,
    Status,
    StepRecord,
    read_records,
    write_record,
)
from hil.report.requirements import Requirement, load_requirements
from tests.conftest import EMULATED_BENCH, PLANS

BENCH = """\
spec: 1
id: cert-bench
name: certificate test bench
lab: {name: Test lab, location: room 1, operator: tester}
time_scale: 0.1
devices:
  smart_plug:
    type: smart_plug
    emulated: true
    serial: {port: auto}
"""
SIGNING = Signing("A. Auditor", "QA lead", "test seal")
REQS = [
    Requirement(
        id="REQ-APPL-PLUG-001", title="Plug trips on overcurrent", safety_class="IEC 60335-1"
    ),
    Requirement(id="REQ-ENERGY-STANDBY-001", title="Standby at most 0.50 W"),
]
CANARY = CanaryExpectation("A1", ("smart_plug:no_overcurrent_trip",), "relay-opens")


@pytest.fixture
def bench(tmp_path: Path) -> LoadedBench:
    path = tmp_path / "bench.yaml"
    path.write_text(BENCH, encoding="utf-8")
    return load_bench(path)


def record(
    plan: str,
    status: Status,
    reqs: list[str],
    *,
    defects: dict[str, list[str]] | None = None,
    failed_step: str = "",
    started: float = 1_790_000_000.0,
    measurement: MeasurementRecord | None = None,
) -> PlanRecord:
    step = StepRecord(
        id=failed_step or "check",
        title="check",
        kind="measure" if measurement else "expect",
        section="steps",
        line=10,
        status=Status.FAILED if failed_step else Status.PASSED,
        observed={} if measurement else {"latency_s": 0.12, "bound": "within 2 s"},
        measurement=measurement,
    )
    return PlanRecord(
        plan_id=plan,
        title=f"plan {plan}",
        file=f"testplans/{plan}.yaml",
        file_sha256="ab" * 32,
        version="1",
        requirements=reqs,
        severity="critical",
        tags=[],
        bench_id="cert-bench",
        bench_sha256="cd" * 32,
        defects=defects or {},
        time_scale=0.1,
        status=status,
        reason=f"[deadline missed] step {failed_step} ..." if failed_step else "",
        started=started,
        ended=started + 3,
        steps=[step],
        identities={"smart_plug": {"model": "cuco.plug.v3", "firmware": "0011"}},
    )


STANDBY = MeasurementRecord(
    name="power_analyzer.P",
    value=0.31,
    unit="W",
    statistic="mean",
    limit="<= 0.5 W",
    limits={"max": 0.5},
    outcome="pass",
    samples=[(float(t), 0.31 + 0.001 * (t % 3)) for t in range(20)],
)


def healthy() -> list[PlanRecord]:
    return [
        record("A1", Status.PASSED, ["REQ-APPL-PLUG-001"]),
        record("N1", Status.PASSED, ["REQ-ENERGY-STANDBY-001"], measurement=STANDBY),
    ]


def canary_caught() -> PlanRecord:
    return record(
        "A1",
        Status.FAILED,
        ["REQ-APPL-PLUG-001"],
        defects={"smart_plug": ["no_overcurrent_trip"]},
        failed_step="relay-opens",
    )


def certify(
    bench: LoadedBench,
    tmp_path: Path,
    records: list[PlanRecord],
    canaries: list[PlanRecord],
    reqs: list[Requirement] = REQS,
    expected: tuple[str, ...] = (),
) -> Certificate:
    as_json = [json.loads(json.dumps(r.to_json(), default=str)) for r in records]
    canary_json = [json.loads(json.dumps(r.to_json(), default=str)) for r in canaries]
    return build(
        bench=bench,
        records=as_json,
        canary_records=canary_json,
        expected_canaries=[CANARY],
        requirements=reqs,
        root=tmp_path,
        signing=SIGNING,
        expected_plans=expected,
    )


def test_everything_passing_and_covered_is_certified(bench: LoadedBench, tmp_path: Path) -> None:
    cert = certify(bench, tmp_path, healthy(), [canary_caught()])
    assert cert.verdict.value == "CERTIFIED", cert.verdict.reason
    assert [r.conformity for r in cert.traceability] == ["CONFORMS", "CONFORMS"]
    assert cert.canaries[0].caught
    row = cert.traceability[1]
    assert row.plans == ["N1 (passed)"]
    assert any("0.31 W" in v for v in row.key_values)
    assert cert.items[0].identity["model"] == "cuco.plug.v3"
    assert cert.items[0].definition_sha256  # the MIoT spec's hash
    assert any("0.1 x real time" in d for d in cert.deviations)
    assert cert.report_id.startswith("HIL-cert-bench-")
    jsonschema.validate(cert.model_dump(mode="json"), json.loads(schema_text()))


def test_a_failed_plan_is_not_certified_naming_the_requirement(
    bench: LoadedBench, tmp_path: Path
) -> None:
    records = healthy()
    records[0] = record("A1", Status.FAILED, ["REQ-APPL-PLUG-001"], failed_step="relay-opens")
    cert = certify(bench, tmp_path, records, [canary_caught()])
    assert cert.verdict.value == "NOT CERTIFIED"
    assert "REQ-APPL-PLUG-001" in cert.verdict.reason and "A1" in cert.verdict.reason
    assert cert.traceability[0].conformity == "DOES NOT CONFORM"


def test_a_requirement_without_a_plan_makes_it_incomplete(
    bench: LoadedBench, tmp_path: Path
) -> None:
    reqs = [*REQS, Requirement(id="REQ-HOME-X9-001", title="Nobody verifies this")]
    cert = certify(bench, tmp_path, healthy(), [canary_caught()], reqs)
    assert cert.verdict.value == "INCOMPLETE"
    assert "REQ-HOME-X9-001 is not covered" in cert.verdict.reason
    assert cert.traceability[-1].conformity == "NOT COVERED"


def test_plans_without_declared_requirements_are_listed(bench: LoadedBench, tmp_path: Path) -> None:
    records = [
        *healthy(),
        record("PM1", Status.PASSED, []),
        record("Z9", Status.PASSED, ["REQ-UNKNOWN-1"]),
    ]
    cert = certify(bench, tmp_path, records, [canary_caught()])
    assert cert.plans_without_requirements == ["PM1", "Z9 (names undeclared REQ-UNKNOWN-1)"]


def test_invalid_measurement_conditions_make_it_invalid(bench: LoadedBench, tmp_path: Path) -> None:
    records = healthy()
    records[1].status = "invalid"  # type: ignore[assignment]
    cert = certify(bench, tmp_path, records, [canary_caught()])
    assert cert.verdict.value == "INVALID"
    assert cert.traceability[1].conformity == "INVALID"


@pytest.mark.parametrize("canary", ["passed", "missing"])
def test_an_uncaught_or_missing_canary_makes_it_incomplete(
    bench: LoadedBench, tmp_path: Path, canary: str
) -> None:
    runs = (
        []
        if canary == "missing"
        else [record("A1", Status.PASSED, [], defects={"smart_plug": ["no_overcurrent_trip"]})]
    )
    cert = certify(bench, tmp_path, healthy(), runs)
    assert cert.verdict.value == "INCOMPLETE"
    assert "canary A1 with smart_plug:no_overcurrent_trip was not caught" in cert.verdict.reason
    assert not cert.canaries[0].caught


def test_a_run_cut_short_is_incomplete_naming_what_is_missing(
    bench: LoadedBench, tmp_path: Path
) -> None:
    cert = certify(
        bench, tmp_path, healthy(), [canary_caught()], expected=("A1", "N1", "E2[speed_kmh=30]")
    )
    assert cert.verdict.value == "INCOMPLETE"
    assert "E2[speed_kmh=30] has no result" in cert.verdict.reason


def test_the_html_is_self_contained_and_names_the_report_on_every_page(
    bench: LoadedBench, tmp_path: Path
) -> None:
    records = healthy()
    cert = certify(bench, tmp_path, records, [canary_caught()])
    html = render(cert, plots_from_records(r.to_json() for r in records))
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"""(src|href)\s*=|url\(""", html)
    assert html.count(cert.report_id) >= 3  # title, repeated page header, end of report
    assert "End of report" in html and 'id="traceability"' in html
    assert "<svg" in html and "limit 0.5 W" in html


def test_requirements_and_canary_files_are_checked(tmp_path: Path) -> None:
    good = tmp_path / "requirements.yaml"
    good.write_text("spec: 1\nrequirements:\n  - {id: REQ-A-1, title: one, asil: B}\n")
    assert load_requirements(good)[0].classification == "ASIL B"
    dup = tmp_path / "dup.yaml"
    dup.write_text(
        "spec: 1\nrequirements:\n  - {id: REQ-A-1, title: one}\n  - {id: REQ-A-1, title: two}\n"
    )
    with pytest.raises(ConfigError, match=r"dup.yaml:4:10: .*declared twice"):
        load_requirements(dup)
    canaries = tmp_path / "canaries.yaml"
    canaries.write_text(
        "spec: 1\ncanaries:\n  - {plan: E1, defect: ev:slow_auto_lock, step: x, typo: 1}\n"
    )
    with pytest.raises(ConfigError, match="typo"):
        load_canaries(canaries)


def test_write_certificate_seals_and_tampering_is_caught(
    bench: LoadedBench, tmp_path: Path
) -> None:
    results = tmp_path / "reports"
    for rec in healthy():
        write_record(rec, results / "hil-results")
    write_record(canary_caught(), results / "canaries")
    (tmp_path / "req.yaml").write_text(
        "spec: 1\nrequirements:\n"
        "  - {id: REQ-APPL-PLUG-001, title: trips}\n  - {id: REQ-ENERGY-STANDBY-001, title: standby}\n"
    )
    (tmp_path / "canaries.yaml").write_text(
        "spec: 1\ncanaries:\n  - {plan: A1, defect: smart_plug:no_overcurrent_trip, step: relay-opens}\n"
    )
    private, public = keygen(tmp_path / "key.pem")
    cert = write_certificate(
        results,
        bench_path=bench.path,
        requirements=tmp_path / "req.yaml",
        canaries=tmp_path / "canaries.yaml",
        key_path=private,
        plan_roots=[],
        authorised_by="A. Auditor",
        role="QA lead",
    )
    assert cert.verdict.value == "CERTIFIED", cert.verdict.reason
    written = json.loads((results / "certificate" / "certificate.json").read_text())
    jsonschema.validate(
        written, json.loads((results / "certificate" / "certificate.schema.json").read_text())
    )
    assert written["report_id"] == cert.report_id
    assert verify(results).ok
    record_file = sorted((results / "hil-results").glob("A1-*.json"))[0]
    record_file.write_text(record_file.read_text().replace('"passed"', '"failed"'))
    check = verify(results)
    assert not check.ok
    assert check.changed == [f"hil-results/{record_file.name}"]
    assert len(read_records(results / "hil-results")) == 2


def test_no_canary_runs_leave_tool_confidence_unshown(bench: LoadedBench, tmp_path: Path) -> None:
    records = [json.loads(json.dumps(r.to_json(), default=str)) for r in healthy()]
    cert = build(
        bench=bench,
        records=records,
        canary_records=[],
        expected_canaries=[],
        requirements=REQS,
        root=tmp_path,
        signing=SIGNING,
    )
    assert cert.verdict.value == "INCOMPLETE"
    assert "no canary runs" in cert.verdict.reason


def test_merge_combines_result_sets_and_refuses_conflicts(tmp_path: Path) -> None:
    first, second, merged = tmp_path / "job1", tmp_path / "job2", tmp_path / "merged"
    write_record(healthy()[0], first / "hil-results")
    write_record(healthy()[1], second / "hil-results")
    write_record(canary_caught(), second / "canaries")
    assert merge(merged, [first, second]) == 3
    assert {r["plan_id"] for r in read_records(merged / "hil-results")} == {"A1", "N1"}
    assert len(read_records(merged / "canaries")) == 1
    assert merge(merged, [first]) == 1  # the same file again is harmless
    clash = sorted((first / "hil-results").glob("*.json"))[0]
    clash.write_text(clash.read_text().replace('"passed"', '"failed"', 1))
    with pytest.raises(ConfigError, match="already merged"):
        merge(merged, [first])


def test_a_validity_gate_canary_is_caught_by_an_invalid_run(tmp_path: Path) -> None:
    gate = CanaryExpectation("N4", ("power_analyzer:no_thd",), "standby-power", "invalid", 0.01)
    run = record("N4", Status.PASSED, [], defects={"power_analyzer": ["no_thd"]})
    run.status = run.steps[0].status = Status.INVALID
    run.steps[0].id = "standby-power"
    [check] = canaries([gate], [json.loads(json.dumps(run.to_json(), default=str))])
    assert check.caught and check.expected_status == "invalid"
    path = tmp_path / "canaries.yaml"
    path.write_text(
        "spec: 1\ncanaries:\n  - {plan: N4, defect: 'power_analyzer:no_thd', step: standby-power,"
        " status: invalid, time_scale: 0.01}\n"
    )
    assert load_canaries(path) == [gate]


def test_the_plans_a_full_run_covers_leave_explore_files_to_pytest() -> None:
    """Explore files sit among the plans (testplans/explore/) but write no plan record:
    the certificate must neither expect one nor choke on reading them as plans."""
    covered = expected_plans([PLANS], EMULATED_BENCH)
    assert "E1" in covered and "E2[speed_kmh=30]" in covered
    assert not [c for c in covered if c.startswith("XE")]
