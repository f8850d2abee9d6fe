"""Base for emulated CAN nodes: a real python-can bus, a 10 ms scheduler.

The emulator opens its own ``can.Bus`` on the bench's channel (python-can
``virtual`` in CI), so the bench's driver and the emulator talk through
python-can exactly as they would through a real interface. One worker thread
ticks every 10 ms, sends each of the node's messages at its DBC cycle time
(``GenMsgCycleTime``), E2E-protected, and hands received, decoded, verified
frames to ``on_message``. Behaviour, state and the hooks run on that one
thread, under ``_lock`` so ``state()`` can be read from any thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import can
import cantools.database

from hil.cannode.definition import initial_value
from hil.cannode.e2e import E2EProfile, encode
from hil.emulation.base import Emulator
from hil.errors import EmulatorError

Database = cantools.database.can.Database
Message = cantools.database.can.Message

log = logging.getLogger(__name__)

TICK_S = 0.010

# Robustness defects every CAN node can carry, whatever the device: the
# protocol fuzzer (hil/explore/fuzz/can.py) is the check that finds them.
ROBUSTNESS_DEFECTS: Mapping[str, str] = {
    "crashes_on_wrong_length": "the node's bus task dies on a received frame whose length "
    "differs from its DBC message's: it stops transmitting (and answering diagnostics)",
}


class CanNodeEmulator(Emulator):
    """Plays the nodes ``nodes`` of ``db`` on ``interface``/``channel``.

    Subclasses implement ``tick(dt)`` (physics; ``dt`` is real seconds: CAN
    timing rules and plan deadlines are never time-scaled) and
    ``on_message(name, values, t)``, and
    change what goes out with ``set_signals`` / ``send_now``.
    """

    DEFECTS: ClassVar[Mapping[str, str]] = ROBUSTNESS_DEFECTS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # a node's own defects come on top of the robustness defects every node can carry
        cls.DEFECTS = {**cls.DEFECTS, **ROBUSTNESS_DEFECTS}

    def __init__(
        self,
        name: str,
        *,
        db: Database,
        nodes: Iterable[str],
        interface: str,
        channel: str,
        bus_kwargs: Mapping[str, Any] | None = None,
        e2e: E2EProfile | None = None,
        defects: Iterable[str] = (),
        time_scale: float = 1.0,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, defects=defects, time_scale=time_scale, settings=settings)
        self.db = db
        self.nodes = frozenset(nodes)
        self.interface = interface
        self.channel = channel
        self.bus_kwargs = dict(bus_kwargs or {})
        self.e2e = e2e
        self._sender = e2e.sender() if e2e else None
        self._receiver = e2e.receiver() if e2e else None
        messages = [m for m in db.messages if not m.is_container]
        self._tx = {m.name: m for m in messages if self.nodes.intersection(m.senders)}
        self._rx = {m.frame_id: m for m in messages if m.name not in self._tx}
        self._values: dict[str, dict[str, Any]] = {
            m.name: {s.name: initial_value(s) for s in m.signals} for m in self._tx.values()
        }
        self._due: dict[str, float] = {}
        self._events: set[str] = set()
        self._lock = threading.RLock()
        self._bus: can.BusABC | None = None
        self.frames_sent = 0
        self.frames_received = 0
        self.decode_errors = 0
        self.encode_errors = 0
        self.sim_time = 0.0
        self.sent_at: dict[str, float] = {}  # message → monotonic time of its last send
        self.crashed = False  # the crashes_on_wrong_length defect struck: the bus task ended

    # -- for subclasses ---------------------------------------------------

    def tick(self, dt: float) -> None:
        """Advance the node's behaviour by ``dt`` simulated seconds."""

    def on_message(self, name: str, values: Mapping[str, Any], t: float) -> None:
        """A received frame that decoded and passed E2E verification."""

    def corrupt_checksum(self, name: str) -> bool:
        """Fault injection: send ``name`` with a wrong checksum."""
        return False

    def silenced(self, name: str) -> bool:
        """Fault injection: ``name`` is not sent at all (its sender is off the bus)."""
        return False

    def tolerates(self, name: str, reason: str) -> bool:
        """Defect hook: process a frame of ``name`` that failed E2E (``reason``) anyway."""
        return False

    def set_signals(self, message: str, **values: Any) -> None:
        """Values the next frames of ``message`` carry."""
        with self._lock:
            self._values[message].update(values)

    def send_now(self, message: str) -> None:
        """Send ``message`` at the end of this tick or receive (event on change)."""
        with self._lock:
            self._events.add(message)

    def signals(self, message: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._values[message])

    def quantize(self, message: str, signal: str, value: float) -> float:
        """``value`` as a receiver will decode it: the DBC resolution, saturated at the
        signal's range as an ECU's measurement is (80.1 A on a 0–80 A signal reads 80 A;
        unsaturated, the frame would not encode and the node would fall silent)."""
        sig = self._tx[message].get_signal_by_name(signal)
        if sig.minimum is not None:
            value = max(value, float(sig.minimum))
        if sig.maximum is not None:
            value = min(value, float(sig.maximum))
        raw = round(sig.conversion.scaled_to_raw(value))
        scaled: Any = sig.conversion.raw_to_scaled(raw, decode_choices=False)
        return float(scaled)

    @property
    def e2e_rejected(self) -> dict[str, int]:
        """Received frames dropped by E2E verification, ``"Message: reason"`` → count."""
        with self._lock:
            return dict(self._receiver.errors) if self._receiver else {}

    # -- lifecycle ----------------------------------------------------------

    def _start(self) -> None:
        try:
            self._bus = can.Bus(interface=self.interface, channel=self.channel, **self.bus_kwargs)
        except (can.CanError, OSError, ValueError, ImportError) as err:
            raise EmulatorError(
                f"cannot open CAN {self.interface!r} channel {self.channel!r}: {err}",
                device=self.name,
            ) from err
        self.endpoint = {"interface": self.interface, "channel": self.channel}
        self.spawn(self._run, "can")

    def _stop(self) -> None:
        if self._bus is not None:
            self._bus.shutdown()
            self._bus = None

    def _run(self) -> None:
        bus = self._bus
        assert bus is not None
        now = time.monotonic()
        next_tick = last = now
        while not self.stopping.is_set() and not self.crashed:
            now = time.monotonic()
            if now >= next_tick:
                with self._lock:
                    self.sim_time += now - last
                    self.tick(now - last)
                last = now
                self._send_due(now)
                # After a stall, resume the rhythm instead of bursting to catch up.
                next_tick = max(next_tick + TICK_S, now + TICK_S / 2)
                continue
            try:
                frame = bus.recv(timeout=next_tick - now)
            except (can.CanError, OSError, ValueError):
                if self.stopping.is_set():
                    return
                raise
            if frame is not None:
                self._dispatch(frame)
                self._send_due(time.monotonic(), events_only=True)

    def on_frame(self, frame: can.Message) -> bool:
        """First look at every received frame; return True to consume it.

        For traffic the DBC does not describe (diagnostics over ISO-TP)."""
        return False

    def on_rejected(self, message: str, reason: str) -> None:
        """A frame of ``message`` failed E2E checks (``reason``): a real ECU may set a DTC."""

    def _dispatch(self, frame: can.Message) -> None:
        if self.on_frame(frame):
            return
        message = self._rx.get(frame.arbitration_id)
        if message is None:
            return
        self.frames_received += 1
        if len(frame.data) != message.length and self.has("crashes_on_wrong_length"):
            log.warning(
                "%s: bus task crashed on a %d-byte %s", self.name, len(frame.data), message.name
            )
            self.crashed = True
            return
        decode: Any = message.decode_simple  # takes the bytearray as is
        try:
            values: dict[str, Any] = decode(frame.data, False, True)
        except Exception:  # truncated, unknown multiplexer value: a real ECU drops it
            self.decode_errors += 1
            return
        with self._lock:
            if self._receiver is not None:
                spec = self._receiver.profile.by_frame_id(message.frame_id)
                if spec is not None:
                    reason = self._receiver.verify(
                        spec.frame_id, frame.data, int(values[spec.counter])
                    )
                    if reason:
                        self.on_rejected(message.name, reason)
                        if not self.tolerates(message.name, reason):
                            return
            self.on_message(message.name, values, frame.timestamp)

    def _send_due(self, now: float, *, events_only: bool = False) -> None:
        with self._lock:
            events, self._events = self._events, set()
        for name, message in self._tx.items():
            cycle = message.cycle_time
            due = self._due.get(name, now)
            if name in events:
                # Cyclic-and-on-change: an event send restarts the cycle.
                self._send(message)
                if cycle:
                    self._due[name] = now + cycle / 1000.0
            elif cycle and not events_only and now >= due:
                self._send(message)
                self._due[name] = max(due + cycle / 1000.0, now)

    def _send(self, message: Message) -> None:
        bus = self._bus
        if bus is None:
            return
        with self._lock:
            if self.silenced(message.name):
                return
            values = dict(self._values[message.name])
            corrupt = self.corrupt_checksum(message.name)
        try:
            if self._sender is not None:
                data = bytearray(self._sender.protect(message, values))
            else:
                data = bytearray(encode(message, values))
        except (cantools.database.EncodeError, KeyError, ValueError) as err:
            # A behaviour bug must not kill the bus thread; the frame is skipped.
            self.encode_errors += 1
            log.warning("%s: cannot encode %s from %r: %s", self.name, message.name, values, err)
            return
        spec = self.e2e.get(message.name) if self.e2e else None
        if spec is not None and corrupt:
            data[spec.checksum_byte] ^= 0xFF
        frame = can.Message(
            arbitration_id=message.frame_id,
            is_extended_id=message.is_extended_frame,
            is_fd=message.is_fd,
            data=data,
        )
        try:
            bus.send(frame)
        except can.CanError:
            return  # a full queue or a bus-off: the next cycle tries again
        with self._lock:
            self.sent_at[message.name] = time.monotonic()
        self.frames_sent += 1
