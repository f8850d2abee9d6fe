"""How hil steers Python's cyclic garbage collector, in the two places where its default
policy costs most: loading plans, and capturing a busy CAN bus.

**Loading** (``gc_paused``): the collector pauses while a file is turned into objects.
Loading a plan allocates tens of thousands of small containers (YAML values, their
locations, pydantic models) that live on. Each 700 allocations the collector walks the
young generation, and as the survivors pile up it walks the older ones too, the whole
heap with the imported libraries: on the 1,000-plan benchmark the collector was a
quarter to a half of the loading time. Nothing made during a load is a cycle that must
be freed before it ends, so the collector waits until the load is done; the allocations
made meanwhile are then collected as usual (the next allocation triggers a
young-generation pass). A load's allocations are bounded by ``hil.yamlio``'s limits.

The pause nests and respects the caller: when the collector is already off (a caller's
own pause, or a program that runs without it) it is left off.

**Capturing** (``hold`` / ``release``): the collector stays off the heap that exists
while a capture is running. A capturing transport keeps every frame it receives (a
``can.Message`` and its capture record: two objects the cyclic garbage collector tracks
per frame), so a busy bus makes the collector's generations grow fast and its full
passes frequent. Each full pass walks every tracked object of the process: the imports,
the bench, the databases (about 90,000 objects in a bench process) plus the capture, and
on a saturated bus that walk was half the consumer's time.

While at least one capturing transport is open, the objects that existed when the first
one opened are moved to the collector's permanent generation (``gc.freeze()``, CPython's
tool for a long-lived heap): they are still freed by reference counting, only the cycle
search skips them. When the last such transport closes they are handed back
(``gc.unfreeze()``), so a cycle that died meanwhile is collected then, not leaked.

Meanwhile the youngest generation is collected after ``YOUNG_THRESHOLD`` allocations
instead of CPython's 700: a capture keeps nearly every object it makes, so each young
collection frees almost nothing, and every object it keeps is walked again by the next
generation's pass; at 700 a 20,000-frame burst went through about 220 young and 20
middle collections. The young objects a pass would have found garbage wait a little
longer (at most this many objects).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000

_lock = threading.Lock()
_holders = 0
_thresholds: tuple[int, int, int] | None = None  # the process's own, restored at release


def hold() -> None:
    """A capturing transport opened: freeze the heap unless one is already held."""
    global _holders, _thresholds
    with _lock:
        _holders += 1
        if _holders == 1:
            gc.freeze()
            _thresholds = gc.get_threshold()
            young, middle, old = _thresholds
            if young:  # 0: the process turned automatic collection off; leave it so
                gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)


def release() -> None:
    """A capturing transport closed: unfreeze when it was the last one."""
    global _holders, _thresholds
    with _lock:
        if _holders == 0:
            return
        _holders -= 1
        if _holders == 0:
            gc.unfreeze()
            if _thresholds is not None:
                gc.set_threshold(*_thresholds)
                _thresholds = None


def holders() -> int:
    """How many transports hold the heap frozen now."""
    return _holders


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off, then restore it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
