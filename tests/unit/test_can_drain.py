"""``CanTransport``'s receive: a frame that had to be waited for is captured alone (no
empty receive after an answer); frames already queued are all taken, in bus order."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import can
import pytest

from hil.transports.can import CanTransport


def frame(number: int) -> can.Message:
    return can.Message(arbitration_id=0x321, is_extended_id=False, data=bytes([number]))


@pytest.fixture
def pair() -> Iterator[tuple[CanTransport, can.BusABC]]:
    channel = f"drain-{uuid.uuid4().hex[:8]}"
    with CanTransport("dut", interface="virtual", channel=channel) as transport:
        peer = can.Bus(interface="virtual", channel=channel)
        # keep the reader thread off the bus: only this test's pump receives
        transport._parked_until = time.monotonic() + 3600
        deadline = time.monotonic() + 5.0
        while transport._rx_lock.locked() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not transport._rx_lock.locked()
        yield transport, peer
        peer.shutdown()


def _numbers(transport: CanTransport) -> list[int]:
    return [rec.data.data[0] for rec in transport.capture.records()]


def test_an_awaited_frame_is_captured_without_looking_for_more(
    pair: tuple[CanTransport, can.BusABC],
) -> None:
    transport, peer = pair
    sent = threading.Event()

    def answer() -> None:
        sent.wait(5.0)
        time.sleep(0.05)  # the pump below is waiting on an empty bus by then
        peer.send(frame(1))
        peer.send(frame(2))

    sender = threading.Thread(target=answer)
    sender.start()
    seq = transport.capture.seq
    sent.set()
    assert transport.pump(seq, 5.0)
    sender.join(5.0)
    # the first frame came after a wait: taken alone, the second stays queued
    assert transport.capture.seq == seq + 1
    assert transport.pump(seq + 1, 5.0)
    assert _numbers(transport) == [1, 2]


def test_queued_frames_are_all_taken_in_order(pair: tuple[CanTransport, can.BusABC]) -> None:
    transport, peer = pair
    for n in range(5):
        peer.send(frame(n))
    seq = transport.capture.seq
    for _ in range(5):  # one pump takes them all unless the first receive was slow
        if transport.capture.seq >= seq + 5:
            break
        assert transport.pump(transport.capture.seq, 5.0)
    assert _numbers(transport) == [0, 1, 2, 3, 4]
