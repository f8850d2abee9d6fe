"""UDS over ISO-TP: the EV's emulated VCU (server) and the bench's client.

Both sides meet on a python-can ``virtual`` channel unique to each test; the
client reads through the real ``CanTransport`` capture. Timing is judged on
the capture timestamps of the recorded exchanges; short S3 and lockout
settings keep the suite quick.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devices.ev import DEVICE_TYPE, EvDriver, EvEmulator
from devices.ev.diagnostics import DTC_LOCKCMD_CHECKSUM, DTC_LOCKCMD_COUNTER
from devices.ev.driver import uds_ids
from hil.errors import ConfigError, DeviceTimeout, ProtocolError
from hil.uds import compute_key
from hil.uds.client import UdsClient
from tests.can_pair import can_pair

S3 = 0.5
LOCKOUT = 0.5
Car = tuple[EvDriver, EvEmulator]


@contextmanager
def car(defects: tuple[str, ...] = (), **settings: object) -> Iterator[Car]:
    settings = {"uds": True, "uds_s3_s": S3, "uds_lockout_s": LOCKOUT, **settings}
    with can_pair(DEVICE_TYPE, defects, settings) as (driver, emu):
        assert isinstance(driver, EvDriver)
        assert isinstance(emu, EvEmulator)
        yield driver, emu


@pytest.fixture
def ev() -> Iterator[Car]:
    with car() as pair:
        yield pair


def nrc_of(call: Callable[[], object]) -> int:
    with pytest.raises(ProtocolError) as info:
        call()
    return int(info.value.nrc)


def wait_until(check: Callable[[], bool], timeout: float) -> float:
    """Poll ``check`` (bounded); the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
    return time.monotonic()


def ecu(emu: EvEmulator) -> dict[str, object]:
    state = emu.state()["uds"]
    assert isinstance(state, dict)
    return state


# -- definition ------------------------------------------------------------------


def test_definition_declares_uds_names_when_enabled() -> None:
    without = DEVICE_TYPE.definition({"uds": False})  # a variant without diagnostics
    assert "uds" not in without.capabilities and "uds" in without.known_capabilities
    d = DEVICE_TYPE.definition({})
    assert dict(d.signals["uds.session"].choices) == {"DEFAULT": 1, "EXTENDED": 3}
    assert {d.signals[s].kind for s in ("uds.last_nrc", "uds.dtc_count")} == {"number"}
    actions = {n for n, s in d.stimuli.items() if s.kind == "action"}
    assert {
        "uds_session",
        "uds_read_did",
        "uds_security_key",
        "uds_request_seed",
        "uds_clear_dtcs",
    } <= actions
    assert set(d.stimuli["uds_security_key"].fields) == {"level", "key"}
    assert {"no_security_lockout", "s3_never_expires"} <= set(DEVICE_TYPE.defects)


# -- identity ----------------------------------------------------------------------


def test_identity_via_uds_multi_frame_vin(ev: Car) -> None:
    driver, _ = ev
    assert driver.identity() == {
        "model": "EV VCU",
        "serial": "0020261125",
        "firmware": "2.3.1",
        "hardware": "rev 3",
    }
    asked = [e.request for e in driver.uds.history()]
    assert asked == ["22f189", "22f18c", "22f193"]
    t0 = time.time()
    assert driver.uds.read_did(0xF190) == "HILEV000000000001"  # 20 bytes: FF + 2 CF
    frames = [
        (r.data.arbitration_id, r.data.data[0] >> 4)
        for r in driver.transport.capture.records()
        if r.t >= t0 and r.data.arbitration_id in (0x7E0, 0x7E8)
    ]
    assert frames == [(0x7E0, 0), (0x7E8, 1), (0x7E0, 3), (0x7E8, 2), (0x7E8, 2)]
    assert all(r.data.dlc == 8 for r in driver.transport.capture.records(key=0x7E8))


def test_identity_from_settings_via_uds() -> None:
    with car(firmware="4.0.12", serial=77, hw_revision=9, vin="WVWZZZ1JZXW000001") as (d, _):
        assert d.identity()["firmware"] == "4.0.12"
        assert d.identity()["serial"] == "0000000077"
        assert d.uds.read_did(0xF190) == "WVWZZZ1JZXW000001"


def test_identity_falls_back_to_vcu_info_without_diagnostics() -> None:
    with car(uds=False) as (driver, emu):
        t = time.monotonic()
        assert driver.identity()["firmware"] == "2.3.1"
        assert time.monotonic() - t < 2.0  # straight from the VCU_Info frame
        assert driver.uds.history() == []  # declared without diagnostics: not even tried
        assert emu.state()["uds"] is None
        with pytest.raises(DeviceTimeout, match="no response"):
            driver.uds.session(3)


