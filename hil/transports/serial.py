"""Serial lines through ``serial.serial_for_url``; every line captured.

Works with any pyserial URL or device path: ``/dev/ttyUSB0``, a pty slave,
``rfc2217://host:port`` (ser2net; add ``?ign_set_control``: ser2net does not
answer pyserial's SET_CONTROL), ``socket://``.

A local port (a tty or pty that pyserial opened non-blocking, with a real
``fileno()``) is read by the process's one shared selector loop
(hil/transports/selector_loop.py), so a bench of 100 serial devices does not
need 100 reader threads waking every 50 ms. A URL port (``rfc2217://``,
``socket://``) keeps a reader thread of its own: pyserial does the protocol
(telnet options, escaping) inside ``read()``, which a raw fd would bypass.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import serial

from hil.errors import DeviceLost, TransportOpenError
from hil.lifecycle import Resource, start_thread
from hil.transports import selector_loop
from hil.transports.capture import RX, TX, Capture

LineHandler = Callable[[float, str], None]
WRITE_TIMEOUT_S = 1.0  # a local port whose reader stalled must not hang the plan
READ_CHUNK = 65536
LOOP_ROLE = "serial"  # the bench side's loop; the emulators have their own


class SerialTransport(Resource):
    """A line-oriented serial port, read on the shared selector loop or its own thread.

    ``on_line`` is called on the reading thread for each received line, after
    it has been captured, so a driver can answer within the protocol's time
    (the MIoT module must answer ``get_down`` at once). On the shared loop it
    must not block: it holds up every other port's reading while it runs.
    """

    def __init__(
        self,
        name: str,
        *,
        url: str,
        baudrate: int = 115200,
        terminator: bytes = b"\r",
        max_line: int = 4096,
        capture_size: int = 200_000,
        encoding: str = "utf-8",
    ) -> None:
        super().__init__()
        self.name = name
        self.url = url
        self.baudrate = baudrate
        self.terminator = terminator
        self.max_line = max_line
        self.encoding = encoding
        self.capture: Capture[str] = Capture(name, capture_size)
        self.on_line: LineHandler | None = None
        self.lost: DeviceLost | None = None
        self._port: serial.SerialBase | None = None
        self._running = False
        self._buf = bytearray()
        self._fd: int | None = None  # set when the shared loop reads the port
        self._loop: selector_loop.SelectorLoop | None = None

    @property
    def on_shared_loop(self) -> bool:
        """Read by the shared selector loop (a local port), not a thread of its own."""
        return self._loop is not None

    def _open_impl(self) -> None:
        # pyserial's rfc2217:// refuses a write timeout (NotImplementedError); its writes
        # go to a TCP socket, which has its own
        remote = self.url.startswith("rfc2217://")
        try:
            self._port = serial.serial_for_url(
                self.url,
                baudrate=self.baudrate,
                timeout=0.05,
                write_timeout=None if remote else WRITE_TIMEOUT_S,
            )
        except (serial.SerialException, OSError, ValueError, NotImplementedError) as err:
            hint = ""
            if remote and "option 'control'" in str(err) and "ign_set_control" not in self.url:
                hint = " (ser2net does not answer RFC 2217 SET_CONTROL: add ?ign_set_control)"
            raise TransportOpenError(
                f"cannot open serial port {self.url!r}: {err}{hint}",
                device=self.name,
                address=self.url,
            ) from err
        self._running = True
        # serial.Serial is the platform's tty class, opened O_NONBLOCK on POSIX; the URL
        # handlers (rfc2217, socket, loop) derive from SerialBase and speak through read()
        if isinstance(self._port, serial.Serial) and os.name == "posix":
            self._fd = self._port.fileno()
            self._loop = selector_loop.acquire(LOOP_ROLE)
            self._loop.add_reader(self._fd, self._on_readable)
        else:
            self._thread = start_thread(self._read_loop, f"serial-{self.name}")

    def _on_readable(self) -> None:
        """Loop thread: drain what the port holds, then frame it."""
        fd = self._fd
        if fd is None:
            return
        try:
            chunk = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return  # another reader took it, or a spurious wake-up
        except OSError as err:  # EIO: the other end of the pty or the USB adapter is gone
            self._fail(err)
            return
        if not chunk:  # readable yet empty: pyserial's own sign of a disconnected device
            self._fail(OSError("the device reports readiness to read but returned no data"))
            return
        self._feed(time.time(), chunk)

    def _fail(self, err: BaseException) -> None:
        if self._running:
            self.lost = DeviceLost(
                f"serial port {self.url!r} failed: {err}", device=self.name, at=time.time()
            )
        # level-triggered: a dead fd stays readable, so it must leave the loop
        if self._loop is not None and self._fd is not None:
            self._loop.remove_reader(self._fd)

    def _read_loop(self) -> None:
        """A URL port's own reader thread."""
        port = self._port
        assert port is not None
        while self._running:
            try:
                chunk = port.read(max(1, port.in_waiting))  # type: ignore[attr-defined]
            except (serial.SerialException, OSError, TypeError) as err:
                # TypeError: pyserial's posix read after the fd was closed under it
                if self._running:
                    self.lost = DeviceLost(
                        f"serial port {self.url!r} failed: {err}", device=self.name, at=time.time()
                    )
                return
            if chunk:
                self._feed(time.time(), chunk)

    def _feed(self, t: float, chunk: bytes) -> None:
        """Frame ``chunk`` (arrived at ``t``) into lines and deliver each."""
        buf = self._buf
        buf += chunk
        term = self.terminator
        while True:
            idx = buf.find(term)
            if idx < 0:
                if len(buf) > self.max_line:
                    # keep the evidence of an over-long line but do not grow forever
                    self._deliver(t, bytes(buf))
                    buf.clear()
                return
            line = bytes(buf[:idx])
            del buf[: idx + len(term)]
            self._deliver(t, line.rstrip(b"\n").lstrip(b"\n"))

    def _deliver(self, t: float, raw: bytes) -> None:
        text = raw.decode(self.encoding, errors="backslashreplace")
        self.capture.append(t, RX, text)
        handler = self.on_line
        if handler is not None:
            handler(t, text)

    def write_line(self, text: str) -> float:
        """Send one line (terminator added); returns the capture timestamp."""
        port = self._port
        if port is None or not self.is_open:
            raise DeviceLost("serial port is closed", device=self.name)
        data = text.encode(self.encoding) + self.terminator
        t = time.time()
        try:
            sent = 0
            if self._fd is not None:
                # one write(2): pyserial's write() adds a select() per call even when
                # everything went out; it still handles what does not fit at once
                try:
                    sent = os.write(self._fd, data)
                except BlockingIOError:
                    sent = 0
            if sent < len(data):
                port.write(data[sent:])
        except (serial.SerialException, OSError) as err:
            raise DeviceLost(f"serial write failed: {err}", device=self.name) from err
        self.capture.append(t, TX, text)
        return t

    def _close_impl(self) -> None:
        self._running = False
        loop, fd = self._loop, self._fd
        if loop is not None and fd is not None:
            loop.remove_reader(fd)  # returns once the loop let go: the fd may be closed
            selector_loop.release(loop)
            self._loop = None
        self._fd = None
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout=2.0)
        if self._port is not None:
            self._port.close()
            self._port = None
