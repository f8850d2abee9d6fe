"""Bench files: the shipped ones load; each mistake gets a clear error at its line."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import can
import pytest
import serial
from pyvisa_py.tcpip import TCPIPSocketSession

from hil.bench.bench import Bench, open_bench
from hil.bench.loader import load_bench
from hil.errors import BenchError, HilError, TransportOpenError
from hil.transports.can import CanTransport
from hil.transports.serial import SerialTransport
from hil.transports.visa import VisaTransport
from tests.conftest import EMULATED_BENCH, LAB_BENCH


def test_shipped_benches_validate() -> None:
    emulated = load_bench(EMULATED_BENCH)
    home = {"hub", "lights", "air_conditioner", "coffee_maker", "fridge", "robot_vacuum"}
    assert set(emulated.config.devices) == {
        "ev",
        "smart_plug",
        "power_analyzer",
        "charger",
        "oven",
        "phone",
        *home,
    }
    # every appliance reaches the hub through its module; the hub reaches the car and charger
    assert all(emulated.config.devices[d].links == {"hub": "hub"} for d in home - {"hub"})
    assert emulated.config.devices["hub"].links == {"car": "ev", "charger": "charger"}
    assert all(d.emulated for d in emulated.config.devices.values())
    lab = load_bench(LAB_BENCH)  # validated, never opened
    assert lab.config.devices["ev"].can is not None
    assert lab.config.devices["ev"].can.interface == "socketcan"
    assert lab.config.devices["smart_plug"].serial is not None
    assert lab.config.devices["smart_plug"].serial.port == "/dev/ttyUSB0"
    assert lab.config.devices["power_analyzer"].visa is not None
    assert lab.config.devices["power_analyzer"].visa.resource == "TCPIP::192.0.2.10::INSTR"
    assert set(lab.definitions()) == set(emulated.definitions())


def _bench(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bench.yaml"
    path.write_text(textwrap.dedent(body))
    return path


GOOD_HEAD = """\
spec: 1
id: t
devices:
"""


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (
            "spec: 1\nid: t\ndevices: {ev: {type: ev, emulated: true, can: {interface: virtual, channel: c}}\n",
            4,
            "malformed YAML: did not find expected ',' or '}' (while parsing a flow mapping that began at line 3)",
        ),
        (
            GOOD_HEAD
            + "  ev: {type: ev, emulated: true, can: {interface: virtual, channel: c}, colour: red}\n",
            4,
            "unknown key 'colour'",
        ),
        (
            GOOD_HEAD + "  ev: {type: ev, emulated: true, can: {interface: virtual, channel: c}}\n"
            "  ev: {type: ev, emulated: true, can: {interface: virtual, channel: d}}\n",
            5,
            "duplicate key 'ev' (first at line 4)",
        ),
        (
            GOOD_HEAD
            + "  ev: {type: evv, emulated: true, can: {interface: virtual, channel: c}}\n",
            4,
            "unknown device type 'evv'; did you mean 'ev'?",
        ),
        (
            GOOD_HEAD + "  ev: {type: ev, emulated: true, serial: {port: auto}}\n",
            4,
            "is reached over 'can'",
        ),
        (
            GOOD_HEAD + "  plug: {type: smart_plug, serial: {port: auto}}\n",
            4,
            "needs a real port, not 'auto'",
        ),
        (
            GOOD_HEAD + "  ev: {type: ev, emulated: true, can: {interface: virtual, channel: c},"
            " defects: [no_auto_lok]}\n",
            4,
            "unknown defect 'no_auto_lok'; did you mean 'no_auto_lock'",
        ),
        (
            GOOD_HEAD
            + "  pa: {type: power_analyzer, emulated: true, visa: {}, wiring: {1: plgu}}\n",
            4,
            "wired to unknown device 'plgu'",
        ),
        ("spec: 2\nid: t\ndevices: {}\n", 1, "this hil reads spec 1; upgrade hil"),
        ("id: t\ndevices: {}\n", 1, "missing 'spec: 1'"),
        (
            GOOD_HEAD
            + "  ev: {type: ev, emulated: true, can: {interface: virtual, channel: c, bitrate: fast}}\n",
            4,
            "devices.ev.can.bitrate",
        ),
    ],
)
def test_bench_mistakes_are_located(tmp_path: Path, body: str, line: int, words: str) -> None:
    path = _bench(tmp_path, body)
    with pytest.raises(BenchError) as err:
        load_bench(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}"), message
    assert words in message, message


def test_defect_override_must_name_a_device_and_defect() -> None:
    with pytest.raises(BenchError, match="did you mean 'ev'"):
        load_bench(EMULATED_BENCH, ["evv:no_auto_lock"])
    with pytest.raises(BenchError, match="DEVICE:DEFECT"):
        load_bench(EMULATED_BENCH, ["no_auto_lock"])
    loaded = load_bench(EMULATED_BENCH, ["ev:no_auto_lock"])
    assert loaded.config.devices["ev"].defects == ["no_auto_lock"]


def test_serial_path_that_does_not_exist(tmp_path: Path) -> None:
    path = _bench(
        tmp_path, GOOD_HEAD + "  plug: {type: smart_plug, serial: {port: /dev/hil-no-such-tty}}\n"
    )
    with pytest.raises(TransportOpenError) as err:
        open_bench(path)
    assert err.value.device == "plug"
    assert "/dev/hil-no-such-tty" in str(err.value)


def test_instrument_that_refuses_the_connection(tmp_path: Path, unused_tcp_port: int) -> None:
    resource = f"TCPIP::127.0.0.1::{unused_tcp_port}::SOCKET"
    path = _bench(
        tmp_path,
        GOOD_HEAD
        + f"  pa: {{type: power_analyzer, visa: {{resource: '{resource}', timeout_s: 2}}}}\n",
    )
    with pytest.raises(TransportOpenError) as err:
        open_bench(path)
    assert err.value.device == "pa"
    assert resource in str(err.value)


def test_open_bench_starts_and_stops_every_emulator() -> None:
    with Bench(load_bench(EMULATED_BENCH)) as bench:
        assert set(bench.drivers) == set(bench.config.devices)
        ids = bench.identities()
        assert all("error" not in i for i in ids.values()), ids
        with pytest.raises(HilError, match="did you mean 'ev'"):
            bench.get("evv")
        # the lab's code path: a python-can Bus, a tty opened by path, a pyvisa-py socket
        can_t = bench.transports["ev"]
        assert isinstance(can_t, CanTransport)
        assert isinstance(can_t._bus, can.BusABC) and can_t._bus.channel_info.startswith("Virtual")
        ser_t = bench.transports["smart_plug"]
        assert isinstance(ser_t, SerialTransport)
        assert isinstance(ser_t._port, serial.Serial) and ser_t._port.port == ser_t.url
        assert ser_t.url.startswith("/dev/pts/") and os.isatty(ser_t._port.fileno())
        visa_t = bench.transports["power_analyzer"]
        assert isinstance(visa_t, VisaTransport) and visa_t._inst is not None
        session = visa_t._inst.visalib.sessions[visa_t._inst.session]  # type: ignore[attr-defined]
        assert isinstance(session, TCPIPSocketSession)
        assert visa_t.resource.startswith("TCPIP::127.0.0.1::")


# --- links: the devices a device connects to, by role ------------------------------

EV_LINE = "  ev: {type: ev, emulated: true, can: {interface: virtual, channel: car}}\n"
CHARGER = "  charger: {type: charger, emulated: true, can: {interface: virtual, channel: home}"


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (
            GOOD_HEAD + EV_LINE + CHARGER + ", links: {car: evv}}\n",
            5,
            "device 'charger' links (car) to unknown device 'evv'; did you mean 'ev'?",
        ),
        (
            GOOD_HEAD + EV_LINE + CHARGER + ", links: {cars: [ev, charger]}}\n",
            5,
            "device 'charger' links (cars) to itself",
        ),
        (
            GOOD_HEAD
            + "  ev: {type: ev, emulated: true, can: {interface: virtual, channel: car},\n"
            "       links: {home: charger}}\n" + CHARGER + ", links: {car: ev}}\n",
            6,
            "devices link in a cycle: ev → charger → ev",
        ),
        (
            GOOD_HEAD + EV_LINE + CHARGER + ", links: {Car: ev}}\n",
            5,
            "devices.charger.links",
        ),
    ],
)
def test_link_mistakes_are_located(tmp_path: Path, body: str, line: int, words: str) -> None:
    path = _bench(tmp_path, body)
    with pytest.raises(BenchError) as err:
        load_bench(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}"), message
    assert words in message, message


def test_linked_devices_open_first_and_are_reached_over_their_own_transport(
    tmp_path: Path,
) -> None:
    """The linker is written first, yet its peers open before it; the LinkedDevice
    carries the channel the bench opened (with its per-instance suffix), and a bus
    opened from those settings hears the peer's own frames."""
    path = _bench(
        tmp_path,
        GOOD_HEAD
        + CHARGER
        + ", links: {car: ev, others: [plug]}}\n"
        + EV_LINE
        # plug has no links: file order holds for it
        + "  plug: {type: smart_plug, emulated: true, serial: {port: auto}}\n",
    )
    loaded = load_bench(path)
    with Bench(loaded) as bench:
        assert list(bench.drivers) == ["ev", "plug", "charger"]
        links = bench._links(loaded.config.devices["charger"])
        (car,) = links["car"]
        (plug,) = links["others"]
        ev_transport = bench.transports["ev"]
        assert isinstance(ev_transport, CanTransport)
        assert car.name == "ev" and car.type == "ev" and car.emulated
        assert car.transport["channel"] == ev_transport.channel != "car"
        assert car.emulator is bench.emulators["ev"]
        plug_transport = bench.transports["plug"]
        assert isinstance(plug_transport, SerialTransport)
        assert plug.transport["port"] == plug_transport.url
        with can.Bus(interface="virtual", channel=car.transport["channel"]) as bus:
            assert bus.recv(timeout=2.0) is not None  # the car's cyclic frames
    assert not bench.emulators and not bench._resolved
