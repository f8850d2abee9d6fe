"""A UDS server for emulated ECUs: ``UdsEcu`` rules carried over ISO-TP.

The emulator owns its python-can bus and its reader loop; it hands every
frame to ``feed`` and the server answers through the emulator's ``send``.
One worker thread (started with the emulator's ``spawn``) takes complete
requests from the ISO-TP link, applies S3 while idle, and sends the replies.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import can

from hil.uds.ecu import UdsEcu
from hil.uds.link import IsoTpLink

POLL_S = 0.02  # S3 is judged at least this often while idle


class UdsServer:
    """Serve ``ecu`` on ``request_id`` → ``response_id`` (11-bit, physical addressing)."""

    def __init__(
        self,
        name: str,
        ecu: UdsEcu,
        *,
        send: Callable[[can.Message], object],
        request_id: int,
        response_id: int,
    ) -> None:
        self.name = name
        self.ecu = ecu
        self.request_id, self.response_id = request_id, response_id
        self.link = IsoTpLink(f"{name}-ecu", txid=response_id, rxid=request_id, send=send)
        # (time, "req"/"resp", hex), the newest ones
        self.transcript: deque[tuple[float, str, str]] = deque(maxlen=10_000)
        self._lock = threading.Lock()

    def start(
        self, spawn: Callable[[Callable[[], object], str], None], stop: threading.Event
    ) -> None:
        """Start the ISO-TP link and the worker (``spawn`` names and tracks it)."""
        self._stopping = stop
        self.link.start()
        spawn(self._serve, "uds")

    def stop(self) -> None:
        """Stop the link (the worker returns once ``stop`` is set)."""
        self.link.stop()

    def feed(self, frame: can.Message) -> bool:
        """Offer a received frame; True if it was a diagnostic request frame."""
        if frame.arbitration_id != self.request_id:
            return False
        self.link.feed(frame)
        return True

    def _record(self, direction: str, payload: bytes) -> None:
        with self._lock:
            self.transcript.append((time.time(), direction, payload.hex()))

    def _serve(self) -> None:
        stop = self._stopping
        while not stop.is_set():
            payload = self.link.recv(POLL_S)
            if payload is None:
                self.ecu.expire()
                continue
            self._record("req", payload)
            for delay, reply in self.ecu.handle(payload):
                if delay > 0 and stop.wait(delay):
                    return
                self._record("resp", reply)
                self.link.send(reply)

    def state(self) -> dict[str, Any]:
        with self._lock:
            exchanged = len(self.transcript)
        return {**self.ecu.state(), "pdus": exchanged, "isotp_errors": list(self.link.errors)}
