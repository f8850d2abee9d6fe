"""The generic MIoT layer: codec, spec files, the MCU emulator base and the module driver.

Everything talks over a real pty opened with pyserial; the MCU side is
either ``MiotMcuEmulator`` or, for misbehaving-MCU cases, a bare ``PtyLink``
driven line by line.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from hil.emulation.pty import PtyLink
from hil.errors import (
    ConfigError,
    DefinitionError,
    DeviceLost,
    DeviceTimeout,
    EmulatorError,
    ProtocolError,
)
from hil.lifecycle import open_resources
from hil.miot.acceptance import AcceptanceModuleDriver
from hil.miot.codec import Bare, LineError, decode_line, encode_line
from hil.miot.mcu import ActionRefused, MiotMcuEmulator
from hil.miot.module import MiotModuleDriver
from hil.miot.spec import MiotSpec, load_spec
from hil.transports.serial import SerialTransport

SPEC_YAML = """\
spec: 1
model: acme.kettle.v1
mcu_version: "0042"
services:
  - siid: 2
    name: kettle
    properties:
      - {piid: 1, name: target, type: int, access: [read, write, notify], unit: C,
         range: [40, 100, 5]}
      - {piid: 2, name: mode, type: int, access: [read, write, notify],
         enum: {keep-warm: 0, boil: 1}}
      - {piid: 3, name: label, type: string, access: [read, write]}
      - {piid: 4, name: secret, type: int, access: [write]}
      - {piid: 5, name: temperature, type: float, access: [read, notify], unit: C}
      - {piid: 6, name: minutes, type: int, access: [read], range: [0, 60, 1]}
    actions:
      - {aiid: 1, name: start-timer, in: [6], out: [6]}
    events:
      - {eiid: 1, name: boiled, arguments: [5]}
