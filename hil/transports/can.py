"""CAN through python-can, decoded with cantools; every frame captured."""

from __future__ import annotations

import logging
import operator
import queue
import socket
import threading
import time
from collections.abc import Sized
from pathlib import Path
from typing import Any

import can
import cantools
import cantools.database
from can.interfaces.virtual import VirtualBus

from hil import gc_policy
from hil.errors import DefinitionError, DeviceLost, TransportOpenError
from hil.lifecycle import Resource, start_thread
from hil.transports.capture import RX, TX, Capture

Database = cantools.database.can.Database


def load_dbc(path: Path) -> Database:
    """Load a DBC (or any cantools format), naming the file on error."""
    try:
        db = cantools.database.load_file(str(path), strict=True)
    except FileNotFoundError as err:
        raise DefinitionError("CAN database file not found", file=str(path)) from err
    except Exception as err:  # cantools raises many unrelated types on bad input
        raise DefinitionError(f"cannot load CAN database: {err}", file=str(path)) from err
    if not isinstance(db, Database):
        raise DefinitionError("not a CAN database", file=str(path))
    return db


HANDSHAKE_TRIES = 3

# python-can's socketcand client warns "Got incomplete message" whenever one TCP
# read ends inside a frame: routine on a busy bus (thousands a minute at 9,000
# frames/s), and nothing is lost; its real errors still come through.
logging.getLogger("can.interfaces.socketcand.socketcand").setLevel(logging.ERROR)


# a capture's key: a C-level getter, called for every frame captured
_frame_key = operator.attrgetter("arbitration_id")


def _queue_of(bus: can.BusABC) -> Sized | None:
    """What a bus holds received and not yet taken, where a look costs nothing.

    After each frame a receive asks whether more are queued, so a reader of the
    newest value right after a wait sees what the bus held by then. Asking
    python-can with ``recv(timeout=0.0)`` raises and catches ``queue.Empty`` inside
    the virtual bus: 3.6 µs on every answer of a round trip. Its queue (a public
    attribute) can be looked at instead. Other interfaces: None (ask ``recv``).
    """
    rx_queue = getattr(bus, "queue", None)
    if isinstance(bus, VirtualBus) and isinstance(rx_queue, queue.Queue):
        return rx_queue.queue  # type: ignore[no-any-return]  # its deque: len() is atomic
    return None


