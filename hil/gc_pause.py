"""Pause Python's cyclic garbage collector while a file is turned into objects.

Loading a plan allocates tens of thousands of small containers (YAML values,
their locations, pydantic models) that live on. Each 700 allocations the
collector walks the young generation, and as the survivors pile up it walks
the older ones too, the whole heap with the imported libraries: on the
1,000-plan benchmark the collector was a quarter to a half of the loading time.
Nothing made during a load is a cycle that must be freed before it ends, so
the collector waits until the load is done; the allocations made meanwhile
are then collected as usual (the next allocation triggers a young-generation
pass). A load's allocations are bounded by ``hil.yamlio``'s limits.

The pause nests and respects the caller: when the collector is already off
(a caller's own pause, or a program that runs without it) it is left off.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


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
