"""What hil's in-process and pytest peer scripts (``hil_plan.py``, ``hil_cli.py``) share:
their scratch folder and the peer kit's per-step method.

The kit measures a framework by running an N-step and a 1-step test and taking
``(wall(N) − wall(1)) / (N − 1)`` over the medians of its runs; the 1-step wall
is the fixed cost. Both hil scripts report their figures that way.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _pb import emit, median  # type: ignore[import-not-found]


@contextmanager
def work_folder(prefix: str) -> Iterator[Path]:
    """A fresh folder under the kit's ``PEERBENCH_TMP`` (the system's temp without it)."""
    root = os.environ.get("PEERBENCH_TMP")
    if root:
        os.makedirs(root, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=root) as tmp:
        yield Path(tmp)


def emit_per_step(
    name: str, walls_n: list[float], walls_1: list[float], n: int, *, fixed: bool = True
) -> None:
    """``<name>_per_step`` [us] from the runs' walls [s] of N steps and of 1 step, and,
    with ``fixed``, ``<name>_fixed`` [ms] (the 1-step plan's median wall)."""
    wall_n, wall_1 = median(walls_n), median(walls_1)
    if fixed:
        emit(f"{name}_fixed", wall_1 * 1e3, "ms")
    emit(f"{name}_per_step", (wall_n - wall_1) / (n - 1) * 1e6, "us")
