"""Open/close discipline shared by transports and emulators.

Close is idempotent, every resource is a context manager, and every open
resource is tracked so tests can assert that nothing leaked (python-can's
own test suite does the same for virtual channels).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)

_open: weakref.WeakSet[Resource] = weakref.WeakSet()
_open_lock = threading.Lock()


class Resource:
    """Base for anything that holds an OS resource (thread, fd, socket, bus)."""

    name: str = "resource"

    def __init__(self) -> None:
        self._opened = False
        self._closed = False

    @property
    def is_open(self) -> bool:
        return self._opened and not self._closed

    def open(self) -> Self:
        if self._opened:
            return self
        self._open_impl()
        self._opened = True
        with _open_lock:
            _open.add(self)
        return self

    def close(self) -> None:
        if self._closed or not self._opened:
            self._closed = True
            return
        self._closed = True
        try:
            self._close_impl()
        finally:
            with _open_lock:
                _open.discard(self)

    def _open_impl(self) -> None:
        raise NotImplementedError

    def _close_impl(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_opened", False) and not getattr(self, "_closed", True):
            log.warning("%s %r was not closed", type(self).__name__, self.name)

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<{type(self).__name__} {self.name!r} {state}>"


def open_resources() -> list[Resource]:
    """Every hil resource that is open right now (for leak checks)."""
    with _open_lock:
        return [r for r in _open if r.is_open]


def start_thread(target: Callable[[], object], name: str) -> threading.Thread:
    """A daemon thread named ``hil-…`` so leak checks can find it."""
    thread = threading.Thread(target=target, name=f"hil-{name}", daemon=True)
    thread.start()
    return thread
