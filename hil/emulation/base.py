"""The emulator base class: lifecycle, named defects, physical inputs.

An emulator is a peer on a real transport (a python-can channel, a pty, a
TCP socket opened through pyvisa-py), never a fake of a library class.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from hil.errors import EmulatorError, did_you_mean
from hil.lifecycle import Resource, start_thread


class Emulator(Resource):
    """Base for device emulators.

    Subclasses declare ``DEFECTS`` (name → what goes wrong) and ``INPUTS``
    (physical quantities a bench can impose, name → unit), implement
    ``_start()`` and ``_stop()``, and publish how to reach them in
    ``endpoint`` (e.g. ``{"url": "/dev/pts/7"}``) once open.
    """

    DEFECTS: ClassVar[Mapping[str, str]] = {}
    INPUTS: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        name: str,
        *,
        defects: Iterable[str] = (),
        time_scale: float = 1.0,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.defects = frozenset(defects)
        for defect in self.defects:
            if defect not in self.DEFECTS:
                raise EmulatorError(
                    f"unknown defect {defect!r} for {type(self).__name__}; "
                    + did_you_mean(defect, self.DEFECTS),
                    device=name,
                )
        if time_scale <= 0:
            raise EmulatorError("time_scale must be > 0", device=name)
        self.time_scale = time_scale
        self.settings = dict(settings or {})
        self.endpoint: dict[str, Any] = {}
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def has(self, defect: str) -> bool:
        return defect in self.defects

    def spawn(self, target: Callable[[], object], what: str) -> None:
        """Start a worker thread that must return once ``stopping`` is set."""
        self._threads.append(start_thread(target, f"emu-{self.name}-{what}"))

    def set_input(self, name: str, value: float) -> None:
        """Impose a physical quantity (a load, a temperature) on the device."""
        if name not in self.INPUTS:
            raise EmulatorError(
                f"no physical input {name!r}; " + did_you_mean(name, self.INPUTS), device=self.name
            )
        self._apply_input(name, value)

    def _apply_input(self, name: str, value: float) -> None:
        raise EmulatorError(f"input {name!r} is declared but not implemented", device=self.name)

    def _open_impl(self) -> None:
        try:
            self._start()
        except BaseException:
            self._shutdown()
            raise

    def _close_impl(self) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2.0)
        self._threads.clear()
        self._stop()

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        """Release OS resources; threads are already joined."""