# -- services and NRCs ----------------------------------------------------------------


def test_sessions_reset_and_tester_present(ev: Car) -> None:
    driver, emu = ev
    uds = driver.uds
    assert uds.session(3) == 3
    last = uds.history()[-1]
    assert last.response == "5003003201f4"  # P2 50 ms, P2* 5000 ms in 10 ms units
    assert ecu(emu)["session"] == "EXTENDED"
    assert uds.read_did(0xF186) == b"\x03"
    uds.tester_present()
    assert uds.history()[-1].response == "7e00"
    before = len(driver.transport.capture.records(key=0x7E8))
    uds.tester_present(suppress=True)
    assert uds.history()[-1].response is None
    uds.tester_present()  # answered: so the suppressed one was handled, silently
    assert len(driver.transport.capture.records(key=0x7E8)) == before + 1
    assert uds.reset(1) == 1
    assert ecu(emu)["session"] == "DEFAULT"
    assert emu.state()["resets"] == 1
    assert nrc_of(lambda: uds.raw(b"\x11\x05")) == 0x12
    driver.drive(10, accel=25.0)
    driver.wait_for("DRIVE_Status.VehicleSpeed", lambda v: v > 1, 2.0)
    assert nrc_of(lambda: uds.reset(1)) == 0x22  # not while the car moves


def test_nrcs_for_malformed_and_unsupported_requests(ev: Car) -> None:
    uds = ev[0].uds
    assert nrc_of(lambda: uds.raw(b"\xba\x01")) == 0x11
    assert nrc_of(lambda: uds.raw(b"\x2e\xf1\x90\x00")) == 0x11  # known to UDS, not here
    assert nrc_of(lambda: uds.raw(b"\x10")) == 0x13
    assert nrc_of(lambda: uds.raw(b"\x10\x03\x00")) == 0x13
    assert nrc_of(lambda: uds.raw(b"\x10\x02")) == 0x12  # programming session
    assert nrc_of(lambda: uds.raw(b"\x22\xf1")) == 0x13
    assert nrc_of(lambda: uds.raw(b"\x14\xff\xff")) == 0x13
    assert nrc_of(lambda: uds.raw(b"\x19\x0a")) == 0x12
    assert nrc_of(lambda: uds.raw(b"\x19\x02")) == 0x13
    assert nrc_of(lambda: uds.raw(b"\x3e\x01")) == 0x12
    assert nrc_of(lambda: uds.read_did(0x1234)) == 0x31
    assert nrc_of(lambda: uds.clear_dtcs(0x123456)) == 0x31
    assert nrc_of(lambda: uds.request_seed(1)) == 0x7F  # not in the default session
    err = pytest.raises(ProtocolError, uds.read_did, 0x1234).value
    assert err.nrc_name == "RequestOutOfRange"
    assert "NRC 0x31 RequestOutOfRange" in str(err)
    assert uds.history()[-1].nrc == 0x31


def test_security_access_and_protected_data(ev: Car) -> None:
    uds = ev[0].uds
    assert nrc_of(lambda: uds.read_did(0xD0FF)) == 0x33
    uds.session(3)
    assert nrc_of(lambda: uds.send_key(1, b"\x00" * 4)) == 0x24  # no seed asked
    assert nrc_of(lambda: uds.request_seed(3)) == 0x12  # level 3 does not exist
    seed = uds.request_seed(1)
    assert len(seed) == 4 and any(seed)
    assert nrc_of(lambda: uds.send_key(1, b"\x00")) == 0x13
    seed = uds.request_seed(1)
    uds.send_key(1, compute_key(seed, 1))
    assert uds.read_did(0xD0FF) == b"\x5a"
    assert uds.request_seed(1) == bytes(4)  # already unlocked
    uds.session(3)  # any session transition relocks
    assert nrc_of(lambda: uds.read_did(0xD0FF)) == 0x33
    uds.security_access(1)  # seed + the default algorithm
    assert uds.read_did(0xD0FF) == b"\x5a"


