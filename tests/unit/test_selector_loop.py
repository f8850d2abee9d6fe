"""One selector loop per side serves every pty: threads do not grow with devices.

The bench side (``SerialTransport``) and the emulator side (``MiotMcuEmulator``)
each share one loop thread; these tests open many real ptys at once, check the
thread count, that every line is still captured, and that a hung or waiting
device does not hold up the others.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import termios
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from hil.emulation.pty import PtyLink
from hil.miot.mcu import MiotMcuEmulator
from hil.miot.module import MiotModuleDriver
from hil.miot.spec import MiotSpec, load_spec
from hil.transports import selector_loop
from hil.transports.serial import SerialTransport

PTYS = 50
FAST = {"poll_period_s": 0.1}  # the fastest polling the protocol allows
SPEC_YAML = """\
spec: 1
model: acme.lamp.v1
mcu_version: "0001"
services:
  - siid: 2
    name: lamp
    properties:
      - {piid: 1, name: power, type: bool, access: [read, write, notify]}
    actions:
      - {aiid: 1, name: wait, in: [], out: []}
"""


class Lamp(MiotMcuEmulator):
    """An appliance with nothing but a switch."""


class WaitingLamp(MiotMcuEmulator):
    """Its action waits for ``release`` (as the phone waits for its hub): a blocking hook."""

    OWN_LOOP: ClassVar[bool] = True
    release = threading.Event()
    entered = threading.Event()

    def _on_action(self, name: str, args: Mapping[str, Any]) -> Mapping[str, Any]:
        self.entered.set()
        self.release.wait(10.0)
        return {}


@pytest.fixture
def spec(tmp_path: Path) -> MiotSpec:
    path = tmp_path / "lamp.yaml"
    path.write_text(SPEC_YAML)
    return load_spec(path)


def hil_threads() -> list[str]:
    """hil's own threads (other libraries' may come and go while a test runs)."""
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("hil-"))


def unread_bytes(fd: int) -> int:
    """Bytes waiting in a pty for its reader (FIONREAD)."""
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]


def wait_for(cond: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@contextlib.contextmanager
def appliances(
    spec: MiotSpec, emulators: list[MiotMcuEmulator]
) -> Iterator[list[MiotModuleDriver]]:
    """Each emulator opened with a transport and a module driver on its pty."""
    definition = spec.definition("lamp")
    with contextlib.ExitStack() as stack:
        drivers = []
        for emu in emulators:
            stack.enter_context(emu)
            transport = stack.enter_context(SerialTransport(emu.name, url=emu.endpoint["url"]))
            driver = MiotModuleDriver(emu.name, transport, definition, spec, rpc_timeout=3.0)
            stack.callback(driver.close)
            drivers.append(driver)
        yield drivers


# ----- the bench side


def test_fifty_serial_ports_share_one_reader_thread_and_every_line_is_captured() -> None:
    assert hil_threads() == []
    with contextlib.ExitStack() as stack:
        links = [PtyLink() for _ in range(PTYS)]
        for link in links:
            stack.callback(link.close)
        ports = [
            stack.enter_context(SerialTransport(f"port{i}", url=link.path))
            for i, link in enumerate(links)
        ]
        assert all(port.on_shared_loop for port in ports)
        # the one loop thread, where a reader per port made it PTYS threads
        assert hil_threads() == ["hil-selector-serial"]
        sent = time.time()
        for i, link in enumerate(links):
            link.write(f"hello {i}\r".encode())
        for i, port in enumerate(ports):
            wait_for(lambda port=port: port.capture.seq >= 1)  # type: ignore[misc]
            [record] = port.capture.records()
            assert (record.direction, record.data) == ("rx", f"hello {i}")
            assert record.t >= sent  # stamped when the bytes came, not before they were sent
    assert hil_threads() == []  # the last port closed stopped the loop


def test_a_line_split_across_reads_is_framed_whole_and_an_overlong_one_is_kept() -> None:
    link = PtyLink()
    with contextlib.closing(link), SerialTransport("p", url=link.path, max_line=16) as port:
        link.write(b"get_")
        wait_for(lambda: port._buf == bytearray(b"get_"))
        link.write(b"down\r" + b"x" * 20)
        wait_for(lambda: port.capture.seq >= 2)
        assert [r.data for r in port.capture.records()] == ["get_down", "x" * 20]


def test_a_pty_that_disappears_is_lost_and_leaves_the_loop() -> None:
    alive = PtyLink()
    with contextlib.closing(alive), SerialTransport("other", url=alive.path) as other:
        link = PtyLink()  # its port keeps the shared loop running while this one dies
        with SerialTransport("gone", url=link.path) as port:
            link.close()
            wait_for(lambda: port.lost is not None)
            assert port.lost is not None and "failed" in port.lost.reason
            # level-triggered: a dead fd left registered would spin the loop and starve others
            loop = port._loop
            assert loop is not None and port._fd not in loop._readers
        assert other.lost is None


def test_a_url_port_without_a_tty_fd_keeps_a_reader_thread_of_its_own() -> None:
    # loop:// like rfc2217:// and socket:// speaks through pyserial's read(), not a raw fd
    with SerialTransport("echo", url="loop://") as port:
        assert not port.on_shared_loop
        assert any(t.name == "hil-serial-echo" for t in threading.enumerate())
        port.write_line("ping")
        wait_for(lambda: any(r.direction == "rx" for r in port.capture.records()))
        # the echo may be captured before the write records itself: compare as a set
        assert {(r.direction, r.data) for r in port.capture.records()} == {
            ("tx", "ping"),
            ("rx", "ping"),
        }


# ----- the emulator side


def test_fifty_mcus_share_one_loop_and_all_boot_and_answer(spec: MiotSpec) -> None:
    assert hil_threads() == []
    lamps: list[MiotMcuEmulator] = [Lamp(f"lamp{i}", spec, settings=FAST) for i in range(PTYS)]
    with appliances(spec, lamps) as drivers:
        # one MCU loop and one serial loop, where each pty had an MCU and a reader thread
        assert hil_threads() == ["hil-selector-miot-mcu", "hil-selector-serial"]
        wait_for(lambda: all(lamp.booted and lamp.polls > 0 for lamp in lamps))
        drivers[PTYS - 1].set("lamp.power", True)
        assert lamps[PTYS - 1].value("lamp.power") is True
        assert drivers[0].get("lamp.power") is False
    assert hil_threads() == []


def test_a_hung_mcu_does_not_stall_the_others_on_the_loop(spec: MiotSpec) -> None:
    hanging = Lamp("hanging", spec, defects=["hangs_on_long_line"], settings=FAST)
    healthy = Lamp("healthy", spec, settings=FAST)
    with appliances(spec, [hanging, healthy]) as (to_hanging, to_healthy):
        wait_for(lambda: hanging.booted and healthy.booted)
        to_hanging.transport.write_line("x" * 600)  # longer than the 512-byte receive buffer
        wait_for(lambda: hanging.hung)
        polls = hanging.polls
        # its receiver still drains the wire (the bench's writes never back up), deaf
        to_hanging.transport.write_line("down none")
        assert hanging._link is not None
        master = hanging._link.master
        wait_for(lambda: unread_bytes(master) == 0)
        healthy_polls = healthy.polls
        wait_for(lambda: healthy.polls >= healthy_polls + 5)
        to_healthy.set("lamp.power", True)  # still answered, on the same loop
        assert healthy.value("lamp.power") is True
        assert hanging.polls == polls  # deaf and mute for good, as the defect says


def test_a_device_whose_hook_waits_has_its_own_loop_and_the_shared_one_runs_on(
    spec: MiotSpec,
) -> None:
    WaitingLamp.release.clear()
    WaitingLamp.entered.clear()
    waiting = WaitingLamp("waiting", spec, settings=FAST)
    lamp = Lamp("lamp", spec, settings=FAST)
    with appliances(spec, [waiting, lamp]) as (to_waiting, _):
        wait_for(lambda: waiting.booted and lamp.booted)
        result: list[object] = []
        caller = threading.Thread(target=lambda: result.append(to_waiting.action("lamp.wait")))
        caller.start()
        try:
            wait_for(lambda: WaitingLamp.entered.is_set())
            polls = lamp.polls
            wait_for(lambda: lamp.polls >= polls + 5)  # the shared loop polls on meanwhile
        finally:
            WaitingLamp.release.set()
            caller.join(10.0)
        assert result, "the waiting action never returned"


# ----- the loop itself


def test_timers_fire_in_order_a_cancelled_one_never_and_the_loop_ends_with_its_last_user() -> None:
    loop = selector_loop.acquire("test-timers")
    assert selector_loop.acquire("test-timers") is loop  # shared by role
    fired: list[str] = []
    done = threading.Event()
    now = time.monotonic()
    loop.call_at(now + 0.03, lambda: fired.append("b"))
    loop.call_at(now + 0.01, lambda: fired.append("a")).cancel()
    loop.call_at(now + 0.02, lambda: fired.append("a2"))
    loop.call_at(now + 0.05, done.set)
    assert done.wait(5.0)
    assert fired == ["a2", "b"]
    selector_loop.release(loop)
    assert loop._thread.is_alive()  # one user left
    selector_loop.release(loop)
    assert not loop._thread.is_alive()


def test_a_callback_that_raises_does_not_end_the_loop() -> None:
    loop = selector_loop.acquire("test-raise")
    try:
        done = threading.Event()

        def boom() -> None:
            raise RuntimeError("a device bug")

        loop.call_soon(boom)
        loop.call_soon(done.set)
        assert done.wait(5.0)
    finally:
        selector_loop.release(loop)


def test_a_registration_the_loop_refuses_fails_in_the_caller() -> None:
    loop = selector_loop.acquire("test-refuse")
    try:
        with pytest.raises(ValueError):  # not an fd: the selector refuses it on the loop thread
            loop.add_reader(-1, lambda: None)
    finally:
        selector_loop.release(loop)
