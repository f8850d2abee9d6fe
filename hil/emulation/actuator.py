"""A bench actuator for an emulator running in another process.

On a bench that opens an emulator itself, a physical input (the load on a
plug's outlet, the mains voltage) is imposed by calling the emulator's
``set_input``. When the emulator runs elsewhere (``hil emulate``), the bench
reaches the same call through this line server on 127.0.0.1, opened like a
LAN instrument (``TCPIP::127.0.0.1::<port>::SOCKET``): the actuator stands
where a lab has a programmable load or a mains source.

The protocol, one line each way::

    *IDN?                       → hil,actuator,<device>,<inputs comma-separated>
    SET <input> <value>         → OK | ERR <message>
"""

from __future__ import annotations

import math

from hil.emulation.base import Emulator
from hil.emulation.tcp import LineServer
from hil.errors import HilError
from hil.lifecycle import Resource, start_thread


class ActuatorServer(Resource):
    """Serves ``emulator.set_input`` on a loopback port (see the module docstring)."""

    def __init__(self, emulator: Emulator) -> None:
        super().__init__()
        self.emulator = emulator
        self.name = f"{emulator.name}-actuator"
        self._server: LineServer | None = None

    @property
    def resource(self) -> str:
        """The VISA resource string a bench opens to reach this actuator."""
        assert self._server is not None, "actuator is not open"
        return f"TCPIP::127.0.0.1::{self._server.port}::SOCKET"

    def reply(self, line: str) -> str:
        words = line.split()
        if words == ["*IDN?"]:
            return f"hil,actuator,{self.emulator.name},{','.join(sorted(self.emulator.INPUTS))}"
        if len(words) != 3 or words[0].upper() != "SET":
            return f"ERR expected 'SET <input> <value>' or '*IDN?', got {line!r}"
        try:
            value = float(words[2])
        except ValueError:
            return f"ERR {words[2]!r} is not a number"
        if not math.isfinite(value):
            return f"ERR {words[2]!r} is not finite"
        try:
            self.emulator.set_input(words[1], value)
        except HilError as err:
            return f"ERR {err}"
        return "OK"

    def _open_impl(self) -> None:
        self._server = LineServer(self.reply, max_line=1024)
        self._thread = start_thread(self._server.serve_forever, f"actuator-{self.emulator.name}")

    def _close_impl(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._thread.join(timeout=2.0)
            self._server = None
