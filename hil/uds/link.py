"""An ISO-TP link (``isotp.TransportLayer``) fed by someone else's CAN reader.

Neither side of the bench may read its bus directly: the bench's
``CanTransport`` reader thread owns ``recv`` (and captures every frame), and
an emulated ECU's bus belongs to its node loop. So frames are *pushed* into
this link (``feed``) and its ``rxfn`` takes them from a queue; ``txfn`` sends
through a callable the owner gives. isotp's documented callback interface,
no re-implementation of the protocol.
"""

from __future__ import annotations

import logging
import queue
from collections import deque
from collections.abc import Callable

import can
import isotp

log = logging.getLogger(__name__)

PADDING = 0xAA  # frames padded to 8 bytes, as most OEM ECUs require
READ_TIMEOUT_S = 0.02  # granularity of isotp's threads when idle


class IsoTpLink:
    """One physical-addressed ISO-TP channel on 11-bit ids ``txid`` → ``rxid``."""

    def __init__(
        self, name: str, *, txid: int, rxid: int, send: Callable[[can.Message], object]
    ) -> None:
        self.name = name
        self.txid, self.rxid = txid, rxid
        self._send = send
        self._frames: queue.Queue[isotp.CanMessage] = queue.Queue()
        self.errors: deque[str] = deque(maxlen=100)  # the newest isotp errors
        self.layer = isotp.TransportLayer(
            rxfn=self._rxfn,
            txfn=self._txfn,
            address=isotp.Address(isotp.AddressingMode.Normal_11bits, txid=txid, rxid=rxid),
            error_handler=self._on_error,
            params={"tx_padding": PADDING, "tx_data_min_length": 8, "blocking_send": False},
            read_timeout=READ_TIMEOUT_S,
        )
        self._started = False

    def start(self) -> None:
        self.layer.start()
        self._started = True
        # isotp starts anonymous threads; named, they are seen by hil's leak checks
        for role, thread in (("main", self.layer.main_thread), ("relay", self.layer.relay_thread)):
            if thread is not None:
                thread.name = f"hil-isotp-{self.name}-{role}"

    def stop(self) -> None:
        if self._started:
            self._started = False
            self.layer.stop()

    def feed(self, frame: can.Message) -> None:
        """Hand over a received frame (only frames with id ``rxid`` matter)."""
        if frame.arbitration_id != self.rxid or frame.is_error_frame or frame.is_remote_frame:
            return
        self._frames.put(
            isotp.CanMessage(
                arbitration_id=frame.arbitration_id,
                data=bytes(frame.data),
                extended_id=frame.is_extended_id,
                is_fd=frame.is_fd,
            )
        )

    def send(self, payload: bytes) -> None:
        self.layer.send(payload)

    def recv(self, timeout: float) -> bytes | None:
        data = self.layer.recv(block=True, timeout=timeout)
        return None if data is None else bytes(data)

    def _rxfn(self, timeout: float) -> isotp.CanMessage | None:
        try:
            return self._frames.get(timeout=timeout)
        except queue.Empty:
            return None

    def _txfn(self, msg: isotp.CanMessage) -> None:
        self._send(
            can.Message(
                arbitration_id=msg.arbitration_id,
                data=bytes(msg.data),
                is_extended_id=msg.is_extended_id,
                is_fd=msg.is_fd,
            )
        )

    def _on_error(self, error: Exception) -> None:
        # isotp reports protocol trouble (unexpected frame, timeouts) here, on its thread
        self.errors.append(f"{type(error).__name__}: {error}")
        log.debug("%s: isotp %s", self.name, error)
