"""``CanTransport``'s receive: after each frame it takes what else the bus holds, so a
reader of the newest value right after a wait sees it; on python-can's virtual bus it
looks at the bus's queue instead of asking ``recv`` for nothing (``_queue_of``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import can
import pytest

from hil.transports.can import CanTransport, _queue_of
from hil.transports.capture import RX


def frame(number: int) -> can.Message:
    return can.Message(arbitration_id=0x321, is_extended_id=False, data=bytes([number]))


@pytest.fixture
def pair() -> Iterator[tuple[CanTransport, can.BusABC]]:
    channel = f"receive-{uuid.uuid4().hex[:8]}"
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


def rx_numbers(transport: CanTransport) -> list[int]:
    return [r.data.data[0] for r in transport.capture.records() if r.direction == RX]


def test_a_wait_takes_every_frame_queued_behind_the_first(
    pair: tuple[CanTransport, can.BusABC],
) -> None:
    transport, peer = pair
    for i in range(5):
        peer.send(frame(i))
    assert transport.pump(transport.capture.seq, 2.0)
    assert rx_numbers(transport) == [0, 1, 2, 3, 4]


def test_a_wait_takes_one_frame_when_nothing_is_behind_it(
    pair: tuple[CanTransport, can.BusABC],
) -> None:
    transport, peer = pair
    peer.send(frame(9))
    assert transport.pump(transport.capture.seq, 2.0)
    assert rx_numbers(transport) == [9]
    peer.send(frame(10))  # after the wait: the next one takes it
    assert transport.pump(transport.capture.seq, 2.0)
    assert rx_numbers(transport) == [9, 10]


def test_only_the_virtual_bus_is_looked_at_directly(pair: tuple[CanTransport, can.BusABC]) -> None:
    transport, peer = pair
    assert transport._bus is not None
    queued = _queue_of(transport._bus)
    assert queued is not None and len(queued) == 0
    peer.send(frame(1))
    assert len(queued) == 1  # what recv() would give next
