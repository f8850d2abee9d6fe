"""The phone app's connection to the home hub: JSON lines over TCP.

The wire format is the hub's (see devices/hub/README.md): the phone says
``{"hello": {"role": "phone", "device": NAME, "model": MODEL}}`` and gets
``{"ok": true}``; it sends calls ``{"id": N, "call": {...}}`` answered by
``{"id": N, "result": {"code": C, "message": M}}``; the hub pushes
``{"notify": {"category": …, "device": …, "text": …, "t": …}}`` at any time.

The connection is made lazily on a worker thread, never in ``open()``: the
client retries with a growing pause, gives up after ``retries`` attempts in a
row, and tries again when the app next needs the hub (a call wakes it).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

MAX_LINE = 65536  # a hub line longer than this is a broken peer, not a message
READ_TIMEOUT_S = 0.2  # how often the reader looks at ``stopping``


class HubUnavailable(Exception):
    """The hub could not be reached, or the connection dropped before the answer."""


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    result: Mapping[str, Any] | None = None


def parse_address(text: str) -> tuple[str, int]:
    """``"127.0.0.1:4711"`` → ``("127.0.0.1", 4711)``; ``ValueError`` when malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


class HubClient:
    """One phone's link to the hub; ``run`` is the worker thread's body."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        device: str,
        model: str,
        on_notify: Callable[[Mapping[str, Any]], None],
        on_state: Callable[[bool], None],
        retries: int = 20,
        retry_s: float = 0.1,
        max_retry_s: float = 2.0,
        connect_timeout_s: float = 1.0,
    ) -> None:
        self.address = address
        self.device = device
        self.model = model
        self.on_notify = on_notify
        self.on_state = on_state
        self.retries = retries
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self.connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._connected = threading.Event()
        self._wake = threading.Event()  # a caller needs the hub: try again
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self.connects = 0  # successful hellos, for tests and state()
        self.failures = 0  # failed attempts since the last success

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # ----- the worker thread

    def run(self, stopping: threading.Event) -> None:
        pause = self.retry_s
        while not stopping.is_set():
            if self.failures >= self.retries:
                # bounded: stop knocking until the app needs the hub again
                self._wake.wait(0.5)
                if not self._wake.is_set():
                    continue
                self.failures, pause = 0, self.retry_s
            self._wake.clear()
            link = self._connect()
            if link is None:
                self.failures += 1
                stopping.wait(pause)
                pause = min(pause * 2, self.max_retry_s)
                continue
            self.failures, pause = 0, self.retry_s
            self._serve(*link, stopping)

    def _connect(self) -> tuple[socket.socket, bytearray] | None:
        """A connected socket past the hello, and what the hub sent after its answer."""
        try:
            sock = socket.create_connection(self.address, timeout=self.connect_timeout_s)
        except OSError as err:
            log.debug("%s: hub %s:%d not reachable: %s", self.device, *self.address, err)
            return None
        try:
            hello = {"hello": {"role": "phone", "device": self.device, "model": self.model}}
            sock.sendall(_encode(hello))
            reply, rest = _read_line(sock, bytearray(), self.connect_timeout_s)
        except (OSError, ValueError) as err:
            log.info("%s: hub %s:%d refused the hello: %s", self.device, *self.address, err)
            sock.close()
            return None
        if reply.get("ok") is not True:
            log.warning("%s: hub %s:%d answered the hello %r", self.device, *self.address, reply)
            sock.close()
            return None
        return sock, rest

    def _serve(self, sock: socket.socket, buf: bytearray, stopping: threading.Event) -> None:
        with self._lock:
            self._sock = sock
        self.connects += 1
        self._connected.set()
        self.on_state(True)
        try:
            sock.settimeout(READ_TIMEOUT_S)
            while not stopping.is_set():
                while (idx := buf.find(b"\n")) >= 0:
                    raw = bytes(buf[:idx])
                    del buf[: idx + 1]
                    self._dispatch(raw)
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                buf += chunk
                if len(buf) > MAX_LINE and buf.find(b"\n") < 0:
                    log.warning(
                        "%s: hub line longer than %d bytes; reconnecting", self.device, MAX_LINE
                    )
                    break
        except OSError as err:
            log.info("%s: hub connection lost: %s", self.device, err)
        finally:
            self._drop(sock)

    def _dispatch(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("%s: hub sent a line that is not JSON: %r", self.device, raw[:80])
            return
        if not isinstance(message, dict):
            log.warning("%s: hub sent %r, not an object", self.device, message)
            return
        note = message.get("notify")
        if isinstance(note, dict):
            self.on_notify(note)
            return
        ident = message.get("id")
        with self._lock:
            pending = self._pending.pop(ident, None) if isinstance(ident, int) else None
        if pending is None:
            log.info("%s: unsolicited hub message %r", self.device, message)
            return
        result = message.get("result")
        if not isinstance(result, dict):
            error = message.get("error", message)
            result = {"code": -1, "message": f"hub error: {error}"}
        pending.result = result
        pending.done.set()

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            if self._sock is sock:
                self._sock = None
            pending, self._pending = self._pending, {}
        self._connected.clear()
        with contextlib.suppress(OSError):
            sock.close()
        for waiting in pending.values():
            waiting.done.set()  # no result: the caller reports the lost link
        self.on_state(False)

    # ----- callers

    def call(self, call: Mapping[str, Any], timeout: float) -> Mapping[str, Any]:
        """Send ``{"call": call}`` and wait (≤ ``timeout``) for the hub's result object."""
        self._wake.set()
        if not self._connected.wait(timeout):
            raise HubUnavailable(f"hub {self.address[0]}:{self.address[1]} is not reachable")
        ident = next(self._ids)
        pending = _Pending()
        with self._lock:
            sock = self._sock
            if sock is None:
                raise HubUnavailable("hub connection dropped")
            self._pending[ident] = pending
            try:
                sock.sendall(_encode({"id": ident, "call": dict(call)}))
            except OSError as err:
                self._pending.pop(ident, None)
                raise HubUnavailable(f"cannot send to the hub: {err}") from err
        if not pending.done.wait(timeout):
            with self._lock:
                self._pending.pop(ident, None)
            raise HubUnavailable(f"no answer from the hub within {timeout:g} s")
        if pending.result is None:
            raise HubUnavailable("hub connection dropped before it answered")
        return pending.result

    def close(self) -> None:
        """Unblock the worker (the emulator's ``stopping`` ends it)."""
        self._wake.set()
        with self._lock:
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def _read_line(
    sock: socket.socket, buf: bytearray, timeout: float
) -> tuple[dict[str, Any], bytearray]:
    """One JSON object line (blocking ≤ ``timeout``); ``ValueError`` if it is not one."""
    sock.settimeout(timeout)
    while (idx := buf.find(b"\n")) < 0:
        chunk = sock.recv(4096)
        if not chunk:
            raise ValueError("connection closed")
        buf += chunk
        if len(buf) > MAX_LINE:
            raise ValueError("line too long")
    message = json.loads(bytes(buf[:idx]))
    if not isinstance(message, dict):
        raise ValueError(f"expected an object, got {message!r}")
    return message, buf[idx + 1 :]
