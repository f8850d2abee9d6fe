"""A pseudo-terminal pair: the emulated MCU holds the master, the bench opens the slave path."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import tty


class PtyLink:
    """The MCU side of a UART, backed by a pty.

    The slave stays open here (in raw mode, no echo) so that its path is valid
    before and after the bench opens it, exactly like a USB serial adapter
    that is plugged in. Writes never block: with nobody reading, bytes are
    dropped, as on a real UART.
    """

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self.master)
        flags = fcntl.fcntl(self.master, fcntl.F_GETFL)
        fcntl.fcntl(self.master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self.path = os.ttyname(self._slave)
        self.closed = False

    def read(self, timeout: float) -> bytes | None:
        """Bytes from the bench, ``b""`` on timeout, ``None`` once closed."""
        if self.closed:
            return None
        try:
            ready, _, _ = select.select([self.master], [], [], timeout)
        except (OSError, ValueError):
            return None
        if not ready:
            return b""
        return self.read_available()

    def read_available(self) -> bytes | None:
        """What the bench sent, without waiting: ``b""`` if nothing, ``None`` once closed.

        For a selector loop that watches ``master`` and calls this when it is readable.
        """
        if self.closed:
            return None
        try:
            return os.read(self.master, 4096)
        except BlockingIOError:
            return b""
        except OSError as err:
            if err.errno == errno.EIO:  # the other side hung up
                return b""
            return None

    def write(self, data: bytes) -> int:
        if self.closed:
            return 0
        try:
            return os.write(self.master, data)
        except BlockingIOError:
            return 0  # nobody reading: the line is lost, as on a real wire
        except OSError:
            return 0

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
