"""``CanTransport.pump``: a waiting thread receives from the bus itself.

Every test runs on python-can's ``virtual`` bus (a peer bus on the same
channel plays the device). Which thread captured a frame is observed with a
capture listener, which runs on whichever thread received the frame.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import can
import pytest

from hil.transports.can import PARK_S, CanTransport
from hil.transports.capture import RX, Record


class Receivers:
    """Capture listener: (frame number, name of the thread that captured it) of RX frames."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    def __call__(self, rec: Record[Any]) -> None:
        if rec.direction == RX:
            self.seen.append(
                (int.from_bytes(rec.data.data[:4], "little"), threading.current_thread().name)
            )


def frame(number: int) -> can.Message:
    return can.Message(
        arbitration_id=0x321, is_extended_id=False, data=number.to_bytes(4, "little")
    )


@pytest.fixture
def channel() -> str:
    return f"pump-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def transport(channel: str) -> Iterator[CanTransport]:
    with CanTransport("dut", interface="virtual", channel=channel) as t:
        yield t


@pytest.fixture
def peer(channel: str) -> Iterator[can.BusABC]:
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()


def park_reader(transport: CanTransport) -> None:
    """Keep the reader thread off the bus, and wait until it has let go of it."""
    transport._parked_until = time.monotonic() + 3600
    deadline = time.monotonic() + 5.0
    while transport._rx_lock.locked() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not transport._rx_lock.locked(), "the reader thread kept the bus"


def test_a_waiter_receives_the_frame_on_its_own_thread(
    transport: CanTransport, peer: can.BusABC
) -> None:
    receivers = Receivers()
    transport.capture.add_listener(receivers)
    park_reader(transport)
    seq = transport.capture.seq
    peer.send(frame(7))
    # parked, the reader thread never takes the frame: only this thread's pump can
    assert transport.pump(seq, 2.0)
    assert receivers.seen == [(7, threading.current_thread().name)]


def test_a_pump_with_nothing_on_the_bus_times_out(transport: CanTransport) -> None:
    park_reader(transport)
    seq = transport.capture.seq
    assert not transport.pump(seq, 0.05)
    assert transport.capture.seq == seq


def test_the_reader_takes_over_when_nobody_waits(transport: CanTransport, peer: can.BusABC) -> None:
    receivers = Receivers()
    transport.capture.add_listener(receivers)
    seq = transport.capture.seq
    assert not transport.pump(seq, 0.01)  # parks the reader until PARK_S after this wait
    peer.send(frame(1))
    # nobody pumps again: the reader thread captures it once the park has passed
    deadline = time.monotonic() + 5.0 + PARK_S
    while not receivers.seen and time.monotonic() < deadline:
        transport.capture.wait_beyond(seq, 0.05)
    assert receivers.seen == [(1, "hil-can-dut")]


def test_frames_are_captured_in_bus_order_whoever_receives_them(
    transport: CanTransport, peer: can.BusABC
) -> None:
    """Waiters and the reader thread take turns; the capture keeps the bus's order."""
    receivers = Receivers()
    transport.capture.add_listener(receivers)
    count = 20_000

    def produce() -> None:
        for i in range(count):
            peer.send(frame(i))

    producer = threading.Thread(target=produce)
    producer.start()
    deadline = time.monotonic() + 30.0
    turn = 0
    while len(receivers.seen) < count and time.monotonic() < deadline:
        turn += 1
        if turn % 50 == 0:
            time.sleep(2 * PARK_S)  # nobody waits: the reader thread receives meanwhile
        transport.pump(transport.capture.seq, 0.01)
    producer.join()
    numbers = [n for n, _ in receivers.seen]
    assert numbers == list(range(count))
    threads = {name for _, name in receivers.seen}
    assert threads == {"hil-can-dut", threading.current_thread().name}


def test_closing_ends_a_pump_in_progress(channel: str) -> None:
    transport = CanTransport("dut", interface="virtual", channel=channel).open()
    park_reader(transport)
    returned = threading.Event()

    def wait() -> None:
        transport.pump(transport.capture.seq, 0.5)
        returned.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    transport.close()
    waiter.join(timeout=5.0)
    assert returned.is_set()
    assert not transport.is_open


def test_a_closed_transport_pumps_from_the_capture_only(channel: str, peer: can.BusABC) -> None:
    transport = CanTransport("dut", interface="virtual", channel=channel).open()
    transport.close()
    peer.send(frame(3))
    seq = transport.capture.seq
    assert not transport.pump(seq, 0.02)
    assert transport.capture.seq == seq
