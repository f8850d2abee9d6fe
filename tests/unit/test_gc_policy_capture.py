"""hil.gc_policy (capturing): the heap is frozen while a CAN transport captures, and handed back
(so cycles that died meanwhile are collected) when the last one closes."""

from __future__ import annotations

import gc
import uuid
import weakref

import pytest

from hil import gc_policy
from hil.errors import TransportOpenError
from hil.transports.can import CanTransport


class Cyclic:
    """An object in a reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


def _transport() -> CanTransport:
    return CanTransport("dut", interface="virtual", channel=f"freeze-{uuid.uuid4().hex[:8]}")


def test_frozen_while_a_transport_is_open_and_handed_back_after_the_last() -> None:
    before = gc_policy.holders()
    thresholds = gc.get_threshold()
    first, second = _transport(), _transport()
    first.open()
    try:
        assert gc_policy.holders() == before + 1
        assert gc.get_freeze_count() > 0  # the heap that existed at open
        if before == 0:
            assert gc.get_threshold()[0] == max(thresholds[0], gc_policy.YOUNG_THRESHOLD)
        second.open()
        assert gc_policy.holders() == before + 2
        second.close()
        assert gc.get_freeze_count() > 0  # still held by the first
    finally:
        first.close()
        second.close()  # closing twice releases once
    assert gc_policy.holders() == before
    if before == 0:
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == thresholds  # the process's own, back


def test_a_cycle_that_died_while_frozen_is_collected_after_close() -> None:
    cycle = Cyclic()
    alive = weakref.ref(cycle)
    transport = _transport()
    transport.open()
    try:
        del cycle
        gc.collect()
        assert alive() is not None  # frozen: the cycle search skips it
    finally:
        transport.close()
    gc.collect()
    assert alive() is None


def test_a_transport_that_failed_to_open_holds_nothing() -> None:
    before = gc_policy.holders()
    broken = CanTransport("dut", interface="no-such-interface", channel="x")
    with pytest.raises(TransportOpenError):
        broken.open()
    broken.close()
    assert gc_policy.holders() == before
