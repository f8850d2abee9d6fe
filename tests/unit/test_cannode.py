"""The generic CAN-node layer: DBC → definition, E2E, driver and emulator base.

A small DBC with an extended id, a multiplexed message and a scaled value
table stands for "arbitrary real-world DBCs". Everything talks through
python-can's ``virtual`` bus, one channel per test.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import can
import cantools.database
import pytest

from hil.bench.definition import StimulusInfo
from hil.bench.driver import Sample
from hil.cannode import CanNodeDriver, CanNodeEmulator, E2EProfile, can_definition, crc8_j1850
from hil.cannode.e2e import (
    BAD_CHECKSUM,
    CHECKSUM,
    REPEATED,
    REPEATED_COUNTER,
    STALE,
    STALE_COUNTER,
)
from hil.errors import ConfigError, DefinitionError, DeviceLost, DeviceTimeout
from hil.transports.can import CanTransport

Database = cantools.database.can.Database

DBC = """VERSION ""

NS_ :

BS_:

BU_: ECU HIL

BO_ 2166572391 EXT_Status: 8 ECU
 SG_ Mode : 0|2@1+ (0.5,0) [0|1.5] "" HIL
 SG_ Temp : 8|8@1+ (0.5,-40) [-40|87.5] "degC" HIL

BO_ 256 MUX_Status: 8 ECU
 SG_ Page M : 0|8@1+ (1,0) [0|255] "" HIL
 SG_ Voltage m0 : 8|16@1+ (0.01,0) [0|655.35] "V" HIL
 SG_ Current m1 : 8|16@1- (0.1,0) [-3276.8|3276.7] "A" HIL

BO_ 512 HIL_Cmd: 8 HIL
 SG_ Setpoint : 0|8@1+ (1,0) [10|200] "W" ECU
 SG_ Enable : 8|1@1+ (1,0) [0|1] "" ECU
 SG_ Cnt : 48|4@1+ (1,0) [0|15] "" ECU
 SG_ Crc : 56|8@1+ (1,0) [0|255] "" ECU

BO_ 768 ECU_Event: 8 ECU
 SG_ Code : 0|8@1+ (1,0) [0|255] "" HIL

