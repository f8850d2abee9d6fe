"""A line-based TCP server on loopback, for emulated LAN instruments."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Callable

LineReply = Callable[[str], str | None]


class _Handler(socketserver.StreamRequestHandler):
    server: LineServer

    def handle(self) -> None:
        self.server.track(self.connection)
        try:
            while not self.server.stopping.is_set():
                try:
                    raw = self.rfile.readline(self.server.max_line + 1)
                except OSError:
                    return
                if not raw:
                    return
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                for command in self.server.split(line):
                    reply = self.server.reply(command)
                    if reply is not None:
                        try:
                            self.wfile.write(reply.encode() + b"\n")
                        except OSError:
                            return
        finally:
            self.server.untrack(self.connection)


class LineServer(socketserver.ThreadingTCPServer):
    """Serves ``reply(line)`` on 127.0.0.1 at a port the OS picks.

    Loopback only: an emulator must never be reachable from outside the
    machine.
    """

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(
        self,
        reply: LineReply,
        *,
        split: Callable[[str], list[str]] = lambda line: [line],
        max_line: int = 65536,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.reply = reply
        self.split = split
        self.max_line = max_line
        self.stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._serving = False
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def track(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)

    def drop_connections(self) -> None:
        """Reset every open client connection (used to inject link faults)."""
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def serve_forever(self, poll_interval: float = 0.05) -> None:
        self._serving = True
        super().serve_forever(poll_interval)

    def stop(self) -> None:
        self.stopping.set()
        if self._serving:  # shutdown() waits forever unless serve_forever() ran
            self.shutdown()
        self.drop_connections()
        self.server_close()
