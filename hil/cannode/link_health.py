"""Whether a CAN device is still there: its pulse, and the bus's error frames.

A CAN bus never says "disconnected". A device is lost when the cyclic frame
that proves it alive (its pulse) stops for long enough, or when error frames
flood the bus as a controller would see before going bus-off.
"""

from __future__ import annotations

import time
from collections import deque

from hil.errors import DeviceLost
from hil.transports.can import CanTransport

SILENCE_MIN_S = 3.0  # a device's pulse absent this long (and 30 cycles) is a lost device
SILENCE_CYCLES = 30
# a pulse this many cycles late (and at least DOUBT_MIN_S) puts the device in doubt: a
# verdict that depends on it waits until the silence bound says lost or the pulse returns
DOUBT_CYCLES = 3
DOUBT_MIN_S = 0.3
ERROR_FRAMES_MAX = 200  # error frames within ERROR_WINDOW_S: the bus is unusable (bus-off)
ERROR_WINDOW_S = 1.0


class LinkHealth:
    """Pulse-silence and error-frame-flood detection for one device on one transport.

    ``pulse`` is the device's cyclic message as ``(frame id, name, cycle ms)``,
    or None for a device without one (then only the bus and floods are judged).
    """

    def __init__(
        self, device: str, transport: CanTransport, pulse: tuple[int, str, int | None] | None
    ) -> None:
        self.device = device
        self.transport = transport
        self.pulse = pulse
        self._error_frames: deque[float] = deque(maxlen=ERROR_FRAMES_MAX + 1)
        self._bus_off: tuple[float, int, float] | None = None  # (first, count, within s)

    def on_error_frame(self, t: float) -> None:
        """Count one error frame seen at capture time ``t``.

        Runs on whichever thread receives from the bus: a deque append and a compare.
        """
        errors = self._error_frames
        errors.append(t)
        if len(errors) > ERROR_FRAMES_MAX and t - errors[0] <= ERROR_WINDOW_S:
            # latched, as a controller goes bus-off and stays there until reset: a
            # burst between two looks is not forgotten (reconnecting resets it)
            self._bus_off = self._bus_off or (errors[0], len(errors), t - errors[0])

    def _silence_limit(self, cycle_ms: int | None) -> float:
        return max(SILENCE_MIN_S, SILENCE_CYCLES * (cycle_ms or 0) / 1000.0)

    def doubt_until(self) -> float | None:
        """While the pulse is overdue but not yet silent for the bound: the time at which
        ``check`` will call the device lost. None when there is no reason for doubt (no
        pulse declared, none heard yet, or it is on time)."""
        if self.pulse is None:
            return None
        frame_id, _, cycle_ms = self.pulse
        last = self.transport.capture.latest(frame_id)
        if last is None:
            return None
        overdue = max(DOUBT_MIN_S, DOUBT_CYCLES * (cycle_ms or 0) / 1000.0)
        if time.time() - last.t <= overdue:
            return None
        return last.t + self._silence_limit(cycle_ms)

    def check(self) -> None:
        """Raise ``DeviceLost`` when the bus failed, the device's pulse stopped (a silent
        bus or a dead node) or error frames flood the bus (a node or wire gone bad)."""
        if self.transport.lost is not None:
            raise self.transport.lost
        now = time.time()
        if self._bus_off is not None:
            first, count, within = self._bus_off
            raise DeviceLost(
                f"the CAN bus floods with error frames ({count} within {within:.2f} s)",
                device=self.device,
                at=first,
            )
        if self.pulse is None:
            return
        frame_id, message, cycle_ms = self.pulse
        last = self.transport.capture.latest(frame_id)
        if last is None:
            return  # not heard yet: read() waits its bounded while for a first frame
        limit = self._silence_limit(cycle_ms)
        if now - last.t > limit:
            raise DeviceLost(
                f"nothing heard on CAN for {now - last.t:.1f} s (its {message}, "
                f"every {cycle_ms} ms, stopped): the bus or the device is silent",
                device=self.device,
                at=last.t,
            )
