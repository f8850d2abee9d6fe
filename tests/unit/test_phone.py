"""The phone: its harness app over a real pty, and its hub link over a real TCP socket.

The emulator and the driver are built through the device type, as the bench
builds them. The hub here is a peer on loopback speaking the hub's JSON-lines
wire format (hello, calls, notifications), so the phone's client is exercised
on a real socket.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

import pytest

import devices.phone as phone_type
from devices.hub.api import HubApi
from devices.phone.driver import PhoneDriver
from devices.phone.emulator import PhoneEmulator
from hil import hublink
from hil.bench.links import LinkedDevice
from hil.bench.registry import DriverContext, EmulatorContext, get_device_type
from hil.errors import EmulatorError, ProtocolError
from hil.miot.codec import MAX_LINE_BYTES
from hil.transports.serial import SerialTransport

FAST = {"poll_period_s": 0.1}


class LoopbackHub:
    """A hub peer on 127.0.0.1: answers hellos and calls, pushes notifications."""

    def __init__(
        self, answer: Callable[[Mapping[str, Any]], Mapping[str, Any]], port: int = 0
    ) -> None:
        self.answer = answer
        self.server = socket.create_server(("127.0.0.1", port))
        self.server.settimeout(0.1)
        self.hellos: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def address(self) -> str:
        host, port = self.server.getsockname()[:2]
        return f"{host}:{port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            for raw in lines:
                message = json.loads(raw)
                if "hello" in message:
                    self.hellos.append(message["hello"])
                    self._send(conn, {"ok": True})
                elif "call" in message:
                    self.calls.append(message["call"])
                    self._send(conn, {"id": message["id"], "result": self.answer(message["call"])})

    @staticmethod
    def _send(conn: socket.socket, message: Mapping[str, Any]) -> None:
        with suppress(OSError):  # the phone went away
            conn.sendall(json.dumps(message).encode() + b"\n")

    def notify(self, **note: Any) -> None:
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            self._send(conn, {"notify": note})

    def drop_connections(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self.drop_connections()
        self.server.close()
        for thread in self._threads:
            thread.join(2.0)


def done(call: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"code": 0, "message": "ok"}


@pytest.fixture
def hub() -> Iterator[LoopbackHub]:
    peer = LoopbackHub(done)
    try:
        yield peer
    finally:
        peer.close()


@contextmanager
def phone(
    settings: Mapping[str, Any] | None = None, links: Mapping[str, Any] | None = None
) -> Iterator[tuple[PhoneEmulator, PhoneDriver]]:
    dtype = phone_type.DEVICE_TYPE
    definition = dtype.definition({})
    assert dtype.emulator is not None
    ctx = EmulatorContext(
        "phone", definition, (), 1.0, {**FAST, **(settings or {})}, {}, links=links or {}
    )
    emu = dtype.emulator(ctx)
    assert isinstance(emu, PhoneEmulator)
    emu.BOOT_RETRY_S = 0.02
    with emu, SerialTransport("phone", url=emu.endpoint["url"]) as transport:
        driver = dtype.driver(DriverContext("phone", transport, definition, {}, links=links or {}))
        assert isinstance(driver, PhoneDriver)
        try:
            yield emu, driver
        finally:
            driver.close()


def wait_for(cond: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# ----- the device type and the harness app


def test_phone_is_a_registered_miot_device_type() -> None:
    dtype = get_device_type("phone")
    assert dtype is phone_type.DEVICE_TYPE
    assert dtype.transport == "serial"
    definition = dtype.definition({})
    assert definition.stimuli["app.good-morning"].kind == "action"
    inputs = {n for n, s in definition.stimuli.items() if s.kind == "input"}
    # its own, and the wire fault every MIoT MCU has
    assert inputs == {"distance", "relay", "paired", "at_home", "serial_link"}
    assert definition.signals["notifications.notification-received"].kind == "bool"
    assert definition.signals["notifications.last-category"].kind == "string"
    assert "digital_key" in definition.capabilities


def test_harness_announces_itself_and_reports_its_key() -> None:
    with phone({"key_id": "DK-TEST-7"}) as (_emu, drv):
        assert drv.identity() == {"model": "hilbench.phone.v1", "firmware": "0103"}
        assert drv.paired is True
        assert drv.key_id == "DK-TEST-7"
        assert drv.hub_connected is False  # no hub on this bench
        assert drv.notification_count == 0


def test_inputs_move_the_phone_and_unpair_its_key() -> None:
    with phone() as (emu, drv):
        assert emu.distance_m == 20.0 and not emu.relayed and emu.key_paired
        since = time.time()
        emu.set_input("distance", 0.4)
        emu.set_input("relay", 1.0)
        emu.set_input("paired", 0.0)
        assert emu.distance_m == 0.4 and emu.relayed and not emu.key_paired
        # the harness reports the unpairing on its own
        wait_for(lambda: [s.value for s in drv.samples("key.paired", since) if s.t >= since])
        assert drv.samples("key.paired", since)[-1].value is False
        assert drv.paired is False


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_a_distance_that_is_no_distance_is_refused(bad: float) -> None:
    with phone() as (emu, _drv):
        with pytest.raises(EmulatorError, match="distance must be a number of metres"):
            emu.set_input("distance", bad)
        assert emu.distance_m == 20.0


def test_settings_are_checked_at_construction() -> None:
    for settings, words in (
        ({"hub_timeout_s": 3}, "hub_timeout_s must be in (0, 2]"),
        ({"distance_m": "near"}, "distance must be a number"),
        ({"hub_api": "nowhere"}, "settings.hub_api: expected 'host:port'"),
    ):
        with pytest.raises(EmulatorError, match=re.escape(words)), phone(settings):
            pass


# ----- the hub link


def test_phone_says_hello_and_reports_the_hub_link(hub: LoopbackHub) -> None:
    with phone({"hub_api": hub.address}) as (emu, drv):
        wait_for(lambda: emu.hub_connected)
        assert hub.hellos == [{"role": "phone", "device": "phone", "model": "hilbench.phone.v1"}]
        wait_for(lambda: drv.hub_connected)


def test_notification_reaches_the_bench_as_an_event(hub: LoopbackHub) -> None:
    with phone({"hub_api": hub.address}) as (emu, drv):
        wait_for(lambda: emu.hub_connected)
        since = time.time()
        hub.notify(category="door_alarm", device="fridge", text="Fridge door open", t=12.5)
        sample = drv.wait_notification(since, 3.0)
        assert sample.value is True and sample.t >= since
        wait_for(lambda: drv.notification_count == 1)
        assert drv.last_notification() == {
            "category": "door_alarm",
            "text": "Fridge door open",
            "device": "fridge",
        }
        assert emu.notifications[0]["t"] == 12.5
        # the event line carries category and text
        lines = [r.data for r in drv.transport.capture.records() if r.direction == "rx"]
        assert any(
            line.startswith('event_occured 4 1 1 "door_alarm" 2 "Fridge\\u0020door\\u0020open"')
            for line in lines
        ), lines


def test_a_long_notification_still_fits_one_line(hub: LoopbackHub) -> None:
    with phone({"hub_api": hub.address}) as (emu, drv):
        wait_for(lambda: emu.hub_connected)
        since = time.time()
        hub.notify(category="c" * 300, device="d" * 300, text="word " * 200, t=0)
        drv.wait_notification(since, 3.0)
        wait_for(lambda: drv.notification_count == 1)
        last = drv.last_notification()
        assert last["text"].startswith("word word") and last["category"].startswith("ccc")
        longest = max(len(r.data.encode()) for r in drv.transport.capture.records())
        assert longest <= MAX_LINE_BYTES


def test_good_morning_becomes_a_hub_scene_call(hub: LoopbackHub) -> None:
    with phone({"hub_api": hub.address}) as (_emu, drv):
        drv.good_morning()
        assert hub.calls == [
            {"kind": "command", "name": "scene", "args": {"scene": "good_morning"}}
        ]
        assert drv.get("app.last-command") == "good-morning"
        assert drv.get("app.last-result") == 0


def test_a_hub_refusal_is_a_refused_action() -> None:
    peer = LoopbackHub(lambda call: {"code": 3, "message": "scene busy"})
    try:
        with phone({"hub_api": peer.address}) as (_emu, drv):
            with pytest.raises(ProtocolError) as err:
                drv.good_morning()
            assert err.value.code == -4004
            assert drv.get("app.last-result") == 3
    finally:
        peer.close()


def test_a_silent_hub_never_blocks_open_and_commands_are_refused_in_bounded_time() -> None:
    # it takes the connection (the kernel's backlog) and never answers the hello
    with socket.create_server(("127.0.0.1", 0)) as silent:
        address = "{}:{}".format(*silent.getsockname()[:2])
        t0 = time.monotonic()
        with phone({"hub_api": address, "hub_timeout_s": 0.5}) as (emu, drv):
            assert time.monotonic() - t0 < 3.0  # open() did not wait for the hello
            t1 = time.monotonic()
            with pytest.raises(ProtocolError) as err:
                drv.good_morning()
            assert err.value.code == -4004
            assert time.monotonic() - t1 < 3.0  # hub_timeout_s + one poll, with slack
            assert drv.get("app.last-result") == -1
            assert not emu.hub_connected


def test_without_any_hub_the_app_refuses_commands() -> None:
    with phone() as (_emu, drv):
        with pytest.raises(ProtocolError) as err:
            drv.good_morning()
        assert err.value.code == -4004


def test_phone_reconnects_when_the_hub_drops_it(hub: LoopbackHub) -> None:
    with phone({"hub_api": hub.address}) as (emu, drv):
        wait_for(lambda: emu.hub_connected)
        hub.drop_connections()
        wait_for(lambda: len(hub.hellos) == 2)
        wait_for(lambda: emu.hub_connected)
        drv.good_morning()
        assert len(hub.calls) == 1


def test_phone_connects_when_the_hub_comes_up_later(unused_tcp_port: int) -> None:
    with phone({"hub_api": f"127.0.0.1:{unused_tcp_port}"}) as (emu, drv):
        time.sleep(0.3)  # a few refused attempts
        assert not emu.hub_connected
        peer = LoopbackHub(done, port=unused_tcp_port)
        try:
            wait_for(lambda: emu.hub_connected, timeout=5.0)  # the back-off tops out at 2 s
            drv.good_morning()
            assert peer.calls[0]["name"] == "scene"
        finally:
            peer.close()


def test_presence_is_told_to_the_hub_only_once_known(hub: LoopbackHub) -> None:
    with phone({"hub_api": hub.address}) as (emu, drv):
        wait_for(lambda: emu.hub_connected)
        time.sleep(0.3)
        assert hub.calls == []  # unknown presence: the hub is told nothing
        emu.set_input("at_home", 1.0)
        wait_for(lambda: emu.presence_told == [True])
        assert hub.calls == [{"kind": "command", "name": "presence", "args": {"home": True}}]
        assert drv.get("presence.at-home") is True
        emu.set_input("at_home", 0.0)
        wait_for(lambda: emu.presence_told == [True, False])
        # after a reconnect the hub hears it again
        hub.drop_connections()
        wait_for(lambda: emu.presence_told == [True, False, False])


def test_the_bench_side_of_the_harness_does_not_uplink_to_the_hub(hub: LoopbackHub) -> None:
    linked = LinkedDevice("home_hub", "hub", {}, endpoint={"api": hub.address})
    with phone(links={"hub": (linked,)}) as (emu, drv):
        wait_for(lambda: emu.hub_connected)
        time.sleep(0.2)
        # one hello, the app's; the driver's module side is no Wi-Fi module
        assert [h["role"] for h in hub.hellos] == ["phone"]
        assert getattr(drv, "uplink", None) is None


# ----- links


def test_linked_hub_address_comes_from_its_endpoint(hub: LoopbackHub) -> None:
    linked = LinkedDevice("home_hub", "hub", {}, endpoint={"api": hub.address})
    with phone(links={"hub": (linked,)}) as (emu, _drv):
        wait_for(lambda: emu.hub_connected)
        assert hub.hellos[0]["device"] == "phone"


def test_a_linked_hub_without_an_address_is_a_clear_error() -> None:
    linked = LinkedDevice("home_hub", "hub", {})
    with (
        pytest.raises(EmulatorError, match="publishes no 'api' endpoint"),
        phone(links={"hub": (linked,)}),
    ):
        pass


def test_a_car_without_a_digital_key_module_is_a_clear_error() -> None:
    class Charger:  # any emulator object without a digital_key attribute
        pass

    linked = LinkedDevice("wallbox", "charger", {}, emulator=Charger())  # type: ignore[arg-type]
    with (
        pytest.raises(EmulatorError, match="has no digital key module"),
        phone(links={"car": (linked,)}),
    ):
        pass


def test_a_real_car_is_not_reached_by_an_emulated_phone() -> None:
    linked = LinkedDevice("ev", "ev", {"interface": "socketcan", "channel": "can0"})
    with phone(links={"car": (linked,)}) as (emu, _drv):
        assert emu.state()["car"] is False


def test_phone_against_the_hubs_own_api_server() -> None:
    """The same conversation with the hub's real API server (devices/hub/api.py)."""
    api = HubApi("hub")
    api.start()
    try:
        with phone({"hub_api": api.address}) as (emu, drv):
            hello = api.events.get(timeout=3.0)
            assert (hello.kind, hello.role, hello.device) == ("hello", "phone", "phone")
            assert hello.model == "hilbench.phone.v1"
            wait_for(lambda: emu.hub_connected)
            since = time.time()
            delivered = api.notify(hublink.notify("door_alarm", "fridge", "door open", 1.0))
            assert delivered == 1
            drv.wait_notification(since, 3.0)
            wait_for(lambda: drv.notification_count == 1)
            assert drv.last_notification()["category"] == "door_alarm"
            emu.set_input("at_home", 1.0)
            command = api.events.get(timeout=3.0)
            assert (command.kind, command.body) == (
                "command",
                {"kind": "command", "name": "presence", "args": {"home": True}},
            )
            api.answer("phone", command.ident, hublink.result(0))
            wait_for(lambda: emu.presence_told == [True])
    finally:
        api.stop()
