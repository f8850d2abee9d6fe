"""The home hub's API: JSON objects, one per line, over TCP.

Appliance Wi-Fi modules and the phone talk to the home hub over this link
(the bench plays the modules, see ``hil/miot/uplink.py``; the phone emulator
is a client too). One message is one JSON object, UTF-8, ended by ``\\n``, at
most ``MAX_LINE`` (4096) bytes with the newline. Malformed input is logged
and answered with an error; it never ends the connection by itself.

Messages (names are stable; the phone and the hub are written against them):

* client → hub, first: ``{"hello": {"role": "module"|"phone", "device": NAME,
  "model": MODEL}}`` → ``{"ok": true}`` (or ``{"ok": false, "error": "…"}``)
* module → hub: ``{"report": {"device": D, "kind": "property", "name":
  "oven.heater", "value": V, "t": T}}`` or ``{"report": {"device": D, "kind":
  "event", "name": "fridge.door-alarm", "args": {…}, "t": T}}`` (``T`` =
  capture time of the serial line, seconds since the epoch)
* hub → client: ``{"id": N, "call": {"kind": "set", "name": "light.on",
  "value": true}}`` or ``{"id": N, "call": {"kind": "action", "name":
  "coffee-maker.brew", "args": {"recipe": 1}}}``; the client answers ``{"id":
  N, "result": {"code": 0, "message": "…"}}`` with the MIoT result code
* phone → hub: ``{"id": N, "call": {"kind": "command", "name": "scene",
  "args": {"scene": "good_morning"}}}`` → ``{"id": N, "result": {"code": 0}}``
  or an error code and message (see the hub's README for its commands)
* hub → phone: ``{"notify": {"category": "door_alarm", "device": D, "text":
  "…", "t": T}}``
* anything malformed → ``{"error": "what was wrong"}``
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import queue
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

from hil.errors import DeviceLost, DeviceTimeout, ProtocolError
from hil.lifecycle import Resource, start_thread

log = logging.getLogger(__name__)

MAX_LINE = 4096  # bytes per message, newline included
SEND_TIMEOUT_S = 2.0  # a peer that does not read for this long is dropped
CONNECT_TIMEOUT_S = 2.0
RETRY_S = (0.05, 0.2, 0.5, 1.0, 2.0)  # reconnect back-off, then every 2 s
ROLES = ("module", "phone")
CALL_KINDS = ("set", "action", "command")

Message = dict[str, Any]


class LinkFormatError(ValueError):
    """A line that is not one well-formed hub-link message."""


def encode(message: Mapping[str, Any]) -> bytes:
    """One message as its wire line; ``LinkFormatError`` when it is too long."""
    data = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    if len(data) > MAX_LINE:
        raise LinkFormatError(f"message of {len(data)} bytes exceeds {MAX_LINE}")
    return data


def decode(line: bytes) -> Message:
    """One wire line (without its newline) as a message object."""
    try:
        value = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise LinkFormatError(f"not UTF-8: {err.reason}") from err
    except json.JSONDecodeError as err:
        raise LinkFormatError(f"not JSON: {err.msg} at column {err.colno}") from err
    if not isinstance(value, dict):
        raise LinkFormatError(f"a message is a JSON object, got {type(value).__name__}")
    return value


def parse_address(text: str) -> tuple[str, int]:
    """``"host:port"`` → ``(host, port)``; ``ValueError`` naming what is wrong."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected 'host:port', got {text!r}")
    return host, int(port)


# --- message builders: the one place each shape is written -------------------------


def hello(role: str, device: str, model: str) -> Message:
    return {"hello": {"role": role, "device": device, "model": model}}


def report_property(device: str, name: str, value: Any, t: float) -> Message:
    return {"report": {"device": device, "kind": "property", "name": name, "value": value, "t": t}}


def report_event(device: str, name: str, args: Mapping[str, Any], t: float) -> Message:
    return {"report": {"device": device, "kind": "event", "name": name, "args": dict(args), "t": t}}


def call_set(name: str, value: Any) -> Message:
    return {"kind": "set", "name": name, "value": value}


def call_action(name: str, args: Mapping[str, Any]) -> Message:
    return {"kind": "action", "name": name, "args": dict(args)}


