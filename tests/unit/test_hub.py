"""The home hub: the hub-link wire format, its API server and clients, the module
uplink, the hub's rules and current management, and the hub on a bench with links."""

from __future__ import annotations

import json
import socket
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devices.charger.driver import ChargerDriver
from devices.hub.api import HubApi
from devices.hub.driver import HubDriver
from devices.hub.emulator import HubEmulator
from devices.hub.energy import appliance_current, charge_limit
from devices.hub.home import Call, Home, Notice
from hil import hublink
from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from hil.errors import BenchError


def wait(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


# --- the wire format ---------------------------------------------------------------------


def test_messages_are_one_json_object_per_line() -> None:
    data = hublink.encode(hublink.report_property("oven", "oven.heater", True, 12.5))
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert hublink.decode(data[:-1]) == {
        "report": {
            "device": "oven",
            "kind": "property",
            "name": "oven.heater",
            "value": True,
            "t": 12.5,
        }
    }
    with pytest.raises(hublink.LinkFormatError, match="exceeds 4096"):
        hublink.encode({"x": "a" * 5000})
    with pytest.raises(hublink.LinkFormatError, match="not JSON"):
        hublink.decode(b"{nope")
    with pytest.raises(hublink.LinkFormatError, match="JSON object, got list"):
        hublink.decode(b"[1, 2]")
    with pytest.raises(hublink.LinkFormatError, match="not UTF-8"):
        hublink.decode(b'"\xff"')


def test_connection_splits_lines_and_refuses_overlong_ones() -> None:
    a, b = socket.socketpair()
    try:
        conn = hublink.Connection(a, "t")
        assert conn.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
        assert conn.feed(b":2}\n") == [b'{"b":2}']
        out = conn.feed(b"x" * 5000)
        assert len(out) == 1 and isinstance(out[0], hublink.LinkFormatError)
        assert conn.feed(b"yyy\n{}\n") == [b"{}"]  # the rest of the long line is dropped
    finally:
        a.close()
        b.close()


def test_call_checks_and_addresses() -> None:
    assert hublink.check_call(hublink.call_set("light.on", True)) is None
    assert hublink.check_call({"kind": "get", "name": "x"}) is not None
    assert hublink.check_call({"kind": "set", "name": "x"}) == "a set call needs a 'value'"
    assert hublink.parse_address("127.0.0.1:80") == ("127.0.0.1", 80)
    with pytest.raises(ValueError, match="host:port"):
        hublink.parse_address("localhost")


# --- the API server and its clients --------------------------------------------------------


@pytest.fixture
def api() -> Iterator[HubApi]:
    server = HubApi("hub")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _raw(api: HubApi) -> tuple[socket.socket, Callable[[], dict[str, object]]]:
    host, port = hublink.parse_address(api.address)
    sock = socket.create_connection((host, port), timeout=2)
    reader = sock.makefile("rb")

    def read() -> dict[str, object]:
        return dict(json.loads(reader.readline()))

    return sock, read


def test_malformed_input_is_answered_never_fatal(api: HubApi) -> None:
    sock, read = _raw(api)
    with sock:
        sock.sendall(b'{"report": {}}\n')
        assert read() == {"error": "say hello first"}
        sock.sendall(b"not json\n")
        assert "not JSON" in str(read()["error"])
        sock.sendall(b'{"hello": {"role": "toaster", "device": "x", "model": "m"}}\n')
        assert read()["ok"] is False
        sock.sendall(b"z" * 5000 + b"\n")
        assert "longer than 4096" in str(read()["error"])
        sock.sendall(json.dumps(hublink.hello("phone", "phone", "p")).encode() + b"\n")
        assert read() == {"ok": True}
        sock.sendall(b'{"id": 3, "call": {"kind": "fly", "name": "x"}}\n')
        answer = read()
        assert answer["id"] == 3 and dict(answer["result"])["code"] == -4006  # type: ignore[call-overload]
    assert api.malformed >= 4


def test_client_calls_and_results_both_ways(api: HubApi) -> None:
    seen: list[hublink.Message] = []

    def on_call(call: hublink.Message) -> hublink.Message:
        seen.append(call)
        return hublink.result(0)

    with hublink.HubLinkClient(
        api.address, role="module", device="lights", model="yeelink.light.v3", on_call=on_call
    ) as client:
        assert client.connected.wait(2)
        event = api.events.get(timeout=2)
        assert (event.kind, event.device, event.model) == ("hello", "lights", "yeelink.light.v3")
        ident = api.call("lights", hublink.call_set("light.on", True))
        assert ident is not None
        result = api.events.get(timeout=2)
        assert (result.kind, result.ident, result.body) == ("result", ident, {"code": 0})
        assert seen == [hublink.call_set("light.on", True)]
        assert client.send(hublink.report_event("lights", "light.x", {}, 1.0))
        assert api.events.get(timeout=2).kind == "report"
    assert api.events.get(timeout=2).kind == "bye"
    assert api.call("lights", hublink.call_set("light.on", True)) is None


def test_client_reconnects_after_the_hub_drops_it(api: HubApi) -> None:
    with hublink.HubLinkClient(api.address, role="phone", device="phone", model="p") as client:
        assert client.connected.wait(2)
        assert api.hang_up("phone")
        wait(lambda: client.connects >= 2)
        assert api.connected("phone") == ["phone"]


# --- rules and current management ------------------------------------------------------------


def _home(defects: frozenset[str] = frozenset()) -> Home:
    home = Home({}, defects)
    for device, model in (
        ("oven", "chunmi.oven.v2"),
        ("lights", "yeelink.light.v3"),
        ("ac", "xiaomi.aircondition.v4"),
        ("coffee", "scishare.coffee.v2"),
        ("vacuum", "dreame.vacuum.v4"),
        ("fridge", "viomi.fridge.v3"),
    ):
        home.connected(device, model)
    return home


def _calls(outcome: list[Call | Notice]) -> list[tuple[str, str]]:
    return [(c.device, c.call["name"]) for c in outcome if isinstance(c, Call)]


def test_first_observation_acts_on_nothing_then_edges_do() -> None:
    home = _home()
    assert home.car(20, 0) == []  # at power-up: no scene, no occupancy writes
    assert home.occupied is True
    leaving = home.car(5000, 3)
    assert ("oven", "home.occupancy") in _calls(leaving) and home.occupied is False
    assert home.car(50, 3) == [
        Call("oven", hublink.call_set("home.occupancy", True), "occupancy"),
        Call("vacuum", hublink.call_set("home.occupancy", True), "occupancy"),
    ]  # arrived, but not parked yet
    welcome = _calls(home.car(50, 0))
    assert ("lights", "light.on") in welcome and ("ac", "air-conditioner.on") in welcome
    assert home.scene == "welcome_home"
    assert home.car(50, 0) == []  # once per arrival


def test_no_welcome_scene_defect() -> None:
    home = _home(frozenset({"no_welcome_scene"}))
    home.car(5000, 3)
    assert not any(c.purpose == "welcome_home" for c in home.car(10, 0) if isinstance(c, Call))


def test_leaving_with_the_oven_on_notifies_and_switches_it_off() -> None:
    home = _home()
    home.car(10, 0)
    home.report("oven", {"kind": "property", "name": "oven.on", "value": True})
    out = home.car(500, 3)
    assert Notice("left_home_oven_on", "oven", "oven is on and nobody is home") in out
    assert Call("oven", hublink.call_set("oven.on", False), "leaving") in out
    quiet = _home(frozenset({"no_leaving_notice"}))
    quiet.car(10, 0)
    quiet.report("oven", {"kind": "property", "name": "oven.on", "value": True})
    assert not any(isinstance(i, Notice) for i in quiet.car(500, 3))


def test_morning_scene_preheats_only_with_someone_home() -> None:
    home = _home()
    home.car(10, 0)
    assert _calls(home.run_scene("good_morning")) == [
        ("lights", "light.on"),
        ("coffee", "coffee-maker.brew"),
        ("oven", "home.occupancy"),
        ("oven", "oven.preheat"),
    ]
    home.car(5000, 3)
    assert ("oven", "oven.preheat") not in _calls(home.run_scene("good_morning"))
    incomplete = _home(frozenset({"morning_scene_incomplete"}))
    assert ("coffee", "coffee-maker.brew") not in _calls(incomplete.run_scene("good_morning"))
    with pytest.raises(ValueError, match="unknown scene 'brunch'"):
        home.run_scene("brunch")


def test_vacuum_stops_and_docks_when_someone_is_home() -> None:
    home = _home()
    home.car(5000, 3)
    assert home.report("vacuum", {"kind": "property", "name": "vacuum.status", "value": 1}) == []
    arrival = _calls(home.car(10, 3))
    assert arrival[-2:] == [("vacuum", "vacuum.pause"), ("vacuum", "vacuum.dock")]
    started = home.report("vacuum", {"kind": "property", "name": "vacuum.status", "value": 1})
    assert _calls(started) == [("vacuum", "vacuum.pause"), ("vacuum", "vacuum.dock")]
    lazy = _home(frozenset({"vacuum_not_docked"}))
    lazy.car(10, 0)
    out = lazy.report("vacuum", {"kind": "property", "name": "vacuum.status", "value": 1})
    assert _calls(out) == [("vacuum", "vacuum.pause")]


def test_door_alarm_is_forwarded_unless_dropped() -> None:
    alarm = {"kind": "event", "name": "fridge.door-alarm", "args": {}}
    assert [n.category for n in _home().report("fridge", alarm) if isinstance(n, Notice)] == [
        "door_alarm"
    ]
    assert _home(frozenset({"drops_door_alarm"})).report("fridge", alarm) == []


@pytest.mark.parametrize(
    ("limit", "others", "defects", "expected"),
    [
        (32, 0.0, (), 32.0),
        (32, 10.9, (), 21.1),
        (32, 26.5, (), 0.0),  # 5.5 A headroom: pause, never below 6 A
        (32, 26.0, (), 6.0),
        (40, 0.0, (), 32.0),  # capped at the wallbox maximum
        (32, 10.9, ("ignores_household_limit",), 32.0),
        (32, 28.0, ("sheds_below_minimum",), 4.0),
    ],
)
def test_charge_limit(
    limit: float, others: float, defects: tuple[str, ...], expected: float
) -> None:
    assert charge_limit(limit, others, 32.0, frozenset(defects)) == pytest.approx(expected)


def test_appliance_current_from_current_or_power() -> None:
    assert appliance_current({"power-consumption.electric-current": 2.0}, 230) == 2.0
    assert appliance_current({"power-consumption.electric-power": 2300.0}, 230) == 10.0
    assert appliance_current({"oven.on": True}, 230) == 0.0


# --- the hub on a bench: links, the module uplink -------------------------------------------

BENCH = """\
spec: 1
id: hub-test
devices:
  hub:
    type: hub
    emulated: true
    can: {interface: virtual, channel: home}
    links: {charger: charger}
  lights:
    type: lights
    emulated: true
    serial: {port: auto}
    links: {hub: hub}
  charger:
    type: charger
    emulated: true
    can: {interface: virtual, channel: home}
"""


def test_hub_drives_the_charger_and_reaches_modules(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(BENCH)
    with Bench(load_bench(path)) as bench:
        assert list(bench.drivers) == ["charger", "hub", "lights"]  # peers first
        hub = bench.emulators["hub"]
        assert isinstance(hub, HubEmulator)
        assert hub.endpoint["api"].startswith("127.0.0.1:")
        charger = bench.get("charger")
        # the hub's heartbeat reaches the charger over the charger's own bus
        charger.wait_for("EVSE_Status.LinkState", "OK", 3.0)  # type: ignore[attr-defined]
        wait(lambda: hub.state()["appliances"] == {"lights": "light"})
        # the module relays an accepted write up, by name
        lights = bench.get("lights")
        lights.stimulate("light.on", {"value": True})
        wait(lambda: hub.home.appliances["lights"].props.get("light.on") is True)
        # and the hub's own call comes down as an ordinary downlink
        with hub._lock:
            hub._execute([Call("lights", hublink.call_set("light.on", False), "test")])
        wait(lambda: hub.calls[-1].code == 0)
        assert lights.read("light.on").value is False
        # pulling the charger cable: the charger falls back by its timeout
        bench.stimulate("hub", "charger_link", {"value": 0.0})
        charger.wait_for("EVSE_Status.LinkState", "LOST", 3.0)  # type: ignore[attr-defined]
        assert bench.get("hub").read("HUB_Status.ChargerLink").value == 1  # CUT


def test_hub_stands_back_while_the_bench_plays_it(tmp_path: Path) -> None:
    """A plan that sends HUB_ChargeLimit itself is not fought: the hub goes quiet
    until HIL_HubCtrl hands the charger back (or yield_s passes)."""
    path = tmp_path / "bench.yaml"
    path.write_text(BENCH)
    with Bench(load_bench(path)) as bench:
        charger, hub = bench.get("charger"), bench.get("hub")
        assert isinstance(charger, ChargerDriver) and isinstance(hub, HubDriver)
        hub.wait_for("HUB_Status.ChargerLink", "OK", 3.0)
        t = charger.set_limit(10)
        hub.wait_for("HUB_Status.ChargerLink", "BENCH", 1.0)
        time.sleep(1.5)  # longer than the hub's heartbeat: it would have sent by now
        sent = charger.frames("HUB_ChargeLimit", t)
        assert [f["CurrentLimit"] for _, f in sent] == [10.0]  # only the bench's own frame
        t = hub.control()  # ChargeControl HUB
        hub.wait_for("HUB_Status.ChargerLink", "OK", 1.0, since=t)
        charger.wait_for("HUB_ChargeLimit.CurrentLimit", 32.0, 2.0, since=t)


def test_linked_hub_without_an_address_is_a_bench_error(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(
        textwrap.dedent("""\
        spec: 1
        id: t
        devices:
          hub: {type: hub, can: {interface: virtual, channel: h}}
          lights: {type: lights, emulated: true, serial: {port: auto}, links: {hub: hub}}
        """)
    )
    with pytest.raises(BenchError, match="publishes no API address"):
        Bench(load_bench(path)).open()


HOME_BENCH = """\
spec: 1
id: hub-home
devices:
  ev:
    type: ev
    emulated: true
    can: {interface: virtual, channel: car}
  hub:
    type: hub
    emulated: true
    can: {interface: virtual, channel: home}
    links: {car: ev}
  lights:
    type: lights
    emulated: true
    serial: {port: auto}
    links: {hub: hub}
  coffee_maker:
    type: coffee_maker
    emulated: true
    serial: {port: auto}
    links: {hub: hub}
  oven:
    type: oven
    emulated: true
    serial: {port: auto}
    links: {hub: hub}
  fridge:
    type: fridge
    emulated: true
    serial: {port: auto}
    links: {hub: hub}
    settings: {alarm_delay_s: 1, alarm_repeat_s: 60}
"""


def test_hub_reads_the_car_runs_the_morning_scene_and_forwards_the_door_alarm(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(HOME_BENCH)
    with Bench(load_bench(path)) as bench:
        hub = bench.emulators["hub"]
        assert isinstance(hub, HubEmulator)
        hub_driver = bench.get("hub")
        wait(lambda: len(hub.state()["appliances"]) == 4)
        # the car, on its own CAN: parked at home (settings.home_distance_m 0), then away
        wait(lambda: hub.state()["car_home"] is True)
        bench.get("ev").stimulate("HIL_VehicleSim", {"HomeDistance": 5000})
        wait(lambda: hub_driver.read("HUB_Status.CarHome").value == 0)  # AWAY
        assert hub.calls[-1].call == hublink.call_set("home.occupancy", False)
        notices: list[hublink.Message] = []
        with hublink.HubLinkClient(
            hub.endpoint["api"], role="phone", device="phone", model="p", on_notify=notices.append
        ) as phone:
            assert phone.connected.wait(2)
            # nobody home: the morning scene leaves the oven alone
            answer = phone.request(hublink.command("scene", {"scene": "good_morning"}), 8.0)
            assert answer == {"code": 0}
            morning = [c for c in hub.calls if c.purpose == "good_morning"]
            assert [(c.device, c.call["name"]) for c in morning] == [
                ("lights", "light.on"),
                ("coffee_maker", "coffee-maker.brew"),
            ]
            assert bench.get("lights").read("light.on").value is True
            # the phone says someone is home: now the oven preheats too (A2 agrees)
            assert phone.request(hublink.command("presence", {"home": True})) == {"code": 0}
            answer = phone.request(hublink.command("scene", {"scene": "good_morning"}), 8.0)
            assert answer["code"] in (0, -4004), answer  # the coffee maker may still be busy
            oven = bench.get("oven")
            assert oven.read("home.occupancy").value is True
            wait(lambda: oven.read("oven.mode").value == 1)  # preheat
            unknown = phone.request(hublink.command("scene", {"scene": "brunch"}))
            assert unknown["code"] == -4006 and "unknown scene" in unknown["message"]
            # the fridge's door alarm reaches the phone
            bench.stimulate("fridge", "door", {"value": 1.0})
            wait(lambda: any(n["category"] == "door_alarm" for n in notices), timeout=10)
            bench.stimulate("fridge", "door", {"value": 0.0})
        assert hub_driver.read("HUB_Status.LastNotify").value == 1  # DOOR_ALARM
