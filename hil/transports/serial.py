"""Serial lines through ``serial.serial_for_url``; every line captured.

Works with any pyserial URL or device path: ``/dev/ttyUSB0``, a pty slave,
``rfc2217://host:port`` (ser2net; add ``?ign_set_control``: ser2net does not
answer pyserial's SET_CONTROL), ``socket://``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import serial

from hil.errors import DeviceLost, TransportOpenError
from hil.lifecycle import Resource, start_thread
from hil.transports.capture import RX, TX, Capture

LineHandler = Callable[[float, str], None]
WRITE_TIMEOUT_S = 1.0  # a local port whose reader stalled must not hang the plan


class SerialTransport(Resource):
    """A line-oriented serial port with a reader thread.

    ``on_line`` is called on the reader thread for each received line, after
    it has been captured, so a driver can answer within the protocol's time
    (the MIoT module must answer ``get_down`` at once).
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
        self._thread = start_thread(self._read_loop, f"serial-{self.name}")

    def _read_loop(self) -> None:
        port = self._port
        assert port is not None
        buf = bytearray()
        term = self.terminator
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
            if not chunk:
                continue
            buf += chunk
            while True:
                idx = buf.find(term)
                if idx < 0:
                    if len(buf) > self.max_line:
                        # keep the evidence of an over-long line but do not grow forever
                        self._deliver(bytes(buf))
                        buf.clear()
                    break
                line = bytes(buf[:idx])
                del buf[: idx + len(term)]
                self._deliver(line.rstrip(b"\n").lstrip(b"\n"))

    def _deliver(self, raw: bytes) -> None:
        t = time.time()
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
            port.write(data)
        except (serial.SerialException, OSError) as err:
            raise DeviceLost(f"serial write failed: {err}", device=self.name) from err
        self.capture.append(t, TX, text)
        return t

    def _close_impl(self) -> None:
        self._running = False
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout=2.0)
        if self._port is not None:
            self._port.close()
            self._port = None
