"""One thread that serves many file descriptors: a ``selectors`` loop shared per role.

A home of 100 appliances used to cost two polling threads per pty (the bench's
serial reader and the MCU emulator), each waking every few tens of milliseconds:
the idle home took a whole core. Here one daemon thread owns every registered
fd and every timer of its role and blocks in ``select()`` until a byte arrives,
a timer is due or another thread hands it work, so an idle loop costs nothing.

Callbacks run on the loop thread and must not block: a device that must wait
(on a hub, a lock held elsewhere) gets a loop of its own (``SelectorLoop`` used
directly) instead of the shared one (``acquire``/``release``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable

from hil.lifecycle import start_thread

log = logging.getLogger(__name__)

Callback = Callable[[], None]
SYNC_TIMEOUT_S = 2.0  # how long a caller waits for the loop to apply its change


class TimerHandle:
    """A callback due at ``when`` (``time.monotonic()``); ``cancel()`` is idempotent."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callback) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True  # dropped lazily when it reaches the top of the heap


class SelectorLoop:
    """Readers and timers served by one daemon thread named ``hil-selector-<name>``.

    Only the loop thread touches the selector; other threads hand it their
    registrations through ``call_soon`` and a self-pipe that wakes ``select()``.
    ``remove_reader`` returns once the loop has let go of the fd, so the caller
    may close it at once without the number being reused under a stale entry.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._readers: dict[int, Callback] = {}
        self._lock = threading.Lock()  # guards _ready and _timers across threads
        self._ready: deque[Callback] = deque()
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._order = itertools.count()  # ties in the heap keep their order
        self._stopping = False
        self._wake_lock = threading.Lock()  # no wake-up byte into a closed (reused) fd
        self._closed = False
        self._thread = start_thread(self._run, f"selector-{name}")

    # ----- what any thread may call

    @property
    def on_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def call_soon(self, callback: Callback) -> None:
        """Run ``callback`` on the loop thread, after what it is doing now."""
        with self._lock:
            self._ready.append(callback)
        self._wake()

    def call_at(self, when: float, callback: Callback) -> TimerHandle:
        """Run ``callback`` on the loop thread once ``time.monotonic()`` reaches ``when``."""
        handle = TimerHandle(when, callback)
        with self._lock:
            earliest = not self._timers or when < self._timers[0][0]
            heapq.heappush(self._timers, (when, next(self._order), handle))
        if earliest and not self.on_loop_thread:
            self._wake()  # select() is sleeping towards a later deadline
        return handle

    def add_reader(self, fd: int, callback: Callback) -> None:
        """Call ``callback`` whenever ``fd`` is readable (level-triggered: it must read)."""
        self.run(lambda: self._register(fd, callback))

    def remove_reader(self, fd: int) -> None:
        """Stop watching ``fd``; once this returns the loop will not call its callback."""
        self.run(lambda: self._unregister(fd))

    def run(self, operation: Callback) -> None:
        """Run ``operation`` on the loop thread and wait for it (at most ``SYNC_TIMEOUT_S``)."""
        if self.on_loop_thread or not self._thread.is_alive():
            operation()
            return
        done = threading.Event()
        failed: list[BaseException] = []

        def wrapped() -> None:
            try:
                operation()
            except BaseException as err:  # the caller's to handle (a bad fd to register)
                failed.append(err)
            finally:
                done.set()

        self.call_soon(wrapped)
        if not done.wait(SYNC_TIMEOUT_S):
            # a callback is blocking the loop: a bug in a device, worth saying loudly
            log.error("selector loop %s did not answer within %g s", self.name, SYNC_TIMEOUT_S)
        if failed:
            raise failed[0]

    def stop(self) -> None:
        """End the thread (joined unless called from it) and release the selector."""
        self._stopping = True
        self._wake()
        if not self.on_loop_thread:
            self._thread.join(timeout=SYNC_TIMEOUT_S)

    # ----- the loop thread

    def _register(self, fd: int, callback: Callback) -> None:
        if fd in self._readers:
            self._selector.modify(fd, selectors.EVENT_READ, None)
        else:
            self._selector.register(fd, selectors.EVENT_READ, None)
        self._readers[fd] = callback

    def _unregister(self, fd: int) -> None:
        if self._readers.pop(fd, None) is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(fd)

    def _wake(self) -> None:
        with self._wake_lock:
            if self._closed:
                return
            with contextlib.suppress(BlockingIOError):  # a full pipe: a wake-up is pending
                os.write(self._wake_w, b"\0")

    def _timeout(self) -> float | None:
        with self._lock:
            if self._ready:
                return 0.0
            while self._timers and self._timers[0][2].cancelled:
                heapq.heappop(self._timers)
            if not self._timers:
                return None  # nothing due: sleep until a byte or a wake-up comes
            return max(0.0, self._timers[0][0] - time.monotonic())

    def _due(self) -> list[Callback]:
        now = time.monotonic()
        with self._lock:
            due = list(self._ready)
            self._ready.clear()
            while self._timers and self._timers[0][0] <= now:
                _, _, handle = heapq.heappop(self._timers)
                if not handle.cancelled:
                    handle.cancelled = True  # fired: a late cancel() is harmless
                    due.append(handle.callback)
        return due

    def _run(self) -> None:
        try:
            while not self._stopping:
                events = self._selector.select(self._timeout())
                for key, _ in events:
                    fd = int(key.fd)
                    if fd == self._wake_r:
                        with contextlib.suppress(BlockingIOError, OSError):
                            os.read(self._wake_r, 4096)
                        continue
                    callback = self._readers.get(fd)
                    if callback is not None:  # removed by an earlier callback of this round
                        self._call(callback)
                for callback in self._due():
                    self._call(callback)
        finally:
            self._selector.close()
            with self._wake_lock:
                self._closed = True
                os.close(self._wake_r)
                os.close(self._wake_w)

    def _call(self, callback: Callback) -> None:
        try:
            callback()
        except Exception:  # one device's bug must not silence the others
            log.exception("selector loop %s: callback %r failed", self.name, callback)


# One loop per role for the whole process (like the interpreter's one signal
# handler table): every serial port and every MCU emulator of a bench shares it.
# It starts with its first user and ends with its last, so no thread outlives
# the benches that needed it.
_shared: dict[str, tuple[SelectorLoop, int]] = {}
_shared_lock = threading.Lock()


def acquire(role: str) -> SelectorLoop:
    """The shared loop for ``role``, started if this is its first user."""
    with _shared_lock:
        loop, users = _shared.get(role, (None, 0))
        if loop is None:
            loop = SelectorLoop(role)
        _shared[role] = (loop, users + 1)
        return loop


def release(loop: SelectorLoop) -> None:
    """One user fewer; the last one stops the loop."""
    with _shared_lock:
        current, users = _shared.get(loop.name, (None, 0))
        if current is not loop:
            loop.stop()  # not (or no longer) shared: a private loop
            return
        if users > 1:
            _shared[loop.name] = (loop, users - 1)
            return
        del _shared[loop.name]
    loop.stop()