BA_DEF_ BO_ "GenMsgCycleTime" INT 0 65535;
BA_DEF_DEF_ "GenMsgCycleTime" 0;
BA_ "GenMsgCycleTime" BO_ 2166572391 20;
BA_ "GenMsgCycleTime" BO_ 256 20;
VAL_ 2166572391 Mode 0 "OFF" 1 "ON" 2 "ERR" ;
"""

E2E_SPEC = {"HIL_Cmd": ("Cnt", "Crc")}


@pytest.fixture(scope="module")
def db() -> Database:
    loaded = cantools.database.load_string(DBC, database_format="dbc", strict=True)
    assert isinstance(loaded, Database)
    return loaded


@pytest.fixture
def channel() -> str:
    return f"cannode-{uuid.uuid4().hex[:8]}"


class EchoNode(CanNodeEmulator):
    """Plays ECU: mirrors HIL_Cmd.Setpoint into EXT_Status, alternates MUX pages."""

    ticks = 0

    def tick(self, dt: float) -> None:
        # Flip every 3 ticks (30 ms) so the 20 ms cycle carries both pages.
        self.ticks += 1
        self.set_signals("MUX_Status", Page=(self.ticks // 3) % 2, Voltage=12.5, Current=-3.5)

    def on_message(self, name: str, values: Mapping[str, Any], t: float) -> None:
        if name == "HIL_Cmd":
            self.set_signals("EXT_Status", Temp=float(values["Setpoint"]) / 2 - 40)
            self.send_now("EXT_Status")


@pytest.fixture
def node(db: Database, channel: str) -> Iterator[tuple[CanNodeDriver, EchoNode]]:
    e2e = E2EProfile(db, E2E_SPEC)
    emu = EchoNode("ecu", db=db, nodes=["ECU"], interface="virtual", channel=channel, e2e=e2e)
    transport = CanTransport("ecu", interface="virtual", channel=channel)
    definition = can_definition(db, type_name="generic", e2e=e2e)
    with emu, transport:
        driver = CanNodeDriver("ecu", transport, db, definition, e2e=e2e)
        try:
            yield driver, emu
        finally:
            driver.close()


# -- E2E ------------------------------------------------------------------


def test_crc8_j1850_check_value() -> None:
    assert crc8_j1850(b"123456789") == 0x4B


def test_e2e_sender_and_receiver_agree_and_reject_faults(db: Database) -> None:
    profile = E2EProfile(db, E2E_SPEC)
    msg = db.get_message_by_name("HIL_Cmd")
    sender, receiver = profile.sender(), profile.receiver()
    values = {"Setpoint": 50, "Enable": 1}
    first = sender.protect(msg, values)
    assert receiver.verify(msg.frame_id, first, 0) is None
    assert receiver.verify(msg.frame_id, first, 0) == REPEATED
    replay = sender.protect(msg, values, counter=15)  # one behind the accepted 0
    assert receiver.verify(msg.frame_id, replay, 15) == STALE
    bad = sender.protect(msg, values, counter=1, checksum=0)
    assert receiver.verify(msg.frame_id, bad, 1) == CHECKSUM
    # Rejected frames did not move the reference: counter 1 is still accepted.
    good = sender.protect(msg, values, counter=1)
    assert receiver.verify(msg.frame_id, good, 1) is None
    assert receiver.error_count == 3
    assert receiver.errors["HIL_Cmd: checksum"] == 1


def test_e2e_fault_frames_are_what_a_receiver_rejects(db: Database) -> None:
    profile = E2EProfile(db, E2E_SPEC)
    msg = db.get_message_by_name("HIL_Cmd")
    sender, receiver = profile.sender(), profile.receiver()
    values = {"Setpoint": 50, "Enable": 1}
    assert sender.fault_counter("HIL_Cmd", REPEATED_COUNTER) == 0  # nothing sent yet: 0
    for i in range(3):
        assert receiver.verify(msg.frame_id, sender.protect(msg, values), i) is None
    assert sender.last_counter("HIL_Cmd") == 2
    repeated = sender.fault_counter("HIL_Cmd", REPEATED_COUNTER)
    stale = sender.fault_counter("HIL_Cmd", STALE_COUNTER)
    assert (repeated, stale) == (2, 14)
    assert sender.fault_counter("HIL_Cmd", BAD_CHECKSUM) is None  # the next counter, as usual
    data = sender.protect(msg, values, counter=repeated)
    assert receiver.verify(msg.frame_id, data, 2) == REPEATED
    data = sender.protect(msg, values, counter=stale)
    assert receiver.verify(msg.frame_id, data, 14) == STALE
    corrupt = sender.protect(msg, values, corrupt=True)
    assert receiver.verify(msg.frame_id, corrupt, 3) == CHECKSUM
    # forced counters do not move the sender: its next frame is valid
    assert receiver.verify(msg.frame_id, sender.protect(msg, values), 4) is None


def test_e2e_counter_rolls_over(db: Database) -> None:
    profile = E2EProfile(db, E2E_SPEC)
    msg = db.get_message_by_name("HIL_Cmd")
    sender, receiver = profile.sender(), profile.receiver()
    for i in range(40):
        data = sender.protect(msg, {"Setpoint": 20, "Enable": 0})
        assert receiver.verify(msg.frame_id, data, i % 16) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"Nope": ("Cnt", "Crc")}, "not in the database"),
        ({"HIL_Cmd": ("Cnt", "Missing")}, "checksum signal 'Missing'"),
        ({"HIL_Cmd": ("Setpoint", "Crc")}, "4-bit"),
        ({"HIL_Cmd": ("Cnt", "Enable")}, "byte-aligned"),
    ],
)
def test_e2e_profile_rejects_bad_shapes(
    db: Database, spec: dict[str, tuple[str, str]], message: str
) -> None:
    with pytest.raises(DefinitionError, match=message):
        E2EProfile(db, spec)


# -- definition ---------------------------------------------------------------


def test_definition_covers_extended_multiplexed_and_value_tables(db: Database) -> None:
    d = can_definition(db, type_name="generic", e2e=E2EProfile(db, E2E_SPEC))
    mode = d.signals["EXT_Status.Mode"]
    assert mode.kind == "enum"
    assert dict(mode.choices) == {"OFF": 0.0, "ON": 0.5, "ERR": 1.0}  # scaled, as decoded
    temp = d.signals["EXT_Status.Temp"]
    assert (temp.unit, temp.minimum, temp.maximum, temp.kind) == ("degC", -40, 87.5, "number")
    assert "multiplexed" in d.signals["MUX_Status.Current"].description
    assert set(d.stimuli) == {"HIL_Cmd"}
    cmd = d.stimuli["HIL_Cmd"]
    assert cmd.kind == "message"
    # counter and checksum are not plan fields; E2EFault injects a broken frame instead
    assert set(cmd.fields) == {"Setpoint", "Enable", "E2EFault"}
    assert d.transport == "can"


def test_definition_without_profile_keeps_all_fields(db: Database) -> None:
    d = can_definition(db, type_name="generic", bench_nodes=("ECU",))
    assert set(d.stimuli) == {"EXT_Status", "MUX_Status", "ECU_Event"}
    assert set(d.stimuli["MUX_Status"].fields) == {"Page", "Voltage", "Current"}


# -- driver + emulator over a virtual bus ---------------------------------------


def test_samples_read_and_multiplexed_decode(node: tuple[CanNodeDriver, EchoNode]) -> None:
    driver, emu = node
    assert emu.endpoint == {"interface": "virtual", "channel": emu.channel}
    current = driver.read("MUX_Status.Current")
    voltage = driver.read("MUX_Status.Voltage")
    assert (current.value, voltage.value) == (-3.5, 12.5)
    assert driver.read("EXT_Status.Mode").value == 0.0
    since = current.t + 0.05
    # wait until frames newer than ``since`` exist, then check the contract
    later = _poll(driver, "EXT_Status.Temp", lambda s: s.t >= since + 0.05)
    samples = driver.samples("EXT_Status.Temp", since)
    assert samples[0].t < since <= samples[1].t  # preceded by the last one before
    assert all(a.t <= b.t for a, b in zip(samples, samples[1:], strict=False))
    assert later in samples
    mux = driver.samples("MUX_Status.Voltage", since)
    assert mux[0].t < since
    assert all(s.value == 12.5 for s in mux)


def _poll(driver: CanNodeDriver, signal: str, ok: Any, timeout: float = 2.0) -> Sample:
    """The first sample (oldest first) meeting ``ok``; bounded."""
    capture = driver.transport.capture
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        seq = capture.seq
        for s in driver.samples(signal, 0.0):
            if ok(s):
                return s
        capture.wait_beyond(seq, 0.05)
    raise AssertionError(f"{signal}: condition not met within {timeout} s")


def test_stimulate_round_trip_with_e2e(node: tuple[CanNodeDriver, EchoNode]) -> None:
    driver, emu = node
    for setpoint in (100, 120, 140):
        t = driver.stimulate("HIL_Cmd", {"Setpoint": setpoint})
        want = setpoint / 2 - 40
        reply = _poll(driver, "EXT_Status.Temp", lambda s, w=want, t0=t: s.t >= t0 and s.value == w)
        assert reply.t >= t
    sent = driver.frames("HIL_Cmd", 0.0)
    assert [int(v["Cnt"]) for _, v in sent] == [0, 1, 2]
    assert [int(v["Enable"]) for _, v in sent] == [0, 0, 0]  # unspecified → initial/0
    assert emu.e2e_rejected == {}


def test_emulator_rejects_replayed_and_corrupt_frames(
    node: tuple[CanNodeDriver, EchoNode],
) -> None:
    driver, emu = node
    driver.send_message("HIL_Cmd", {"Setpoint": 100}, counter=5)
    _poll(driver, "EXT_Status.Temp", lambda s: s.value == 10)
    driver.send_message("HIL_Cmd", {"Setpoint": 150}, counter=5)  # repeated
    driver.send_message("HIL_Cmd", {"Setpoint": 150}, counter=3)  # stale
    driver.send_message("HIL_Cmd", {"Setpoint": 150}, counter=6, checksum=0x00)
    driver.send_message("HIL_Cmd", {"Setpoint": 60}, counter=6)
    _poll(driver, "EXT_Status.Temp", lambda s: s.value == -10)
    assert emu.e2e_rejected == {
        "HIL_Cmd: repeated counter": 1,
        "HIL_Cmd: stale counter": 1,
        "HIL_Cmd: checksum": 1,
    }


def test_driver_drops_bad_frames_it_receives(db: Database, channel: str) -> None:
    # The bench receives HIL_Cmd here, from a raw peer bus, as a real receiver would.
    e2e = E2EProfile(db, E2E_SPEC)
    definition = can_definition(db, type_name="generic", e2e=e2e)
    msg = db.get_message_by_name("HIL_Cmd")
    sender = e2e.sender()
    with (
        CanTransport("rx", interface="virtual", channel=channel) as transport,
        can.Bus(interface="virtual", channel=channel) as peer,
    ):
        driver = CanNodeDriver("rx", transport, db, definition, e2e=e2e)
        try:
            for counter, checksum in ((0, None), (0, None), (1, 0x00), (1, None)):
                data = sender.protect(msg, {"Setpoint": 30, "Enable": 1}, counter=counter)
                if checksum is not None:
                    data = data[:7] + bytes([checksum])
                peer.send(can.Message(arbitration_id=msg.frame_id, is_extended_id=False, data=data))
            _poll(driver, "HIL_Cmd.Cnt", lambda s: s.value == 1)
            assert [s.value for s in driver.samples("HIL_Cmd.Cnt", 0.0)] == [0, 1]
            assert driver.e2e_errors == 2
            assert driver.e2e_error_details == {
                "HIL_Cmd: repeated counter": 1,
                "HIL_Cmd: checksum": 1,
            }
        finally:
            driver.close()


def test_frames_before_the_driver_are_seen_once(db: Database, channel: str) -> None:
    with (
        CanTransport("late", interface="virtual", channel=channel) as transport,
        can.Bus(interface="virtual", channel=channel) as peer,
    ):
        msg = db.get_message_by_name("ECU_Event")
        for code in range(5):
            peer.send(_event(msg.frame_id, code))
        end = time.monotonic() + 2
        while len(transport.capture.records(key=msg.frame_id)) < 5:
            assert time.monotonic() < end, "frames never arrived"
            transport.capture.wait_beyond(transport.capture.seq, 0.05)
        driver = CanNodeDriver("late", transport, db, can_definition(db, type_name="g"))
        try:
            peer.send(_event(msg.frame_id, 5))
            _poll(driver, "ECU_Event.Code", lambda s: s.value == 5)
            assert [s.value for s in driver.samples("ECU_Event.Code", 0.0)] == [0, 1, 2, 3, 4, 5]
        finally:
            driver.close()


def _event(frame_id: int, code: int) -> can.Message:
    return can.Message(arbitration_id=frame_id, is_extended_id=False, data=bytes([code] + [0] * 7))


# -- error paths ------------------------------------------------------------


def test_bad_names_say_what_would_work(node: tuple[CanNodeDriver, EchoNode]) -> None:
    driver, _ = node
    with pytest.raises(ConfigError, match="did you mean 'EXT_Status.Temp'"):
        driver.samples("EXT_Status.Tmp", 0.0)
    with pytest.raises(ConfigError, match="did you mean 'HIL_Cmd'"):
        driver.stimulate("HIL_Cmnd", {})
    with pytest.raises(ConfigError, match="did you mean 'Setpoint'"):
        driver.stimulate("HIL_Cmd", {"SetPoint": 1})
    with pytest.raises(ConfigError, match="cannot encode HIL_Cmd"):
        driver.stimulate("HIL_Cmd", {"Setpoint": 999})


def test_input_stimuli_belong_to_the_bench(node: tuple[CanNodeDriver, EchoNode]) -> None:
    driver, _ = node
    stimuli = dict(driver.definition.stimuli)
    stimuli["AmbientTemp"] = StimulusInfo(name="AmbientTemp", kind="input")
    driver.definition = dataclasses.replace(driver.definition, stimuli=stimuli)
    with pytest.raises(ConfigError, match="bench input, applied by the bench"):
        driver.stimulate("AmbientTemp", {})


def test_read_times_out_on_a_silent_message(node: tuple[CanNodeDriver, EchoNode]) -> None:
    driver, _ = node
    with pytest.raises(DeviceTimeout, match="no ECU_Event frame"):
        driver.read("ECU_Event.Code")


def test_evidence_link_and_close(node: tuple[CanNodeDriver, EchoNode], tmp_path: Path) -> None:
    driver, _ = node
    driver.read("EXT_Status.Temp")
    (path,) = driver.write_evidence(tmp_path)
    assert path == tmp_path / "ecu.asc"
    assert "1234567x" in path.read_text().lower()  # the extended id, as python-can writes it
    driver.check_link()
    driver.transport.lost = DeviceLost("unplugged", device="ecu")
    with pytest.raises(DeviceLost):
        driver.check_link()
    driver.transport.lost = None
    driver.close()
    driver.close()
