"""The fuzzers' strategies and oracles, without a bench: each kind of input is what its
category says (checked against the real codec, SCPI parser, DBC and UDS ECU), and the
engine shrinks to the minimal input and restarts a device it broke."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.ev.driver import e2e_profile, load_database
from hil.explore.fuzz.can_frames import WRONG_LENGTHS, Frame, _raw_range, can_examples
from hil.explore.fuzz.engine import Example, FuzzTarget, Outcome, run_fuzz
from hil.explore.fuzz.miot import METHODS, _arity_ok, _proper_error, miot_examples
from hil.explore.fuzz.profiles import profile_settings
from hil.explore.fuzz.scpi import scpi_examples, wire_bytes
from hil.miot.codec import MAX_LINE_BYTES, LineError, decode_line
from hil.miot.spec import load_spec_cached
from hil.scpi.server import ScpiServer
from hil.uds.ecu import UdsEcu

ROOT = Path(__file__).resolve().parents[2]
PLUG = miot_examples(load_spec_cached(ROOT / "devices" / "smart_plug" / "spec.yaml"))
DB = load_database()
RECEIVES = [DB.get_message_by_name(n) for n in ("BODY_LockCmd", "HIL_VehicleSim")]
OWN = [DB.get_message_by_name("BODY_Status")]
CAN = can_examples(DB, RECEIVES, OWN, e2e_profile(), uds=True)
SCPI = scpi_examples([])  # the IEEE 488.2 common commands every ScpiServer serves


@given(PLUG["malformed"])
def test_malformed_miot_lines_break_the_grammar(example: Example) -> None:
    with pytest.raises(LineError):
        decode_line(example.wire.strip("\n"))


@given(PLUG["overlong"])
def test_overlong_miot_lines_exceed_512_bytes(example: Example) -> None:
    assert len(example.wire.encode()) > MAX_LINE_BYTES


@given(st.one_of(PLUG["unknown_method"], PLUG["bad_arity"]))
def test_unknown_methods_and_bad_arity(example: Example) -> None:
    line = decode_line(example.wire)
    method, args = str(line.args[0]), line.args[1:]
    if example.category == "unknown_method":
        assert method not in METHODS
    else:
        assert not _arity_ok(method, len(args))


@given(PLUG["set"])
def test_valid_miot_writes_are_valid_for_the_spec(example: Example) -> None:
    spec = load_spec_cached(ROOT / "devices" / "smart_plug" / "spec.yaml")
    _, siid, piid, value = decode_line(example.wire).args
    prop = spec.prop(int(siid), int(piid))
    assert prop is not None and prop.check(value) is None


def test_miot_error_rule() -> None:
    assert _proper_error("unknown_method", 'error "unknown\\u0020method" -5001')
    assert not _proper_error("unknown_method", 'error "x" -4003')  # the smart plug's defect
    assert not _proper_error("unknown_method", "result 2 1 -4003")  # only an error will do
    assert _proper_error("unknown_ids", "result 9 9 -4003")
    assert not _proper_error("unknown_ids", "result 9 9 0 true")
    assert not _proper_error("malformed", "")  # no answer
    assert _proper_error("escaped", "result 2 1 -4005")


@given(st.one_of(SCPI["malformed"], SCPI["unknown"], SCPI["binary"], SCPI["overlong_header"]))
def test_bad_scpi_input_queues_a_command_error(example: Example) -> None:
    server = ScpiServer("ACME,X,1,1")
    server.handle_line(wire_bytes(example).decode("utf-8", errors="replace"))
    assert any(-199 <= code <= -100 for code, _ in server.errors), (example, server.errors)


@given(SCPI["valid"])
def test_valid_scpi_input_queues_no_command_error(example: Example) -> None:
    server = ScpiServer("ACME,X,1,1")
    server.handle_line(example.wire)
    assert not server.errors, (example, server.errors)


@given(CAN["wrong_length"])
def test_wrong_length_frames(example: Example) -> None:
    frame = example.data
    assert isinstance(frame, Frame)
    assert len(frame.data) != DB.get_message_by_frame_id(frame.frame_id).length


@given(CAN["unknown_id"])
def test_unknown_ids_are_neither_in_the_dbc_nor_diagnostic(example: Example) -> None:
    frame = example.data
    assert isinstance(frame, Frame) and example.invalid
    assert frame.frame_id not in {m.frame_id for m in DB.messages}
    assert not 0x7DF <= frame.frame_id <= 0x7EF


@given(st.one_of(CAN["out_of_range"], CAN["boundary"]))
def test_out_of_range_and_boundary_frames(example: Example) -> None:
    frame = example.data
    assert isinstance(frame, Frame)
    message = DB.get_message_by_frame_id(frame.frame_id)
    raw = {k: int(v) for k, v in message.decode_simple(frame.data, False, False).items()}  # type: ignore[arg-type]
    signals = {s.name: s for s in message.signals}
    inside = {
        n: _raw_range(signals[n])[0] <= v <= _raw_range(signals[n])[1] for n, v in raw.items()
    }
    if example.category == "out_of_range":
        assert not all(inside.values())
    else:
        assert all(v in _raw_range(signals[n]) for n, v in raw.items())


@given(st.one_of(CAN["uds_wrong_length"], CAN["uds_unknown_service"]))
def test_uds_requests_get_the_nrc_the_fuzzer_expects_from_hils_ecu(example: Example) -> None:
    frame = example.data
    assert isinstance(frame, Frame) and frame.uds is not None
    if example.category == "uds_wrong_length":
        assert len(frame.uds) in WRONG_LENGTHS[frame.uds[0]]
    (_, reply), *_ = UdsEcu().handle(frame.uds)
    assert frame.expect_nrc is not None
    assert reply == bytes([0x7F, frame.uds[0], frame.expect_nrc])


class _Counter(FuzzTarget):
    """A device that hangs for good on any number of 10 or more (and says so on its probe)."""

    protocol, device = "toy", "counter"

    def __init__(self) -> None:
        self.hung = False
        self.restarts = 0

    def examples(self) -> dict[str, st.SearchStrategy[Example]]:
        numbers = st.integers(0, 1000).map(lambda n: Example("number", str(n), False, True))
        return {"number": numbers}

    def send(self, example: Example) -> None:
        self.hung = self.hung or int(example.wire) >= 10

    def probe(self) -> str | None:
        return "hung" if self.hung else None

    def judge(self, example: Example) -> Outcome:
        return Outcome("")

    def restart(self) -> None:
        self.hung = False
        self.restarts += 1


def test_engine_shrinks_to_the_minimal_input_and_restarts_the_device() -> None:
    target = _Counter()
    report = run_fuzz(target, "ci")
    assert report.finding is not None and not report.flaky
    assert report.finding.input == "10"
    assert report.finding.reason == "liveness lost after '10': hung"
    assert target.restarts == report.liveness_failures  # before each example after a hang
    assert not target.hung


def test_profiles() -> None:
    ci, deep = profile_settings("ci"), profile_settings("fuzz-deep")
    assert ci.derandomize and ci.deadline is None and ci.database is None
    assert not deep.derandomize and deep.max_examples > ci.max_examples
    with pytest.raises(ValueError, match="unknown fuzz profile"):
        profile_settings("quick")