"""


class Kettle(MiotMcuEmulator):
    """A small appliance exercising every path of the base class."""

    def _on_action(self, name: str, args: Mapping[str, Any]) -> Mapping[str, Any]:
        if args["minutes"] == 0:
            raise ActionRefused(-4004)
        return {"minutes": args["minutes"] * 2}


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    yield
    assert open_resources() == []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and _hil_threads():
        time.sleep(0.01)
    assert _hil_threads() == []


def _hil_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("hil-")]


@pytest.fixture
def spec(tmp_path: Path) -> MiotSpec:
    path = tmp_path / "kettle.yaml"
    path.write_text(SPEC_YAML)
    return load_spec(path)


@pytest.fixture
def kettle(spec: MiotSpec) -> Iterator[tuple[Kettle, MiotModuleDriver]]:
    definition = spec.definition("kettle")
    with (
        Kettle("kettle", spec, settings={"poll_period_s": 0.1}) as emu,
        SerialTransport("kettle", url=emu.endpoint["url"]) as transport,
    ):
        driver = MiotModuleDriver("kettle", transport, definition, spec, rpc_timeout=2.0)
        try:
            yield emu, driver
        finally:
            driver.close()


def wait_for(cond: Callable[[], object], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def rx_times(transport: SerialTransport, prefix: str) -> list[float]:
    return [
        r.t
        for r in transport.capture.records()
        if r.direction == "rx" and r.data.startswith(prefix)
    ]


# ----- codec


def test_codec_round_trips_every_value_kind() -> None:
    text = encode_line("properties_changed", 2, 1, True, 3, -4.5, 4, "hello world", Bare("none"))
    assert text == 'properties_changed 2 1 true 3 -4.5 4 "hello\\u0020world" none'
    line = decode_line(text)
    assert line.command == "properties_changed"
    assert line.args == (2, 1, True, 3, -4.5, 4, "hello world", "none")
    assert str(line) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("get_down  x", "single spaces"),
        ('result "open', "unterminated"),
        ("Result 1", "lowercase"),
        ("result " + " ".join(["1"] * 65), "at most 64"),
        ("x" * 513, "512"),
        ("", "empty"),
    ],
)
def test_codec_rejects_malformed_lines(text: str, why: str) -> None:
    with pytest.raises(LineError, match=why):
        decode_line(text)


def test_codec_refuses_to_build_an_oversized_line() -> None:
    with pytest.raises(LineError, match="512"):
        encode_line("result", "x" * 600)
    with pytest.raises(LineError, match="64"):
        encode_line("result", *range(65))


# ----- spec


def test_spec_becomes_a_definition(spec: MiotSpec) -> None:
    d = spec.definition("kettle", inputs={})
    assert d.transport == "serial"
    assert d.signals["kettle.target"].unit == "C"
    assert d.signals["kettle.target"].maximum == 100
    assert d.signals["kettle.mode"].kind == "enum"
    assert d.signals["kettle.mode"].coerce("boil") == 1
    assert d.signals["kettle.boiled"].kind == "bool"
    assert d.stimuli["kettle.target"].kind == "property"
    assert list(d.stimuli["kettle.target"].fields) == ["value"]
    assert d.stimuli["kettle.start-timer"].kind == "action"
    assert list(d.stimuli["kettle.start-timer"].fields) == ["minutes"]
    assert "kettle.temperature" not in d.stimuli  # read-only


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('mcu_version: "0042"', 'mcu_version: "42"'), "mcu_version"),
        (("model: acme.kettle.v1", "model: acme.kettle-with-a-long-name.v1"), "23"),
        (("spec: 1", "spec: 2"), "upgrade hil"),
        (("    name: kettle\n", "    name: kettle\n    colour: red\n"), "unknown key 'colour'"),
        (("in: [6]", "in: [9]"), "no property with piid 9"),
    ],
)
def test_bad_spec_names_file_and_line(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SPEC_YAML.replace(*change))
    with pytest.raises(DefinitionError, match=message) as info:
        load_spec(path)
    assert str(path) in str(info.value)
    assert info.value.line is not None


# ----- boot and polling


def test_boot_handshake_is_retried_until_acknowledged(spec: MiotSpec) -> None:
    with (
        Kettle("kettle", spec) as emu,
        SerialTransport("kettle", url=emu.endpoint["url"]) as transport,
    ):
        wait_for(lambda: len(rx_times(transport, "model ")) >= 3)
        times = rx_times(transport, "model ")
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert all(0.15 <= g <= 0.3 for g in gaps), gaps
        assert not emu.booted
        driver = MiotModuleDriver("kettle", transport, spec.definition("kettle"), spec)
        try:
            assert driver.identity() == {"model": "acme.kettle.v1", "firmware": "0042"}
            wait_for(lambda: emu.booted)
        finally:
            driver.close()


def test_polling_period_and_mcu_version_request(kettle: tuple[Kettle, MiotModuleDriver]) -> None:
    emu, driver = kettle
    wait_for(lambda: len(rx_times(driver.transport, "get_down")) >= 5)
    polls = rx_times(driver.transport, "get_down")
    gaps = [b - a for a, b in zip(polls, polls[1:], strict=False)]
    assert all(0.08 <= g <= 0.2 for g in gaps), gaps
    assert driver.request_mcu_version() == "0042"
    driver.net_change("cloud")
    wait_for(lambda: emu.state()["net"] == "cloud")


# ----- downlinks and result codes


def test_get_set_and_reports(kettle: tuple[Kettle, MiotModuleDriver]) -> None:
    emu, driver = kettle
    since = time.time()
    driver.set("kettle.target", 85)
    assert emu.value("kettle.target") == 85
    assert driver.get("kettle.target") == 85
    driver.set("kettle.label", "tea for two")
    assert driver.get("kettle.label") == "tea for two"
    wait_for(lambda: any(s.value == 85 for s in driver.samples("kettle.target", since)))
    sample = driver.read("kettle.target")
    assert sample.value == 85
    assert sample.t >= since


@pytest.mark.parametrize(
    ("prop", "value", "code"),
    [
        ("kettle.temperature", 20.0, -4002),  # read-only
        ("kettle.target", 120, -4005),  # out of range
        ("kettle.target", 42, -4005),  # off the 5-degree step
        ("kettle.target", "hot", -4005),  # wrong type
        ("kettle.mode", 7, -4005),  # not in the enum
    ],
)
def test_bad_writes_get_their_result_codes(
    kettle: tuple[Kettle, MiotModuleDriver], prop: str, value: Any, code: int
) -> None:
    _, driver = kettle
    with pytest.raises(ProtocolError) as info:
        driver.set(prop, value)
    assert info.value.code == code


def test_unreadable_and_unknown_properties(kettle: tuple[Kettle, MiotModuleDriver]) -> None:
    _, driver = kettle
    with pytest.raises(ProtocolError) as info:
        driver.get("kettle.secret")
    assert info.value.code == -4001
    reply = driver.request("get_properties", 2, 99).reply
    assert reply is not None
    assert reply.args == (2, 99, -4003)
    reply = driver.request("set_properties", 9, 1, 1).reply
    assert reply is not None
    assert reply.args == (9, 1, -4003)


def test_unknown_method_gets_an_error_in_the_reserved_range(
    kettle: tuple[Kettle, MiotModuleDriver],
) -> None:
    _, driver = kettle
    reply = driver.request("make_coffee", 1).reply
    assert reply is not None
    assert reply.command == "error"
    code = reply.args[-1]
    assert isinstance(code, int)
    assert -9999 <= code <= -5000


def test_actions(kettle: tuple[Kettle, MiotModuleDriver]) -> None:
    _, driver = kettle
    assert driver.action("kettle.start-timer", minutes=7) == {"minutes": 14}
    with pytest.raises(ProtocolError) as info:
        driver.action("kettle.start-timer", minutes=99)  # out of range
    assert info.value.code == -4006
    with pytest.raises(ProtocolError) as info:
        driver.action("kettle.start-timer", minutes=0)  # refused by the device
    assert info.value.code == -4004
    t = driver.stimulate("kettle.start-timer", {"minutes": 3})
    assert t == pytest.approx(time.time(), abs=2.0)


# ----- rate rules


def test_properties_changed_is_coalesced_to_once_per_second(
    kettle: tuple[Kettle, MiotModuleDriver],
) -> None:
    emu, driver = kettle
    wait_for(lambda: emu.booted)
    since = time.time()
    for value in (50, 55, 60, 65):
        driver.set("kettle.target", value)

    # the writes' results are observations too; the rate rule is about the
    # MCU's own properties_changed reports, so read those off the wire
    def reports() -> list[tuple[float, str]]:
        return [
            (r.t, r.data)
            for r in driver.transport.capture.records()
            if r.t >= since and r.direction == "rx" and r.data.startswith("properties_changed")
        ]

    wait_for(lambda: any(line.endswith(" 65") for _, line in reports()))
    seen = reports()
    gaps = [b[0] - a[0] for a, b in zip(seen, seen[1:], strict=False)]
    assert all(g >= 1.0 for g in gaps), gaps
    assert len(seen) <= 2  # the intermediate values were coalesced away


def test_events_are_limited_to_three_per_second(kettle: tuple[Kettle, MiotModuleDriver]) -> None:
    emu, driver = kettle
    wait_for(lambda: emu.booted)
    since = time.time()
    for _ in range(4):
        emu.emit("kettle.boiled", temperature=100.0)
    wait_for(lambda: len(driver.samples("kettle.boiled", since)) == 4)
    times = [s.t for s in driver.samples("kettle.boiled", since)]
    assert times[3] - times[0] >= 1.0
    assert "event_occured 2 1 5 100.0" in [r.data for r in driver.transport.capture.records()]


# ----- the driver against a misbehaving MCU (a bare pty, line by line)


@pytest.fixture
def raw_mcu(spec: MiotSpec) -> Iterator[tuple[PtyLink, MiotModuleDriver]]:
    link = PtyLink()
    try:
        with SerialTransport("raw", url=link.path) as transport:
            driver = MiotModuleDriver(
                "raw", transport, spec.definition("kettle"), spec, rpc_timeout=0.5
            )
            try:
                yield link, driver
            finally:
                driver.close()
    finally:
        link.close()


def exchange(link: PtyLink, line: str, timeout: float = 2.0) -> str:
    link.write(line.encode() + b"\r")
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r" not in buf:
        assert time.monotonic() < deadline, f"no answer to {line!r}"
        buf += link.read(0.05) or b""
    return buf.split(b"\r")[0].decode()


def test_module_acks_reports_and_rejects_odd_ones(
    raw_mcu: tuple[PtyLink, MiotModuleDriver],
) -> None:
    link, driver = raw_mcu
    assert exchange(link, "mcu_version 12") == "error"
    assert exchange(link, "model acme.kettle.v1") == "ok"
    assert exchange(link, "properties_changed 2 1 80") == "ok"
    assert exchange(link, "properties_changed 2 1") == "error"
    assert exchange(link, "event_occured 2 1 5") == "error"
    assert exchange(link, "event_occured 2 1 5 99.5") == "ok"
    assert exchange(link, "get_down") == "down none"
    assert [s.value for s in driver.samples("kettle.target", 0.0)] == [80]
    assert [s.value for s in driver.samples("kettle.boiled", 0.0)] == [True]


def test_a_downlink_nobody_polls_for_times_out(raw_mcu: tuple[PtyLink, MiotModuleDriver]) -> None:
    _, driver = raw_mcu
    start = time.monotonic()
    with pytest.raises(DeviceTimeout, match="never polled"):
        driver.get("kettle.target")
    # the 0.5 s rpc timeout, not a hang (with slack for a loaded CI machine)
    assert time.monotonic() - start < 5.0


def test_a_downlink_the_mcu_does_not_answer_times_out(
    raw_mcu: tuple[PtyLink, MiotModuleDriver],
) -> None:
    link, driver = raw_mcu
    failure: list[BaseException] = []

    def get() -> None:
        try:
            driver.get("kettle.target")
        except DeviceTimeout as err:
            failure.append(err)

    worker = threading.Thread(target=get)
    worker.start()
    wait_for(lambda: driver._queue)  # queued; now the MCU polls and stays silent
    assert exchange(link, "get_down") == "down get_properties 2 1"
    worker.join(timeout=3.0)
    assert "delivered but the MCU did not answer" in str(failure[0])


def test_samples_start_with_the_last_observation_before_since(
    raw_mcu: tuple[PtyLink, MiotModuleDriver],
) -> None:
    link, driver = raw_mcu
    for value in (50, 55, 60):
        assert exchange(link, f"properties_changed 2 1 {value}") == "ok"
    t = [s.t for s in driver.samples("kettle.target", 0.0)]
    assert [s.value for s in driver.samples("kettle.target", t[1])] == [50, 55, 60]
    assert [s.value for s in driver.samples("kettle.target", t[1] + 1e-6)] == [55, 60]
    assert [s.value for s in driver.samples("kettle.target", t[2] + 1.0)] == [60]


def test_bad_names_give_config_errors_with_hints(
    raw_mcu: tuple[PtyLink, MiotModuleDriver],
) -> None:
    _, driver = raw_mcu
    with pytest.raises(ConfigError, match="did you mean 'kettle.target'"):
        driver.samples("kettle.targte", 0.0)
    with pytest.raises(ConfigError, match="did you mean"):
        driver.get("kettle.tmperature")
    with pytest.raises(ConfigError, match="did you mean"):
        driver.stimulate("kettle.targets", {"value": 1})
    with pytest.raises(ConfigError, match="takes"):
        driver.action("kettle.start-timer", hours=1)


def test_evidence_and_lost_link(raw_mcu: tuple[PtyLink, MiotModuleDriver], tmp_path: Path) -> None:
    link, driver = raw_mcu
    exchange(link, "model acme.kettle.v1")
    [path] = driver.write_evidence(tmp_path)
    assert path.name == "raw.serial.jsonl"
    assert '"model acme.kettle.v1"' in path.read_text()
    driver.check_link()
    driver.transport.close()
    with pytest.raises(DeviceLost):
        driver.check_link()


# ----- the link audit and the acceptance probes (plan M1)


@pytest.fixture
def audited(spec: MiotSpec) -> Iterator[tuple[Kettle, AcceptanceModuleDriver]]:
    with (
        Kettle("kettle", spec, settings={"poll_period_s": 0.1}) as emu,
        SerialTransport("kettle", url=emu.endpoint["url"]) as transport,
    ):
        driver = AcceptanceModuleDriver(
            "kettle", transport, spec.definition("kettle"), spec, rpc_timeout=2.0
        )
        try:
            yield emu, driver
        finally:
            driver.close()


def values(driver: MiotModuleDriver, signal: str, since: float = 0.0) -> list[Any]:
    return [s.value for s in driver.samples(signal, since) if s.t >= since]


def test_audit_derives_the_link_rules_from_the_transcript(
    audited: tuple[Kettle, AcceptanceModuleDriver],
) -> None:
    emu, driver = audited
    wait_for(lambda: emu.polls >= 6)
    # boot lines captured before the driver attached are replayed
    # (a boot line may be sent twice: the MCU retries until it is acknowledged)
    assert set(values(driver, "miot.model-length")) == {len("acme.kettle.v1")}
    assert set(values(driver, "miot.mcu-version-valid")) == {True}
    assert driver.read("miot.poll-period").value == pytest.approx(0.1, abs=0.01)
    since = time.time()
    driver.get("kettle.target")
    [answer] = values(driver, "miot.answer-time", since)
    assert 0.0 <= answer < 0.2
    driver.set("kettle.target", 60)
    driver.set("kettle.target", 70)  # reported again only a second after the first report
    wait_for(lambda: values(driver, "miot.report-interval", since), timeout=2.5)
    assert min(values(driver, "miot.report-interval", since)) >= 1.0
    for _ in range(4):
        emu.emit("kettle.boiled", temperature=100.0)
    wait_for(lambda: len(values(driver, "miot.event-rate", since)) == 4, timeout=3.0)
    assert max(values(driver, "miot.event-rate", since)) <= 3
    assert 0 < max(values(driver, "miot.line-length", since)) <= 512
    with pytest.raises(ConfigError, match="no signal"):
        driver.samples("miot.nope", 0.0)
    with pytest.raises(ProtocolError, match="never observed"):
        driver.read("miot.unknown-method-code")


def test_probes_publish_the_mcu_answer_codes(
    audited: tuple[Kettle, AcceptanceModuleDriver],
) -> None:
    emu, driver = audited
    wait_for(lambda: emu.booted)
    before = emu.value("kettle.target")
    for probe, signal, code in [
        ("miot.send-unknown-method", "miot.unknown-method-code", -5001),
        ("miot.write-read-only", "miot.read-only-write-code", -4002),  # kettle.temperature
        ("miot.write-out-of-range", "miot.out-of-range-code", -4005),  # kettle.target = 105
    ]:
        t = driver.stimulate(probe, {})
        [sample] = [s for s in driver.samples(signal, t) if s.t >= t]
        assert sample.value == code
    assert emu.value("kettle.target") == before  # a refused write changed nothing
    since = time.time()
    driver.stimulate("miot.request-mcu-version", {})
    assert values(driver, "miot.mcu-version-valid", since) == [True]
    with pytest.raises(ConfigError, match="takes no arguments"):
        driver.stimulate("miot.write-read-only", {"value": 1})


def test_audit_catches_a_misbehaving_mcu(spec: MiotSpec) -> None:
    link = PtyLink()
    try:
        with SerialTransport("raw", url=link.path) as transport:
            driver = AcceptanceModuleDriver(
                "raw", transport, spec.definition("kettle"), spec, rpc_timeout=0.3
            )
            try:
                assert exchange(link, "model acme.kettle-with-a-long-name.v1") == "error"
                assert exchange(link, "mcu_version 12") == "error"
                assert values(driver, "miot.model-length") == [
                    len("acme.kettle-with-a-long-name.v1")
                ]
                assert values(driver, "miot.mcu-version-valid") == [False]
                for _ in range(4):
                    assert exchange(link, "get_down") == "down none"
                    time.sleep(0.4)
                assert 0.4 <= driver.read("miot.poll-period").value < 0.5
                # a downlink the MCU never answers counts with its age at the next poll
                worker = threading.Thread(target=lambda: _ignore(driver.get, "kettle.target"))
                worker.start()
                wait_for(lambda: driver._queue)
                assert exchange(link, "get_down") == "down get_properties 2 1"
                worker.join(timeout=2.0)
                time.sleep(0.35)  # past the RPC timeout counted from the down line
                exchange(link, "get_down")
                assert values(driver, "miot.answer-time")[-1] > 0.3
                since = time.time()
                for value in (1.0, 2.0):
                    assert exchange(link, f"properties_changed 2 5 {value}") == "ok"
                assert values(driver, "miot.report-interval", since)[0] < 0.5
                for _ in range(4):
                    assert exchange(link, "event_occured 2 1 5 100.0") == "ok"
                assert values(driver, "miot.event-rate", since)[-1] == 4
                exchange(link, "properties_changed 2 5 " + "1" * 600)
                assert max(values(driver, "miot.line-length", since)) > 512
            finally:
                driver.close()
    finally:
        link.close()


def _ignore(call: Callable[[str], object], arg: str) -> None:
    with contextlib.suppress(DeviceTimeout):  # the point of the exercise
        call(arg)


def test_the_miot_service_name_is_reserved(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SPEC_YAML.replace("name: kettle", "name: miot"))
    with pytest.raises(DefinitionError, match="reserved"):
        load_spec(path)


# ----- the wire from the module (plan A4)


def test_a_silent_or_garbled_wire_is_what_the_mcu_hears(
    kettle: tuple[Kettle, MiotModuleDriver],
) -> None:
    emu, driver = kettle
    assert driver.get("kettle.target") == 40
    emu.set_input("serial_link", 1.0)  # silent: the downlink never arrives
    with pytest.raises(DeviceTimeout, match="delivered but the MCU did not answer"):
        driver.get("kettle.target")
    emu.set_input("serial_link", 2.0)  # garbled: it arrives as noise
    since = time.time()

    def malformed() -> list[str]:
        return [
            r.data
            for r in driver.transport.capture.records()
            if r.t >= since and r.data.startswith('error "malformed')
        ]

    wait_for(malformed)  # each garbled "down none" is answered as a bad line
    assert all(e.endswith(" -5003") for e in malformed())
    emu.set_input("serial_link", 0.0)
    assert driver.get("kettle.target") == 40
    assert emu.state()["wire"] == 0
    with pytest.raises(EmulatorError, match="serial_link must be one of"):
        emu.set_input("serial_link", 3.0)
    assert "serial_link" in Kettle.INPUTS
    assert spec_input_kinds(emu.spec)["serial_link"] == "input"


def spec_input_kinds(spec: MiotSpec) -> dict[str, str]:
    return {n: s.kind for n, s in spec.definition("kettle").stimuli.items()}