def test_three_wrong_keys_lock_out_then_recover(ev: Car) -> None:
    """E10: 0x35, 0x35, 0x36; a seed gives 0x37 until the delay has passed."""
    uds = ev[0].uds
    uds.session(3)
    codes = []
    for _ in range(3):
        uds.request_seed(1)
        codes.append(nrc_of(lambda: uds.send_key(1, b"\xde\xad\xbe\xef")))
    assert codes == [0x35, 0x35, 0x36]
    locked_at = uds.history()[-1].t
    assert nrc_of(lambda: uds.request_seed(1)) == 0x37
    seed = b""
    while not seed:  # 0x37 until the delay has passed, then a seed
        try:
            seed = uds.request_seed(1)
        except ProtocolError:
            last = uds.history()[-1]
            assert last.nrc == 0x37
            assert last.t - locked_at < LOCKOUT + 0.5  # bounded
            time.sleep(0.02)
    granted = uds.history()[-1]
    refused = [e for e in uds.history() if e.nrc == 0x37]
    assert all(e.t - locked_at < LOCKOUT for e in refused)
    assert granted.t - locked_at >= LOCKOUT
    uds.send_key(1, compute_key(seed, 1))  # a fresh set of attempts
    assert uds.read_did(0xD0FF) == b"\x5a"


def test_s3_falls_back_to_default_and_relocks(ev: Car) -> None:
    driver, emu = ev
    uds = driver.uds
    uds.session(3)
    uds.security_access(1)
    start = time.monotonic()
    while time.monotonic() - start < 2 * S3:  # tester present keeps the session
        uds.tester_present(suppress=True)
        time.sleep(S3 / 4)
        assert ecu(emu)["session"] == "EXTENDED"
    last = uds.history()[-1].t_request
    fell = wait_until(lambda: ecu(emu)["session"] == "DEFAULT", 3 * S3)
    assert fell - start >= 2 * S3
    assert time.time() - last >= S3 - 0.05
    assert ecu(emu)["s3_fallbacks"] == 1
    assert ecu(emu)["unlocked_level"] is None
    assert uds.read_did(0xF186) == b"\x01"
    assert nrc_of(lambda: uds.read_did(0xD0FF)) == 0x33


def test_routines_pending_and_sequence(ev: Car) -> None:
    uds = ev[0].uds
    assert nrc_of(lambda: uds.routine(1, 0x0201)) == 0x31  # extended session only
    uds.session(3)
    assert nrc_of(lambda: uds.routine(3, 0x0201)) == 0x24  # results before start
    assert nrc_of(lambda: uds.routine(1, 0x0201, b"\x07")) == 0x31
    assert nrc_of(lambda: uds.routine(4, 0x0201)) == 0x12
    assert nrc_of(lambda: uds.routine(1, 0x9999)) == 0x31
    assert uds.routine(1, 0x0201) == b"\x01"
    assert uds.routine(3, 0x0201) == b"\x02"
    assert nrc_of(lambda: uds.routine(2, 0x0201)) == 0x12  # this routine cannot stop
    assert nrc_of(lambda: uds.routine(1, 0x0301)) == 0x33
    uds.security_access(1)
    assert uds.routine(1, 0x0301) == b"\x00\x09\xc4"  # passed, 2500 kOhm
    done = uds.history()[-1]
    assert done.pending == 1 and done.nrc == 0
    assert 0.19 < done.t - done.t_request < 1.0  # answered 0x78 first, within P2*


def test_dtcs_from_e2e_rejects_read_and_cleared(ev: Car) -> None:
    driver, emu = ev
    uds = driver.uds
    assert uds.read_dtcs() == []
    lock = {"LockRequest": 1, "Source": 0}
    driver.send_message("BODY_LockCmd", lock, checksum=0x42)
    wait_until(lambda: emu.state()["e2e_rejected"] == 1, 1.0)
    assert uds.read_dtcs() == [(DTC_LOCKCMD_CHECKSUM, 0x0B)]
    assert uds.read_dtcs(0x04) == []  # status mask: pending bit not set
    t = driver.send_message("BODY_LockCmd", lock, counter=0)
    driver.wait_for("BODY_Status.LockFL", "LOCKED", 1.0, since=t)
    driver.send_message("BODY_LockCmd", lock, counter=0)  # repeated
    wait_until(lambda: emu.state()["e2e_rejected"] == 2, 1.0)
    assert [c for c, _ in uds.read_dtcs()] == [DTC_LOCKCMD_COUNTER, DTC_LOCKCMD_CHECKSUM]
    uds.clear_dtcs(DTC_LOCKCMD_COUNTER)
    assert [c for c, _ in uds.read_dtcs()] == [DTC_LOCKCMD_CHECKSUM]
    uds.clear_dtcs()
    assert uds.read_dtcs() == []


# -- defects -------------------------------------------------------------------------


def test_defect_no_security_lockout() -> None:
    with car(("no_security_lockout",)) as (driver, emu):
        uds = driver.uds
        uds.session(3)
        codes = []
        for _ in range(5):
            uds.request_seed(1)  # never 0x37
            codes.append(nrc_of(lambda: uds.send_key(1, b"\x00\x00\x00\x00")))
        assert codes == [0x35] * 5
        assert ecu(emu)["lockout_remaining_s"] == 0.0


