"""``LinkHealth``: a silent pulse and an error-frame flood make a CAN device lost.

The transport is real (python-can ``virtual``); frames are put in its capture
with chosen timestamps, since the verdicts are judged on capture time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import can
import pytest

from hil.cannode.link_health import (
    DOUBT_CYCLES,
    DOUBT_MIN_S,
    ERROR_FRAMES_MAX,
    ERROR_WINDOW_S,
    SILENCE_CYCLES,
    SILENCE_MIN_S,
    LinkHealth,
)
from hil.errors import DeviceLost
from hil.transports.can import CanTransport
from hil.transports.capture import RX

PULSE_ID = 0x123


@pytest.fixture
def transport() -> Iterator[CanTransport]:
    with CanTransport("car", interface="virtual", channel=f"lh-{uuid.uuid4().hex[:8]}") as t:
        yield t


def heard_pulse(transport: CanTransport, seconds_ago: float) -> None:
    msg = can.Message(arbitration_id=PULSE_ID, is_extended_id=False, data=bytes(8))
    transport.capture.append(time.time() - seconds_ago, RX, msg)


def test_a_flood_beyond_the_bound_latches_bus_off(transport: CanTransport) -> None:
    health = LinkHealth("car", transport, None)
    t0 = 1000.0
    step = ERROR_WINDOW_S / (ERROR_FRAMES_MAX + 10)
    for i in range(ERROR_FRAMES_MAX):
        health.on_error_frame(t0 + i * step)
    health.check()  # exactly the bound: still usable
    health.on_error_frame(t0 + ERROR_FRAMES_MAX * step)
    with pytest.raises(DeviceLost, match=rf"floods with error frames \({ERROR_FRAMES_MAX + 1} "):
        health.check()
    with pytest.raises(DeviceLost):  # latched: looking again does not clear it
        health.check()


def test_error_frames_spread_wider_than_the_window_are_no_flood(transport: CanTransport) -> None:
    health = LinkHealth("car", transport, None)
    step = 1.5 * ERROR_WINDOW_S / ERROR_FRAMES_MAX
    for i in range(3 * ERROR_FRAMES_MAX):
        health.on_error_frame(1000.0 + i * step)
    health.check()


def test_a_pulse_silent_beyond_the_bound_is_a_lost_device(transport: CanTransport) -> None:
    health = LinkHealth("car", transport, (PULSE_ID, "DRIVE_Status", 10))
    health.check()  # not heard yet: not judged
    heard_pulse(transport, SILENCE_MIN_S / 2)
    health.check()
    heard_pulse(transport, SILENCE_MIN_S + 1.0)  # the newest pulse is now this old
    with pytest.raises(DeviceLost, match="DRIVE_Status, every 10 ms, stopped"):
        health.check()


def test_a_slow_pulse_is_allowed_its_cycles(transport: CanTransport) -> None:
    cycle_ms = 200  # 30 cycles = 6 s, longer than the 3 s minimum
    health = LinkHealth("car", transport, (PULSE_ID, "SLOW_Status", cycle_ms))
    heard_pulse(transport, SILENCE_MIN_S + 1.0)
    health.check()
    heard_pulse(transport, SILENCE_CYCLES * cycle_ms / 1000 + 1.0)
    with pytest.raises(DeviceLost, match="nothing heard on CAN"):
        health.check()


def test_a_pulse_on_time_leaves_no_doubt_and_an_overdue_one_says_when_it_will_be_judged(
    transport: CanTransport,
) -> None:
    health = LinkHealth("car", transport, (PULSE_ID, "DRIVE_Status", 10))
    assert health.doubt_until() is None  # not heard yet: nothing to doubt
    heard_pulse(transport, 0.0)
    assert health.doubt_until() is None  # on time
    late = max(DOUBT_MIN_S, DOUBT_CYCLES * 0.010) + 0.5
    heard_pulse(transport, late)
    until = health.doubt_until()
    last = transport.capture.latest(PULSE_ID)
    assert last is not None and until == pytest.approx(last.t + SILENCE_MIN_S)
    health.check()  # in doubt is not yet lost
    heard_pulse(transport, 0.0)  # heard again: the doubt is gone
    assert health.doubt_until() is None


def test_a_device_without_a_pulse_is_never_in_doubt(transport: CanTransport) -> None:
    assert LinkHealth("car", transport, None).doubt_until() is None


def test_a_failed_bus_is_reported_first(transport: CanTransport) -> None:
    health = LinkHealth("car", transport, (PULSE_ID, "DRIVE_Status", 10))
    transport.lost = DeviceLost("CAN bus error: gone", device="car")
    with pytest.raises(DeviceLost, match="gone"):
        health.check()
    transport.lost = None
