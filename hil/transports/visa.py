"""VISA/SCPI through pyvisa (default backend ``@py``); every exchange captured."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass

import pyvisa
import pyvisa.errors

from hil.errors import DeviceLost, DeviceTimeout, TransportOpenError
from hil.lifecycle import Resource
from hil.transports.capture import TX, Capture


@dataclass(frozen=True, slots=True)
class ScpiExchange:
    command: str
    response: str | None  # None for a write
    t_end: float


def _socket_error(inst: pyvisa.resources.MessageBasedResource) -> str | None:
    """The pending error of a pyvisa-py raw socket session, if its connect failed.

    pyvisa-py (0.8) connects SOCKET resources non-blocking and takes a refused
    connection for success; the socket's SO_ERROR still tells the truth.
    """
    sessions = getattr(inst.visalib, "sessions", None)
    session = sessions.get(inst.session) if isinstance(sessions, dict) else None
    sock = getattr(session, "interface", None)
    if not isinstance(sock, socket.socket):
        return None
    try:
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code == 0:
            sock.getpeername()  # raises if the connection never came up
    except OSError as err:
        return err.strerror or str(err)
    return os.strerror(code) if code else None


class VisaTransport(Resource):
    """One VISA resource; ``query``/``write`` are serialised and captured."""

    def __init__(
        self,
        name: str,
        *,
        resource: str,
        backend: str = "@py",
        timeout_s: float = 5.0,
        read_termination: str = "\n",
        write_termination: str = "\n",
        capture_size: int = 100_000,
    ) -> None:
        super().__init__()
        self.name = name
        self.resource = resource
        self.backend = backend
        self.timeout_s = timeout_s
        self.read_termination = read_termination
        self.write_termination = write_termination
        self.capture: Capture[ScpiExchange] = Capture(name, capture_size)
        self._rm: pyvisa.ResourceManager | None = None
        self._inst: pyvisa.resources.MessageBasedResource | None = None
        self._lock = threading.Lock()
        self.lost: DeviceLost | None = None

    def _open_impl(self) -> None:
        try:
            self._rm = pyvisa.ResourceManager(self.backend)
            inst = self._rm.open_resource(
                self.resource,
                read_termination=self.read_termination,
                write_termination=self.write_termination,
                timeout=int(self.timeout_s * 1000),
            )
        except (pyvisa.errors.Error, OSError, ValueError) as err:
            if self._rm is not None:
                self._rm.close()
                self._rm = None
            raise TransportOpenError(
                f"cannot open VISA resource {self.resource!r} with backend {self.backend!r}: {err}",
                device=self.name,
                address=self.resource,
            ) from err
        assert isinstance(inst, pyvisa.resources.MessageBasedResource)
        self._inst = inst
        refused = _socket_error(inst)
        if refused:
            self._close_impl()
            raise TransportOpenError(
                f"cannot open VISA resource {self.resource!r}: {refused}",
                device=self.name,
                address=self.resource,
            )

    def _io(self, command: str, read: bool) -> tuple[str | None, float]:
        """One serialised, captured exchange: the answer (None for a write) and the
        capture timestamp of its record, so callers never search the capture for it."""
        inst = self._inst
        if inst is None or not self.is_open:
            raise DeviceLost("VISA session is closed", device=self.name)
        with self._lock:
            t0 = time.time()
            try:
                response = inst.query(command) if read else None
                if not read:
                    inst.write(command)
            except pyvisa.errors.VisaIOError as err:
                if err.error_code == pyvisa.constants.StatusCode.error_timeout:
                    raise DeviceTimeout(
                        f"no answer to {command!r} within {self.timeout_s:g} s",
                        device=self.name,
                        command=command,
                    ) from err
                raise DeviceLost(
                    f"VISA I/O failed on {command!r}: {err}", device=self.name
                ) from err
            except (OSError, EOFError) as err:
                raise DeviceLost(
                    f"VISA link failed on {command!r}: {err}", device=self.name
                ) from err
            self.capture.append(t0, TX, ScpiExchange(command, response, time.time()))
        return response, t0

    def query(self, command: str) -> str:
        return self.query_at(command)[0]

    def query_at(self, command: str) -> tuple[str, float]:
        """The answer to ``command`` and the timestamp its capture record carries."""
        response, t = self._io(command, read=True)
        assert response is not None
        return response, t

    def write(self, command: str) -> None:
        self._io(command, read=False)

    def write_at(self, command: str) -> float:
        """Send ``command``; the timestamp its capture record carries."""
        return self._io(command, read=False)[1]

    def _close_impl(self) -> None:
        if self._inst is not None:
            with contextlib.suppress(pyvisa.errors.Error, OSError):
                self._inst.close()
            self._inst = None
        if self._rm is not None:
            self._rm.close()
            self._rm = None