def _check_socketcand_server(kwargs: dict[str, Any], timeout: float = 3.0) -> None:
    """Fail fast, with the OS's reason, when no socketcand server listens.

    python-can's client retries a refused connect in a tight loop for 10 s.
    """
    host, port = kwargs.get("host"), kwargs.get("port")
    if host is None or port is None:
        raise ValueError("the socketcand interface needs options host and port")
    try:
        with socket.create_connection((str(host), int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise OSError(f"no socketcand server at {host}:{port}: {err.strerror or err}") from err


def _open_socketcand(channel: str, kwargs: dict[str, Any]) -> can.BusABC:
    """python-can's socketcand client, retrying a handshake that raced the first frames.

    A socketcand daemon sends frames as soon as it has acknowledged ``< rawmode >``;
    the client reads that ``< ok >`` with one recv() and compares it exactly, so on a
    busy bus a frame in the same read fails the handshake. A new connection cures it
    (hil's own gateway holds frames back after the ``< ok >``).
    """
    _check_socketcand_server(kwargs)
    attempt = 1
    while True:
        try:
            return can.Bus(interface="socketcand", channel=channel, **kwargs)
        except can.CanError as err:
            received = str(err).partition("got: '")[2].removesuffix("'")
            raced = received.startswith("< ok >") and received != "< ok >"
            if not raced or attempt >= HANDSHAKE_TRIES:
                raise
            attempt += 1


def _bus_error(interface: str, err: Exception) -> str:
    """Why a receive failed, in one line. python-can's socketcand client wraps the
    socket's error in a CanError whose text carries a whole traceback; a killed gateway
    resets the connection rather than closing it, the same fault as an end-of-file."""
    cause = err.__cause__ if isinstance(err.__cause__, OSError) else err
    if interface == "socketcand" and isinstance(cause, ConnectionError):
        return f"the socketcand server closed the connection ({cause})"
    lines = str(cause).splitlines()
    return f"CAN bus error: {lines[0] if lines else type(cause).__name__}"


def _socketcand_hung_up(bus: can.BusABC) -> bool:
    """Whether a socketcand client's server closed the connection.

    python-can's client (4.6) reads end-of-file as "no frame" and never
    reports it, so a lost gateway would look like a silent bus; its socket,
    peeked without consuming anything, tells the truth.
    """
    sock = getattr(bus, "_SocketCanDaemonBus__socket", None)
    if not isinstance(sock, socket.socket):
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


# A thread that waits for a frame receives it from the bus itself (``pump``), so an
# answer reaches the waiter with one thread wake-up, as a bare ``recv()`` loop does,
# not two (bus -> reader thread -> waiter). The reader thread keeps off the bus
# while waiters are receiving and this long after the last one: a step sequence
# (send, expect, send, expect...) keeps it parked. Frames wait in the bus's own
# queue meanwhile and keep their bus timestamps, so no verdict changes.
PARK_S = 0.02
READ_TIMEOUT_S = 0.05  # how long one look at the bus blocks (shutdown waits at most this)
DRAIN_MAX = 512  # frames recorded under one capture lock


class CanTransport(Resource):
    """One ``can.Bus`` plus a reader thread that captures every frame.

    Frames are stored raw (``can.Message``) keyed by arbitration id; decoding
    happens on demand, so capture keeps up with a saturated bus. Whoever
    receives from the bus (the reader thread, or a waiter in ``pump``) holds
    ``_rx_lock`` from ``recv()`` to the capture, so frames are captured in
    the order the bus delivered them.
    """

    def __init__(
        self,
        name: str,
        *,
        interface: str,
        channel: str,
        bitrate: int | None = None,
        fd: bool = False,
        capture_size: int = 500_000,
        bus_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.interface = interface
        self.channel = channel
        self.bitrate = bitrate
        self.fd = fd
        self.bus_kwargs = dict(bus_kwargs or {})
        self.capture: Capture[can.Message] = Capture(name, capture_size, key=_frame_key)
        self.lost: DeviceLost | None = None
        self._bus: can.BusABC | None = None
        self._queued: Sized | None = None  # see _queue_of
        self._running = False
        self._rx_lock = threading.Lock()
        self._parked_until = 0.0  # time.monotonic(): the reader thread keeps off the bus
        self._holds_heap = False  # see hil.gc_policy

    def _open_impl(self) -> None:
        kwargs: dict[str, Any] = dict(self.bus_kwargs)
        if self.bitrate is not None:
            kwargs["bitrate"] = self.bitrate
        if self.fd:
            kwargs["fd"] = True
        try:
            if self.interface == "socketcand":
                self._bus = _open_socketcand(self.channel, kwargs)
            else:
                self._bus = can.Bus(interface=self.interface, channel=self.channel, **kwargs)
        except (can.CanError, OSError, ValueError, ImportError) as err:
            raise TransportOpenError(
                f"cannot open CAN interface {self.interface!r} channel {self.channel!r}: {err}",
                device=self.name,
                address=f"{self.interface}:{self.channel}",
            ) from err
        self._queued = _queue_of(self._bus)
        self._running = True
        # what exists now outlives the capture: keep the collector's full passes off it
        gc_policy.hold()
        self._holds_heap = True
        self._thread = start_thread(self._read_loop, f"can-{self.name}")

    def _receive(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for a frame, then capture it and what else is queued.

        The caller holds ``_rx_lock``. False when the bus failed or its server hung up
        (``lost`` says why); nobody receives from it after that.
        """
        bus = self._bus
        if bus is None or self.lost is not None:
            return False
        recv = bus.recv
        queued = self._queued
        batch: list[tuple[float, can.Message]] = []
        try:
            msg = recv(timeout=timeout)
            if msg is not None and queued is not None and not queued:
                # nothing behind it (an answer): append costs less than a batch of one
                self.capture.append(msg.timestamp or time.time(), RX, msg)
                return True
            # drain what is already queued, then record it under one lock: a saturated
            # bus delivers frames faster than one-by-one locking; and a reader of the
            # newest value right after a wait sees what the bus held by then
            while msg is not None:
                batch.append((msg.timestamp or time.time(), msg))
                if len(batch) >= DRAIN_MAX or (queued is not None and not queued):
                    break
                msg = recv(timeout=0.0)
        except (can.CanError, OSError, ValueError) as err:
            if batch:
                self.capture.extend(RX, batch)
            if self._running:
                self.lost = DeviceLost(
                    _bus_error(self.interface, err), device=self.name, at=time.time()
                )
            return False
        if len(batch) == 1:  # an answer: append costs less than a batch of one
            self.capture.append(batch[0][0], RX, batch[0][1])
        elif batch:
            self.capture.extend(RX, batch)
        elif self.interface == "socketcand" and _socketcand_hung_up(bus):
            if self._running:
                self.lost = DeviceLost(
                    "the socketcand server closed the connection",
                    device=self.name,
                    at=time.time(),
                )
            return False
        return True

    def _read_loop(self) -> None:
        lock = self._rx_lock
        while self._running:
            parked = self._parked_until - time.monotonic()
            if parked > 0:
                time.sleep(min(parked, PARK_S))
                continue
            if not lock.acquire(timeout=READ_TIMEOUT_S):
                continue
            try:
                # a waiter may have parked the reader while it waited for the lock
                if self._parked_until > time.monotonic():
                    continue
                if not self._receive(READ_TIMEOUT_S):
                    return
            finally:
                lock.release()

    def pump(self, seq: int, timeout: float) -> bool:
        """Wait up to ``timeout`` for a record newer than capture sequence ``seq``.

        Receives from the bus on the calling thread when no one else is (see
        ``PARK_S``); otherwise waits for whoever is. True when something newer
        was captured (a frame of any id, or a frame sent).
        """
        capture = self.capture
        if not self._running or self.lost is not None:
            return capture.wait_beyond(seq, timeout)
        timeout = timeout if timeout > 0.0 else 0.0
        lock = self._rx_lock
        start = time.monotonic()
        self._parked_until = start + timeout + PARK_S
        if lock.acquire(False):  # nobody else receives: the round trip's case
            remaining = timeout
        elif lock.acquire(timeout=timeout):
            remaining = timeout - (time.monotonic() - start)
        else:
            return capture.seq > seq
        try:
            # the previous holder may have captured it while this thread waited
            if capture.seq > seq or not self._running:
                return capture.seq > seq
            self._receive(remaining if remaining > 0.0 else 0.0)
        finally:
            lock.release()
        return capture.seq > seq

    def send(self, msg: can.Message) -> can.Message:
        """Send a frame and capture it as TX with the send timestamp."""
        if self._bus is None or not self._running:  # (open: running until close)
            raise DeviceLost("CAN transport is closed", device=self.name)
        msg.timestamp = time.time()
        try:
            self._bus.send(msg)
        except (can.CanError, OSError) as err:
            raise DeviceLost(f"CAN send failed: {err}", device=self.name) from err
        self.capture.append(msg.timestamp, TX, msg)
        return msg

    def _close_impl(self) -> None:
        self._running = False
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout=2.0)
        # a waiter inside pump() returns from recv() within its timeout (<= its wait)
        locked = self._rx_lock.acquire(timeout=2.0)
        try:
            if self._bus is not None:
                self._bus.shutdown()
                self._bus = None
        finally:
            if locked:
                self._rx_lock.release()
            if self._holds_heap:
                self._holds_heap = False
                gc_policy.release()

    def write_log(self, path: Path) -> Path:
        """Write the capture with python-can's own writer (.asc, .blf, .log, .csv…)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        records = self.capture.records()
        with can.Logger(str(path)) as logger:
            for rec in records:
                msg = rec.data
                msg.is_rx = rec.direction == RX
                logger.on_message_received(msg)
        return path
