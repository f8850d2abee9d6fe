"""Protocol fuzzing on the emulated bench: healthy devices pass the fuzz-ci profile with
their error answers right, and every injected robustness defect is found, with the
reason and the shrunk input that shows it (fuzz-ci is derandomized: same run each time)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.cli import main
from hil.explore.fuzz.report import ERROR_ANSWER, LIVENESS, SAFETY, FuzzReport
from hil.explore.fuzz.run import fuzz_device
from hil.uds import protocol as uds_protocol
from tests.conftest import EMULATED_BENCH


def fuzz(device: str, *defects: str) -> FuzzReport:
    return fuzz_device(EMULATED_BENCH, device, profile="ci", defects=defects)


@pytest.mark.parametrize(
    ("device", "protocol", "categories"),
    [
        ("ev", "can", {"wrong_length", "stale_counter", "bad_checksum", "uds_wrong_length"}),
        ("smart_plug", "miot", {"overlong", "malformed", "unknown_method", "bad_arity"}),
        ("power_analyzer", "scpi", {"overlong_header", "malformed", "unknown", "binary"}),
    ],
)
def test_healthy_device_passes_and_answers_errors(
    device: str, protocol: str, categories: set[str]
) -> None:
    report = fuzz(device)
    assert report.protocol == protocol
    assert report.finding is None, report.summary()
    assert report.liveness_failures == 0
    assert categories <= set(report.sent), report.sent
    assert all(count >= 1 for count in report.sent.values())
    # every bad input was answered as the protocol requires (a wrong answer is a finding)
    assert report.errors_answered >= 8, report.summary()
    assert report.seed == "derandomized" and report.profile == "ci"


@pytest.mark.parametrize(
    ("device", "defect", "kind", "category", "minimal", "words"),
    [
        # the new robustness defects, found by fuzzing
        ("smart_plug", "hangs_on_long_line", LIVENESS, "overlong", None, "did not poll"),
        ("ev", "crashes_on_wrong_length", LIVENESS, "wrong_length", "210#", "no DRIVE_Status"),
        (
            "power_analyzer",
            "hangs_on_long_input",
            LIVENESS,
            "overlong_header",
            None,
            "no answer to *IDN?",
        ),
        (
            "power_analyzer",
            "silent_syntax_error",
            ERROR_ANSWER,
            "malformed",
            None,
            "empty error queue",
        ),
        # defects that plans catch too: the fuzzer's oracles find them on their own
        ("ev", "accepts_stale_counter", SAFETY, "stale_counter", None, "LockFL 1 → 0"),
        ("smart_plug", "bad_error_code", ERROR_ANSWER, "unknown_method", "down _", "-4003"),
    ],
)
def test_fuzzing_finds_the_defect(
    device: str, defect: str, kind: str, category: str, minimal: str | None, words: str
) -> None:
    report = fuzz(device, defect)
    finding = report.finding
    assert finding is not None, f"{device}:{defect} not found\n{report.summary()}"
    assert (finding.kind, finding.category) == (kind, category), report.summary()
    assert words in finding.reason, finding.reason
    assert not report.flaky, report.summary()
    if minimal is not None:
        assert finding.input == minimal
    if category.startswith("overlong"):
        limit = 512 if report.protocol == "miot" else 1024
        # shrunk to just over the limit: the length is what breaks it
        assert limit < len(finding.input.encode()) <= limit + 8, len(finding.input)
    if kind == LIVENESS:
        assert f"liveness lost after {finding.input[:20]!r}"[:-1] in finding.reason


def test_hil_fuzz_command_prints_and_writes_the_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fuzz", "--bench", str(EMULATED_BENCH), "--device", "power_analyzer"]
    rc = main([*args, "--defect", "silent_syntax_error", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "FINDING (error-answer, malformed)" in out and "minimal input: " in out
    saved = json.loads((tmp_path / "power_analyzer-scpi.json").read_text(encoding="utf-8"))
    assert saved["finding"]["input"] in out
    assert saved["profile"] == "ci" and saved["seed"] == "derandomized"
    assert saved["defects"] == ["silent_syntax_error"]
    assert main([*args, "--protocol", "miot", "--out", str(tmp_path)]) == 2  # speaks SCPI


def test_uds_nrc_oracle_finds_an_ecu_answering_the_wrong_nrc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # no shipped defect breaks the NRC rule, so the car's real ECU is made to: it answers
    # a request of the wrong length with 0x31 (out of range) instead of 0x13
    monkeypatch.setattr(uds_protocol, "BAD_LENGTH", 0x31)
    report = fuzz("ev")
    finding = report.finding
    assert finding is not None, report.summary()
    assert (finding.kind, finding.category) == (ERROR_ANSWER, "uds_wrong_length")
    assert "NRC 0x31 (expected NRC 0x13)" in finding.reason, finding.reason
    assert finding.input.startswith("UDS ") and len(finding.input) <= len("UDS 1011")


def test_the_wallbox_stays_alive_on_an_out_of_range_car_demand() -> None:
    """Found by this fuzzer: a simulated car demanding 80.1 A (raw 801 on a 0-80 A
    signal) made the wallbox's MeasuredCurrent unencodable, and EVSE_Status stopped.
    The emulator now saturates a measurement at its signal's range, as an ECU does."""
    report = fuzz("charger")
    assert report.protocol == "can" and "out_of_range" in report.sent
    assert report.finding is None, report.summary()
    assert report.liveness_failures == 0
