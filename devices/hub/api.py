"""The hub's API server: appliance modules and phones connect here (``hil/hublink.py``).

One thread serves every connection with a selector. Nothing here decides
anything: what clients say becomes an ``ApiEvent`` on a queue that the hub's
own thread drains, and the hub's calls are written out with an id whose
result (or its timeout) comes back as an event too, so the hub never blocks
on a slow appliance.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hil import hublink
from hil.lifecycle import start_thread

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 6.0  # a module answers within the MIoT 4 s RPC limit plus its queue
MAX_CLIENTS = 32


@dataclass(frozen=True)
class ApiEvent:
    """Something a client said: ``hello``, ``bye``, ``report``, ``result`` or ``command``."""

    kind: str
    device: str
    role: str = ""
    model: str = ""
    ident: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    t: float = 0.0


@dataclass
class _Client:
    conn: hublink.Connection
    device: str = ""
    role: str = ""
    model: str = ""


class HubApi:
    """Serves the hub link on ``host:port`` (the emulated hub: 127.0.0.1, any port)."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.events: queue.Queue[ApiEvent] = queue.Queue()
        self._listener = socket.create_server((host, port))
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._clients: dict[int, _Client] = {}  # by socket fd
        self._by_device: dict[str, _Client] = {}
        self._pending: dict[int, tuple[str, float]] = {}  # call id → (device, deadline)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.malformed = 0

    @property
    def address(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"{host}:{port}"

    def start(self) -> None:
        self._thread = start_thread(self._serve, f"hub-api-{self.name}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
            self._by_device.clear()
        for client in clients:
            client.conn.close()
        self._selector.close()
        self._listener.close()

    # --- what the hub uses (its own thread) -------------------------------------------

    def connected(self, role: str) -> list[str]:
        with self._lock:
            return sorted(d for d, c in self._by_device.items() if c.role == role)

    def call(self, device: str, call: dict[str, Any]) -> int | None:
        """Send ``call`` to ``device``; its result arrives as an event. ``None``: not there."""
        with self._lock:
            client = self._by_device.get(device)
            ident = next(self._ids)
            if client is not None:
                self._pending[ident] = (device, time.monotonic() + CALL_TIMEOUT_S)
        if client is None:
            return None
        if not self._send(client, {"id": ident, "call": call}):
            with self._lock:
                self._pending.pop(ident, None)
            return None
        return ident

    def answer(self, device: str, ident: int, result: dict[str, Any]) -> None:
        with self._lock:
            client = self._by_device.get(device)
        if client is not None:
            self._send(client, {"id": ident, "result": result})

    def notify(self, message: dict[str, Any]) -> int:
        """Write a notification to every connected phone; how many it reached."""
        with self._lock:
            phones = [c for c in self._by_device.values() if c.role == "phone"]
        return sum(self._send(phone, message) for phone in phones)

    def _send(self, client: _Client, message: dict[str, Any]) -> bool:
        try:
            client.conn.send(message)
        except (OSError, hublink.LinkFormatError) as err:
            log.warning("hub %s: cannot write to %s: %s", self.name, client.device or "?", err)
            return False
        return True

    # --- the server thread ----------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, _mask in self._selector.select(timeout=0.05):
                if key.data is None:
                    self._accept()
                else:
                    self._read(key.data)
            self._expire()

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        if len(self._clients) >= MAX_CLIENTS:
            sock.close()
            return
        client = _Client(hublink.Connection(sock, self.name))
        with self._lock:
            self._clients[sock.fileno()] = client
        with contextlib.suppress(KeyError):  # a reused fd whose old socket went unnoticed
            self._selector.unregister(sock)
        self._selector.register(sock, selectors.EVENT_READ, client)

    def _read(self, client: _Client) -> None:
        sock = client.conn.sock
        try:
            data = sock.recv(65536)  # the selector said it is readable: this returns at once
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        for line in client.conn.feed(data):
            if isinstance(line, hublink.LinkFormatError):
                self._reject(client, str(line))
                continue
            try:
                message = hublink.decode(line)
            except hublink.LinkFormatError as err:
                self._reject(client, str(err))
                continue
            self._handle(client, message)

    def _drop(self, client: _Client) -> None:
        """Forget a connection (server thread only: the selector is not thread-safe)."""
        sock = client.conn.sock
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        with self._lock:
            self._clients = {k: c for k, c in self._clients.items() if c is not client}
            current = bool(client.device) and self._by_device.get(client.device) is client
            if current:
                del self._by_device[client.device]
        client.conn.close()
        if current:  # a replaced connection's device is still there
            self.events.put(ApiEvent("bye", client.device, client.role, client.model))

    def hang_up(self, device: str) -> bool:
        """Close ``device``'s connection from the hub's side; the reading thread forgets it."""
        with self._lock:
            client = self._by_device.get(device)
        if client is None:
            return False
        with contextlib.suppress(OSError):
            client.conn.sock.shutdown(socket.SHUT_RDWR)  # its read then ends in _drop
        return True

    def _reject(self, client: _Client, why: str) -> None:
        self.malformed += 1
        log.warning("hub %s: malformed message from %s: %s", self.name, client.device or "?", why)
        self._send(client, {"error": why})

    def _handle(self, client: _Client, message: dict[str, Any]) -> None:
        if "hello" in message:
            self._hello(client, message["hello"])
        elif not client.device:
            self._reject(client, "say hello first")
        elif "report" in message:
            self._report(client, message["report"])
        elif "result" in message and isinstance(message.get("id"), int):
            with self._lock:
                pending = self._pending.pop(message["id"], None)
            if pending is not None and isinstance(message["result"], dict):
                self.events.put(
                    ApiEvent("result", client.device, ident=message["id"], body=message["result"])
                )
        elif "call" in message and isinstance(message.get("id"), int):
            problem = hublink.check_call(message["call"])
            if problem is not None:
                self._send(client, {"id": message["id"], "result": hublink.result(-4006, problem)})
                return
            self.events.put(
                ApiEvent(
                    "command", client.device, client.role, ident=message["id"], body=message["call"]
                )
            )
        else:
            self._reject(client, f"unknown message with keys {sorted(message)}")

    def _hello(self, client: _Client, body: Any) -> None:
        ok = (
            isinstance(body, dict)
            and body.get("role") in hublink.ROLES
            and isinstance(body.get("device"), str)
            and bool(body.get("device"))
            and isinstance(body.get("model", ""), str)
        )
        if not ok:
            self.malformed += 1
            self._send(client, {"ok": False, "error": "hello needs role, device and model"})
            return
        client.device, client.role, client.model = body["device"], body["role"], body["model"]
        with self._lock:
            old = self._by_device.get(client.device)
            self._by_device[client.device] = client
        if old is not None and old is not client:
            self._drop(old)  # a reconnect replaces the old connection
        self._send(client, {"ok": True})
        self.events.put(ApiEvent("hello", client.device, client.role, client.model))

    def _report(self, client: _Client, body: Any) -> None:
        if (
            not isinstance(body, dict)
            or body.get("kind") not in ("property", "event")
            or not isinstance(body.get("name"), str)
        ):
            self._reject(client, "a report needs kind property|event and a name")
            return
        t = body.get("t")
        self.events.put(
            ApiEvent(
                "report",
                client.device,
                client.role,
                client.model,
                body=body,
                t=float(t) if isinstance(t, int | float) else time.time(),
            )
        )

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [(i, d) for i, (d, deadline) in self._pending.items() if deadline < now]
            for ident, _ in late:
                del self._pending[ident]
        for ident, device in late:
            body = hublink.result(-4004, f"no result within {CALL_TIMEOUT_S:g} s")
            self.events.put(ApiEvent("result", device, ident=ident, body=body))