def test_defect_s3_never_expires() -> None:
    with car(("s3_never_expires",)) as (driver, emu):
        driver.uds.session(3)
        entered = driver.uds.history()[-1].t
        deadline = time.monotonic() + 2.5 * S3
        while time.monotonic() < deadline:  # well past S3: still extended
            assert ecu(emu)["session"] == "EXTENDED"
            time.sleep(0.05)
        assert driver.uds.read_did(0xF186) == b"\x03"
        assert driver.uds.history()[-1].t - entered > 2 * S3


# -- the driver's plan names -----------------------------------------------------------


def test_plan_actions_and_observed_signals(ev: Car, tmp_path: Path) -> None:
    driver, _ = ev
    assert driver.samples("uds.session", 0.0) == []
    t_ext = driver.stimulate("uds_session", {"session": 3})
    [session] = driver.samples("uds.session", t_ext)
    assert session.value == 3 and session.t >= t_ext
    driver.stimulate("uds_request_seed", {"level": 1})
    t_bad = driver.stimulate("uds_security_key", {"level": 1, "key": "00000000"})
    nrc = driver.wait_for("uds.last_nrc", 0x35, 0.5, since=t_bad)
    assert nrc.t >= t_bad
    driver.stimulate("uds_request_seed", {})
    driver.stimulate("uds_security_key", {"key": "computed"})
    # the seed before, the wrong key, the next seed, the computed key
    assert [s.value for s in driver.samples("uds.last_nrc", t_bad)] == [0, 0x35, 0, 0]
    driver.stimulate("uds_read_did", {"did": 0xF189})
    assert driver.read("uds.last_nrc").value == 0
    driver.send_message("BODY_LockCmd", {"LockRequest": 1}, checksum=0)
    driver.wait_for("BODY_Status.LockResult", "NONE", 0.5)
    count = driver.read("uds.dtc_count")  # active: 0x19 02 FF
    assert count.value in (0, 1)
    t_clear = driver.stimulate("uds_clear_dtcs", {})
    driver.stimulate("uds_read_dtcs", {"mask": 0xFF})
    assert driver.samples("uds.dtc_count", t_clear)[-1].value == 0
    assert driver.read("uds.session").value == 3  # active: DID F186
    driver.stimulate("uds_reset", {"kind": 1})
    assert driver.samples("uds.session", time.time() - 1)[-1].value == 1
    paths = driver.write_evidence(tmp_path)
    uds_log = tmp_path / "ev.uds.jsonl"
    assert uds_log in paths
    lines = uds_log.read_text().splitlines()
    assert len(lines) == len(driver.uds.history())
    assert '"nrc": 53' in lines[2]


def test_plan_name_errors(ev: Car) -> None:
    driver, _ = ev
    with pytest.raises(ConfigError, match="did you mean 'uds.session'"):
        driver.samples("uds.sesion", 0.0)
    with pytest.raises(ConfigError, match="did you mean 'uds_session'"):
        driver.stimulate("uds_sesion", {})
    with pytest.raises(ConfigError, match="has no field 'sesion'"):
        driver.stimulate("uds_session", {"sesion": 3})
    with pytest.raises(ConfigError, match="needs 'did'"):
        driver.stimulate("uds_read_did", {})
    with pytest.raises(ConfigError, match="needs a seed first"):
        driver.stimulate("uds_security_key", {"key": "computed"})
    with pytest.raises(ConfigError, match="not hex"):
        driver.stimulate("uds_security_key", {"key": "xyz"})
    with pytest.raises(DeviceTimeout, match="no UDS response seen yet"):
        driver.read("uds.last_nrc")


def test_client_on_other_ids_and_custom_key_fn() -> None:
    with car(uds_request_id="0x7E1", uds_response_id=0x7E9, uds_secret=0x1234) as (driver, _):
        uds = driver.uds
        uds.session(3)
        uds.security_access(1, lambda seed, level: compute_key(seed, level, 0x1234))
        assert uds.read_did(0xD0FF) == b"\x5a"
        ids = {r.data.arbitration_id for r in driver.transport.capture.records()}
        assert {0x7E1, 0x7E9} <= ids and not {0x7E0, 0x7E8} & ids
    with pytest.raises(ConfigError, match="11-bit"):
        uds_ids({"uds_request_id": 0x800})
    with pytest.raises(ConfigError, match="like 0x7E0"):
        uds_ids({"uds_response_id": "seven"})


def test_uds_client_is_usable_standalone(ev: Car) -> None:
    driver, _ = ev
    client = UdsClient("tester", driver.transport)
    try:
        assert client.read_did(0xF189) == "2.3.1"
    finally:
        client.close()
