"""The per-plan watchdog: a stuck plan is aborted, never waited on forever.

Every wait in hil polls; the watchdog is one more thing each poll checks, so
an expired plan stops at its next poll with ``PlanTimedOut``. A plan stuck in
a call that never polls (a driver blocked in a library) is the reason for the
second stage: ``HARD_GRACE_S`` after expiry the watchdog signals the main
thread (``HARD_SIGNAL``, which interrupts a blocking system call), and its
handler raises the same ``PlanTimedOut`` there. A signal of our own, not
SIGINT: pytest-xdist workers ignore SIGINT, and Ctrl-C must stay the operator's.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any

HARD_GRACE_S = 20.0  # after expiry, how long a plan may go without polling
TEARDOWN_GRACE_S = 30.0  # an expired plan's teardown gets this long, then it is cut too
HARD_SIGNAL = signal.SIGUSR2


class PlanTimedOut(Exception):
    """The plan outlived its ``timeout``: aborted through the interlock (a broken plan)."""

    def __init__(self, message: str, *, limit_s: float) -> None:
        super().__init__(message)
        self.message = message
        self.limit_s = limit_s


class PlanWatchdog:
    """Armed for one plan; ``check()`` raises once the deadline has passed."""

    def __init__(self, label: str, timeout_s: float, *, hard_grace_s: float = HARD_GRACE_S):
        self.label = label
        self.timeout_s = timeout_s
        self.hard_grace_s = hard_grace_s
        self.deadline = time.monotonic() + timeout_s
        self.expired_at: float | None = None  # epoch time the deadline passed (for the record)
        self.interrupted = False  # the hard stage fired
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._polled = time.monotonic()
        # signal handlers live in the main thread: elsewhere only the polite stage exists
        self._main = threading.main_thread() is threading.current_thread()
        self._main_ident = threading.main_thread().ident or 0
        self._previous: Any = None
        self._thread = threading.Thread(
            target=self._watch, name=f"hil-watchdog-{label}", daemon=True
        )

    def __enter__(self) -> PlanWatchdog:
        if self._main:
            self._previous = signal.signal(HARD_SIGNAL, self._on_signal)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._main:
            signal.signal(HARD_SIGNAL, self._previous)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.interrupted and not self._done.is_set():
            raise PlanTimedOut(
                f"plan {self.label} exceeded its timeout of {self.timeout_s:g} s, stuck in a "
                "call that never returned: aborted",
                limit_s=self.timeout_s,
            )

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def extend_for_teardown(self) -> None:
        """An expired plan's teardown still runs, for a bounded time of its own."""
        with self._lock:
            if self.expired:
                self.deadline = time.monotonic() + TEARDOWN_GRACE_S

    def check(self) -> None:
        """Called by every poll: raises ``PlanTimedOut`` past the deadline."""
        self._polled = time.monotonic()
        if self._polled < self.deadline:
            return
        if self.expired_at is None:
            self.expired_at = time.time()
        raise PlanTimedOut(
            f"plan {self.label} exceeded its timeout of {self.timeout_s:g} s: aborted",
            limit_s=self.timeout_s,
        )

    def _watch(self) -> None:
        while not self._done.wait(0.25):
            now = time.monotonic()
            with self._lock:
                late = now - max(self.deadline, self._polled)
            if now >= self.deadline and late >= self.hard_grace_s and self._main:
                # nothing has polled since the deadline: the plan is stuck in a call
                if self.expired_at is None:
                    self.expired_at = time.time()
                self.interrupted = True
                signal.pthread_kill(self._main_ident, HARD_SIGNAL)
                return
