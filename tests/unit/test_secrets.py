"""Secrets: referenced from the environment, located when missing, masked everywhere."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hil import secrets
from hil.bench.loader import load_bench
from hil.errors import BenchError
from hil.report.evidence import redact_folder
from hil.report.record import PlanRecord, write_record

BENCH = """\
spec: 1
id: secret-bench
devices:
  smart_plug:
    type: smart_plug
    emulated: true
    serial: {port: auto}
    settings:
      cloud_token: "${ENV:HIL_TEST_CLOUD_TOKEN}"
"""


def test_references_resolve_and_become_secrets() -> None:
    text = secrets.resolve("token=${ENV:T1}", {"T1": "s3cr3t-value-1"})
    assert text == "token=s3cr3t-value-1"
    assert secrets.redact("echo s3cr3t-value-1 back") == "echo *** back"
    assert secrets.redact_bytes(b"<s3cr3t-value-1>") == b"<***>"


def test_a_missing_or_short_secret_is_refused() -> None:
    with pytest.raises(secrets.SecretError, match="T2 is not set"):
        secrets.resolve("${ENV:T2}", {})
    with pytest.raises(secrets.SecretError, match="at least 4 characters"):
        secrets.resolve("${ENV:T3}", {"T3": "ab"})


def test_a_bench_reference_is_located_when_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(BENCH)
    monkeypatch.delenv("HIL_TEST_CLOUD_TOKEN", raising=False)
    with pytest.raises(BenchError, match=r"bench.yaml:9:\d+: .*HIL_TEST_CLOUD_TOKEN is not set"):
        load_bench(path)
    monkeypatch.setenv("HIL_TEST_CLOUD_TOKEN", "tok-1234-abcd")
    loaded = load_bench(path)
    assert loaded.config.devices["smart_plug"].settings["cloud_token"] == "tok-1234-abcd"
    assert secrets.redact("tok-1234-abcd") == "***"


def test_records_logs_and_evidence_are_masked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secrets.resolve("${ENV:T4}", {"T4": "pa55-w0rd-xyz"})
    secrets.install_log_redaction()
    with caplog.at_level(logging.INFO):
        logging.getLogger("hil.test").info("connecting with %s", "pa55-w0rd-xyz")
    assert "pa55-w0rd-xyz" not in caplog.text and "connecting with ***" in caplog.text
    record = PlanRecord(
        plan_id="S1",
        title="uses pa55-w0rd-xyz",
        file="x.yaml",
        file_sha256="",
        version="1",
        requirements=[],
        severity="normal",
        tags=[],
        bench_id="b",
        bench_sha256="",
        defects={},
        time_scale=1.0,
        reason="device echoed pa55-w0rd-xyz",
    )
    written = write_record(record, tmp_path / "records").read_text()
    assert "pa55-w0rd-xyz" not in written and "***" in written
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "plug.serial.jsonl").write_text('{"line": "auth pa55-w0rd-xyz"}\n')
    redact_folder(evidence)
    assert (evidence / "plug.serial.jsonl").read_text() == '{"line": "auth ***"}\n'