def command(name: str, args: Mapping[str, Any]) -> Message:
    return {"kind": "command", "name": name, "args": dict(args)}


def result(code: int, message: str = "") -> Message:
    return {"code": code, "message": message} if message else {"code": code}


def notify(category: str, device: str, text: str, t: float) -> Message:
    return {"notify": {"category": category, "device": device, "text": text, "t": t}}


def check_call(call: Any) -> str | None:
    """Why ``call`` is not a valid call object, or ``None``."""
    if not isinstance(call, dict):
        return "call must be an object"
    if call.get("kind") not in CALL_KINDS:
        return f"call kind must be one of {list(CALL_KINDS)}, got {call.get('kind')!r}"
    if not isinstance(call.get("name"), str):
        return "call needs a string 'name'"
    if call["kind"] == "set" and "value" not in call:
        return "a set call needs a 'value'"
    if call["kind"] != "set" and not isinstance(call.get("args", {}), dict):
        return "call 'args' must be an object"
    return None


class Connection:
    """One socket carrying hub-link lines: bounded sends, a line splitter with a size cap."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        # one timeout for both directions, set once: a send or a receive that
        # stalls this long means the peer is gone
        sock.settimeout(SEND_TIMEOUT_S)
        self.sock = sock
        self.name = name
        self._send_lock = threading.Lock()
        self._buffer = b""
        self._skipping = False  # inside an over-long line: drop bytes until its newline

    def send(self, message: Mapping[str, Any]) -> None:
        data = encode(message)
        with self._send_lock:
            self.sock.sendall(data)

    def feed(self, data: bytes) -> list[bytes | LinkFormatError]:
        """Split received bytes into lines; an over-long line becomes an error."""
        out: list[bytes | LinkFormatError] = []
        self._buffer += data
        while True:
            line, sep, rest = self._buffer.partition(b"\n")
            if not sep:
                if len(self._buffer) >= MAX_LINE:
                    if not self._skipping:
                        out.append(LinkFormatError(f"line longer than {MAX_LINE} bytes"))
                    self._skipping, self._buffer = True, b""
                return out
            self._buffer = rest
            if self._skipping:
                self._skipping = False
                continue
            if len(line) + 1 > MAX_LINE:
                out.append(LinkFormatError(f"line longer than {MAX_LINE} bytes"))
            elif line.strip():
                out.append(line)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


CallHandler = Callable[[Message], Message]
NotifyHandler = Callable[[Message], None]


class HubLinkClient(Resource):
    """A module or phone connected to the hub: hello, then calls both ways.

    Opening never blocks: a background thread connects (and reconnects with
    back-off while the client is open). The hub's calls run one at a time on a
    worker thread through ``on_call`` (which returns a result object), so a
    call that waits 4 s for an appliance does not stop the reading.
    ``request()`` sends this client's own call and waits for its result.
    """

    def __init__(
        self,
        address: str,
        *,
        role: str,
        device: str,
        model: str,
        on_call: CallHandler | None = None,
        on_notify: NotifyHandler | None = None,
    ) -> None:
        super().__init__()
        self.name = device
        self.host, self.port = parse_address(address)
        self.greeting = hello(role, device, model)
        self.on_call = on_call
        self.on_notify = on_notify
        self.connected = threading.Event()
        self.connects = 0  # how many times the hello was accepted
        self._conn: Connection | None = None
        self._stop = threading.Event()
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[threading.Event, list[Message]]] = {}
        self._calls: queue.Queue[Message | None] = queue.Queue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _open_impl(self) -> None:
        self._threads = [
            start_thread(self._run, f"hublink-{self.name}"),
            start_thread(self._work, f"hublink-{self.name}-calls"),
        ]

    def _close_impl(self) -> None:
        self._stop.set()
        self._calls.put(None)
        with self._lock:
            conn = self._conn
        if conn is not None:
            conn.close()
        for thread in self._threads:
            thread.join(timeout=3.0)

    # --- sending -------------------------------------------------------------------

    def send(self, message: Mapping[str, Any]) -> bool:
        """Send if connected; ``False`` (and nothing queued) when the hub is away."""
        with self._lock:
            conn = self._conn if self.connected.is_set() else None
        if conn is None:
            return False
        try:
            conn.send(message)
        except (OSError, LinkFormatError) as err:
            if not self._stop.is_set():  # while closing, a hub already gone is expected
                log.warning("hub link %s: send failed: %s", self.name, err)
            conn.close()
            return False
        return True

    def request(self, call: Mapping[str, Any], timeout: float = 5.0) -> Message:
        """Send ``call`` and wait for the hub's result object."""
        problem = check_call(call)
        if problem:
            raise ProtocolError(f"bad call {dict(call)!r}: {problem}", device=self.name)
        if not self.connected.wait(timeout):
            raise DeviceLost(
                f"not connected to the hub at {self.host}:{self.port}", device=self.name
            )
        ident = next(self._ids)
        done = threading.Event()
        box: list[Message] = []
        with self._lock:
            self._pending[ident] = (done, box)
        try:
            if not self.send({"id": ident, "call": dict(call)}):
                raise DeviceLost("the hub link dropped while sending", device=self.name)
            if not done.wait(timeout):
                raise DeviceTimeout(
                    f"no result from the hub for {dict(call)!r} within {timeout:g} s",
                    device=self.name,
                )
            if not isinstance(box[0], dict) or not isinstance(box[0].get("code"), int):
                raise ProtocolError(
                    f"the hub's result {box[0]!r} has no integer code", device=self.name
                )
            return box[0]
        finally:
            with self._lock:
                self._pending.pop(ident, None)

    # --- the connection thread --------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            if self._session():
                attempt = 0
            delay = RETRY_S[min(attempt, len(RETRY_S) - 1)]
            attempt += 1
            self._stop.wait(delay)

    def _session(self) -> bool:
        """One connection, hello to end; ``True`` if the hub accepted the hello."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
        except OSError as err:
            log.debug("hub link %s: cannot connect: %s", self.name, err)
            return False
        conn = Connection(sock, self.name)
        with self._lock:
            self._conn = conn
        if self._stop.is_set():  # closed while connecting: close() did not see this socket
            conn.close()
            return False
        accepted = False
        try:
            conn.send(self.greeting)
            while not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                for line in conn.feed(data):
                    if isinstance(line, LinkFormatError):
                        log.warning("hub link %s: %s", self.name, line)
                        continue
                    accepted = self._receive(conn, line) or accepted
        except OSError as err:
            log.debug("hub link %s: connection ended: %s", self.name, err)
        finally:
            self.connected.clear()
            with self._lock:
                self._conn = None
            conn.close()
        return accepted

    def _receive(self, conn: Connection, line: bytes) -> bool:
        try:
            message = decode(line)
        except LinkFormatError as err:
            log.warning("hub link %s: %s", self.name, err)
            return False
        if "ok" in message:
            if message["ok"] is True:
                self.connects += 1
                self.connected.set()
                return True
            log.warning("hub link %s: hello refused: %s", self.name, message.get("error"))
        elif "call" in message and isinstance(message.get("id"), int):
            self._calls.put(message)
        elif "result" in message and isinstance(message.get("id"), int):
            with self._lock:
                waiting = self._pending.get(message["id"])
            if waiting is not None:
                waiting[1].append(message["result"])
                waiting[0].set()
        elif "notify" in message:
            if self.on_notify is not None:
                self.on_notify(message["notify"])
        elif "error" in message:
            log.warning("hub link %s: the hub reports: %s", self.name, message["error"])
        else:
            log.warning("hub link %s: unexpected message %r", self.name, message)
        return False

    def _work(self) -> None:
        while True:
            message = self._calls.get()
            if message is None:
                return
            call = message["call"]
            problem = check_call(call)
            if problem is not None:
                answer = result(-4006, problem)
            elif self.on_call is None:
                answer = result(-4003, f"{self.name} takes no calls")
            else:
                try:
                    answer = self.on_call(call)
                except Exception as err:  # a failed call is an answer, not a dead worker
                    log.exception("hub link %s: call %r failed", self.name, call)
                    answer = result(-4004, str(err))
            self.send({"id": message["id"], "result": answer})
