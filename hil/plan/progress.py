"""A progress bar for long measurements, on the terminal only.

A 15-minute IEC 62301 period (90 s of wall time at time scale 0.1, the real
15 min in a lab) is long enough that an operator wants to see it move: time
left and the current slope. The bar is drawn on stderr only when stderr is a
terminal, so captured output (pytest, CI logs, reports) never contains it.
"""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

MIN_WALL_S = 3.0  # shorter measurements end before a bar would help


class MeasurementProgress:
    """``with MeasurementProgress(...) as bar: bar.update(done_s, total_s, status)``.

    Times are plan seconds; a no-op when stderr is not a terminal or the
    measurement is short.
    """

    def __init__(self, title: str, total_s: float, wall_s: float) -> None:
        self._title = title
        self._total = total_s
        console = Console(file=sys.stderr)
        self._enabled = console.is_terminal and wall_s >= MIN_WALL_S
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if self._enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[left]}"),
                TextColumn("{task.fields[status]}"),
                console=console,
                transient=True,
            )

    def __enter__(self) -> MeasurementProgress:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(
                self._title, total=self._total, left="", status="settling"
            )
        return self

    def update(self, done_s: float, total_s: float, status: str) -> None:
        """``done_s`` of ``total_s`` plan seconds measured; ``status`` e.g. the slope."""
        if self._progress is None or self._task is None:
            return
        left = max(total_s - done_s, 0.0)
        self._progress.update(
            self._task,
            completed=min(done_s, total_s),
            total=total_s,
            left=f"{_clock(left)} left (plan time)",
            status=status,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"
