"""A thread waiting on a capture wakes when a record arrives, not at its timeout.

The capture notifies only while someone waits (a notify costs a few µs on every
frame of a busy bus otherwise); these tests show a waiter is still woken.
"""

from __future__ import annotations

import threading

import pytest

from hil.transports.capture import RX, Capture

LONG_S = 60.0  # a waiter that is not woken would sleep this long: the join below gives up first


@pytest.mark.parametrize("batch", [False, True], ids=["append", "extend"])
def test_a_waiter_wakes_on_the_record_not_its_timeout(batch: bool) -> None:
    capture: Capture[int] = Capture("wake", key=lambda n: n)
    waiting = threading.Event()
    woke: list[bool] = []

    def wait() -> None:
        seq = capture.seq
        waiting.set()
        woke.append(capture.wait_beyond(seq, LONG_S))

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert waiting.wait(5.0)
    # the waiter may not be inside wait_beyond yet: append until it has returned
    for n in range(1000):
        if batch:
            capture.extend(RX, [(float(n), n)])
        else:
            capture.append(float(n), RX, n)
        waiter.join(timeout=0.01)
        if not waiter.is_alive():
            break
    waiter.join(timeout=5.0)
    assert not waiter.is_alive(), "the waiter slept on to its timeout"
    assert woke == [True]
