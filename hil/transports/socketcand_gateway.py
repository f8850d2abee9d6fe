"""A socketcand-protocol server: python-can's ``socketcand`` clients reach a CAN bus over TCP.

A lab reaches a CAN bus on another machine through the socketcand daemon
(https://github.com/linux-can/socketcand); python-can's ``socketcand``
interface is its client. This gateway speaks the part of the protocol that
client speaks (its source in ``can/interfaces/socketcand`` is the ground
truth), so the same client works against either:

* on connect the server says ``< hi >``;
* ``< open CHANNEL >`` → ``< ok >`` (or ``< error … >``, which the client
  reports in its ``CanError``); ``< rawmode >`` → ``< ok >``; ``< bcmmode >``
  → ``< ok >``; ``< echo >`` → ``< echo >``;
* in raw mode every frame on the channel goes to the client as
  ``< frame ID SECS.USECS DATA >`` (ID: 3 hex digits standard, 8 extended;
  DATA: contiguous hex, two digits a byte) with the bus timestamp, and the
  client sends with ``< send ID LEN B0 B1 … >`` (bytes in hex, any width).

Each client gets its own ``can.Bus`` on the channel (for ``virtual``: a peer
on the in-process channel; for ``socketcan``: its own raw socket), so several
clients on one channel see each other's frames, never their own, as on a real
bus. With ``interface="virtual"`` the gateway is how an emulator in one
process is reached from another; with ``socketcan``/``pcan``… it is a real
CAN gateway for a lab machine.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import can

from hil.errors import HilError, TransportOpenError
from hil.lifecycle import Resource, start_thread

log = logging.getLogger(__name__)

DEFAULT_PORT = 29536  # socketcand's own default
POLL_S = 0.05  # how often idle threads look at the stop flag
SEND_TIMEOUT_S = 2.0  # a client that reads nothing for this long is dropped
MAX_COMMAND = 256  # longest command a client may send (a CAN FD send is ~200 chars)
# python-can's client reads "< ok >" to rawmode with one recv() and compares it
# exactly: a frame sent right behind it could arrive in the same read. Frames
# seen during this grace are held (timestamps intact) and sent after it. The
# grace ends early when the client sends: it has read the "< ok >" by then (a
# diagnostic request must not wait for its answer behind the grace).
RAW_GRACE_S = 0.2
HELD_FRAMES = 10_000  # bound on frames held during the grace


class GatewayProtocolError(HilError):
    """A client sent something the socketcand protocol does not allow."""


def _protocol_text(text: str) -> str:
    """``text`` inside one ``< … >`` message: ASCII, and no angle bracket ends it early."""
    ascii_text = text.encode("ascii", "backslashreplace").decode("ascii")
    return ascii_text.replace("<", "[").replace(">", "]")


def format_frame(msg: can.Message) -> str:
    """``< frame ID SECS.USECS DATA >`` as socketcand sends it in raw mode."""
    ident = f"{msg.arbitration_id:08X}" if msg.is_extended_id else f"{msg.arbitration_id:03X}"
    secs, usecs = divmod(round(msg.timestamp * 1_000_000), 1_000_000)
    data = bytes(msg.data).hex().upper()
    # with no data this leaves two spaces before ">", which the client's split relies on
    return f"< frame {ident} {secs}.{usecs:06d} {data} >"


def parse_send(body: str) -> can.Message:
    """The frame of a ``send ID LEN B0 B1 …`` command (without the angle brackets)."""
    parts = body.split()
    if len(parts) < 3 or parts[0] != "send":
        raise GatewayProtocolError(f"expected 'send ID LEN BYTES…', got {body!r}")
    try:
        ident = int(parts[1], 16)
        length = int(parts[2], 16)
        data = bytes(int(b, 16) for b in parts[3:])
    except ValueError as err:
        raise GatewayProtocolError(f"bad number in {body!r}: {err}") from err
    if length != len(data) or length > 64:
        raise GatewayProtocolError(f"length {length} does not match {len(data)} data bytes")
    extended = len(parts[1]) > 3 or ident > 0x7FF
    if ident > (0x1FFFFFFF if extended else 0x7FF):
        raise GatewayProtocolError(f"CAN id {parts[1]} out of range")
    return can.Message(arbitration_id=ident, is_extended_id=extended, data=data, is_fd=length > 8)


class _Session:
    """One connected client: a command reader thread and a bus pump thread."""

    def __init__(self, gateway: SocketcandGateway, conn: socket.socket, peer: str) -> None:
        self.gateway = gateway
        self.conn = conn
        self.peer = peer
        self.stopping = threading.Event()
        self.raw_since: float | None = None  # monotonic time rawmode was acknowledged
        self._grace_over = False  # a send has ended the rawmode grace already
        self.bus: can.BusABC | None = None
        self.channel: str | None = None
        self._send_lock = threading.Lock()
        self._pump: threading.Thread | None = None
        self.reader: threading.Thread | None = None
        conn.settimeout(SEND_TIMEOUT_S)  # bounds sendall(); reads wait in select()

    def start(self) -> None:
        self.reader = start_thread(self._read_loop, f"socketcand-{self.peer}")

    def stop(self) -> None:
        self.stopping.set()

    def join(self) -> None:
        if self.reader is not None:
            self.reader.join(timeout=SEND_TIMEOUT_S + 1.0)

    def _write(self, text: str) -> None:
        with self._send_lock:
            self.conn.sendall(text.encode("ascii"))

    def _read_loop(self) -> None:
        try:
            self._write("< hi >")
            buf = ""
            while not self.stopping.is_set():
                ready, _, _ = select.select([self.conn], [], [], POLL_S)
                if not ready:
                    continue
                chunk = self.conn.recv(4096)
                if not chunk:
                    return  # the client hung up
                # one split per read, not a slice per command: a producer at full-bus
                # rate writes a hundred commands in one segment
                *complete, buf = (buf + chunk.decode("ascii", errors="replace")).split(">")
                for text in complete:
                    start = text.find("<")
                    command = text[start + 1 :].strip() if start >= 0 else ""
                    if command:
                        self._handle(command)
                if len(buf) > MAX_COMMAND:
                    log.warning("socketcand %s: command too long, closing", self.peer)
                    return
        except OSError as err:
            if not self.stopping.is_set():
                log.info("socketcand %s: connection ended: %s", self.peer, err)
        finally:
            self._finish()

    def _handle(self, command: str) -> None:
        word = command.split(maxsplit=1)[0]
        try:
            if word == "send":
                self._send(parse_send(command))
                if self.raw_since is not None and not self._grace_over:
                    self.raw_since = min(self.raw_since, time.monotonic() - RAW_GRACE_S)
                    self._grace_over = True
            elif word == "open":
                self._open(command[4:].strip())
            elif word in ("rawmode", "bcmmode"):
                if self.bus is None:
                    raise GatewayProtocolError(f"{word} before open")
                self.raw_since = time.monotonic() if word == "rawmode" else None
                self._grace_over = False
                self._write("< ok >")
            elif word == "echo":
                self._write("< echo >")
            else:
                raise GatewayProtocolError(f"unknown command {word!r}")
        except GatewayProtocolError as err:
            log.warning("socketcand %s: %s", self.peer, err)
            if self.raw_since is None:
                # in raw mode the python-can client would read an error line as a
                # malformed error frame and fail its recv(): there, log only
                self._write(f"< error {_protocol_text(str(err))} >")

    def _open(self, name: str) -> None:
        if self.bus is not None:
            raise GatewayProtocolError(f"channel {self.channel!r} is already open")
        if not name or " " in name:
            raise GatewayProtocolError(f"expected 'open CHANNEL', got a channel of {name!r}")
        channel = self.gateway.local_channel(name)
        try:
            self.bus = self.gateway.open_bus(channel)
        except (can.CanError, OSError, ValueError, ImportError) as err:
            raise GatewayProtocolError(f"could not open bus {name!r}: {err}") from err
        self.channel = name
        self._pump = start_thread(self._pump_loop, f"socketcand-{self.peer}-bus")
        self._write("< ok >")

    def _send(self, msg: can.Message) -> None:
        if self.bus is None:
            raise GatewayProtocolError("send before open")
        try:
            self.bus.send(msg)
        except can.CanError as err:
            log.warning("socketcand %s: send failed: %s", self.peer, err)

    def _pump_loop(self) -> None:
        bus = self.bus
        assert bus is not None
        held: deque[can.Message] = deque(maxlen=HELD_FRAMES)
        try:
            while not self.stopping.is_set():
                msg = bus.recv(timeout=POLL_S)
                raw_since = self.raw_since
                if raw_since is None:
                    continue  # not in raw mode: nothing is forwarded (no BCM jobs here)
                while msg is not None:  # drain what is queued into one write
                    if not msg.is_error_frame and not msg.is_remote_frame:
                        held.append(msg)
                    msg = bus.recv(timeout=0.0) if len(held) < 256 else None
                if held and time.monotonic() - raw_since >= RAW_GRACE_S:
                    lines = "".join(format_frame(m) for m in held)
                    held.clear()
                    self._write(lines)
        except (can.CanError, OSError, ValueError) as err:
            if not self.stopping.is_set():
                log.info("socketcand %s: bus pump ended: %s", self.peer, err)
            self.stopping.set()

    def _finish(self) -> None:
        self.stopping.set()
        if self._pump is not None:
            self._pump.join(timeout=SEND_TIMEOUT_S + 1.0)
        if self.bus is not None:
            self.bus.shutdown()
            self.bus = None
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)
        self.conn.close()
        self.gateway.forget(self)


class SocketcandGateway(Resource):
    """Serves python-can buses of ``interface`` to socketcand clients on ``host:port``.

    ``channels`` maps the names clients may open to the local python-can
    channel behind each (``{"ev-can": "ev-can-1a2b"}``); ``None`` lets a
    client open any channel by its own name. Binds loopback unless told
    otherwise: a gateway on another address is a deliberate lab decision.
    """

    def __init__(
        self,
        *,
        interface: str = "virtual",
        channels: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        bus_kwargs: Mapping[str, Any] | None = None,
        max_clients: int = 16,
        name: str = "socketcand",
    ) -> None:
        super().__init__()
        self.name = name
        self.interface = interface
        self.channels = dict(channels) if channels is not None else None
        self.host = host
        self.requested_port = port
        self.bus_kwargs = dict(bus_kwargs or {})
        self.max_clients = max_clients
        self._listener: socket.socket | None = None
        self._sessions: set[_Session] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._accept: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._listener is None:
            raise TransportOpenError("gateway is not open", device=self.name)
        return int(self._listener.getsockname()[1])

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._sessions)

    def local_channel(self, name: str) -> str:
        if self.channels is None:
            return name
        if name not in self.channels:
            raise GatewayProtocolError(
                f"no channel {name!r} on this gateway; it serves {sorted(self.channels)}"
            )
        return self.channels[name]

    def open_bus(self, channel: str) -> can.BusABC:
        return can.Bus(interface=self.interface, channel=channel, **self.bus_kwargs)

    def forget(self, session: _Session) -> None:
        with self._lock:
            self._sessions.discard(session)

    def _open_impl(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.requested_port))
            sock.listen(self.max_clients)
        except OSError as err:
            sock.close()
            raise TransportOpenError(
                f"cannot listen on {self.host}:{self.requested_port}: {err}",
                device=self.name,
                address=f"{self.host}:{self.requested_port}",
            ) from err
        self._listener = sock
        self._accept = start_thread(self._accept_loop, f"{self.name}-accept")

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            ready, _, _ = select.select([listener], [], [], POLL_S)
            if not ready:
                continue
            try:
                conn, addr = listener.accept()
            except OSError:
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                full = len(self._sessions) >= self.max_clients
                if not full and not self._stopping.is_set():
                    session = _Session(self, conn, f"{addr[0]}:{addr[1]}")
                    self._sessions.add(session)
                    session.start()
                    continue
            with contextlib.suppress(OSError):
                conn.sendall(b"< error too many clients >")
            conn.close()

    def _close_impl(self) -> None:
        self._stopping.set()
        if self._accept is not None:
            self._accept.join(timeout=2.0)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.stop()
        for session in sessions:
            session.join()
