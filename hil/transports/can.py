"""CAN through python-can, decoded with cantools; every frame captured."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Any

import can
import cantools
import cantools.database

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


def _frame_key(msg: can.Message) -> int:
    return int(msg.arbitration_id)


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


class CanTransport(Resource):
    """One ``can.Bus`` plus a reader thread that captures every frame.

    Frames are stored raw (``can.Message``) keyed by arbitration id; decoding
    happens on demand, so capture keeps up with a saturated bus.
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
        self._running = False

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
        self._running = True
        self._thread = start_thread(self._read_loop, f"can-{self.name}")

    def _read_loop(self) -> None:
        bus = self._bus
        assert bus is not None
        extend = self.capture.extend
        recv = bus.recv
        while self._running:
            batch: list[tuple[float, can.Message]] = []
            try:
                msg = recv(timeout=0.05)
                # drain what is already queued, then record it under one lock:
                # a saturated bus delivers frames faster than one-by-one locking
                while msg is not None:
                    batch.append((msg.timestamp or time.time(), msg))
                    if len(batch) >= 512:
                        break
                    msg = recv(timeout=0.0)
            except (can.CanError, OSError, ValueError) as err:
                if batch:
                    extend(RX, batch)
                if self._running:
                    self.lost = DeviceLost(
                        f"CAN bus error: {err}", device=self.name, at=time.time()
                    )
                return
            if batch:
                extend(RX, batch)
            elif self.interface == "socketcand" and _socketcand_hung_up(bus):
                if self._running:
                    self.lost = DeviceLost(
                        "the socketcand server closed the connection",
                        device=self.name,
                        at=time.time(),
                    )
                return

    def send(self, msg: can.Message) -> can.Message:
        """Send a frame and capture it as TX with the send timestamp."""
        if self._bus is None or not self.is_open:
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
        if self._bus is not None:
            self._bus.shutdown()
            self._bus = None

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
