"""A generic driver for any CAN node described by a cantools database.

The transport stores raw frames only; this driver decodes them lazily, once
each, when a signal is asked for (``hil.cannode.frame_log``). A capture listener
hands it each new frame of a known id (one list append on the receiving
thread), so a poll costs the frames that are new since the last poll, not the
length of the capture. Frames that fail E2E verification are dropped and
counted, as a real receiver would drop them. A wait receives from the bus on
its own thread (``CanTransport.pump``), so an answer wakes it directly.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import can
import cantools.database

from hil.bench.definition import DeviceDefinition
from hil.bench.driver import Sample
from hil.cannode.codec import codec_for
from hil.cannode.definition import initial_value
from hil.cannode.e2e import BAD_CHECKSUM, FAULT_FIELD, FAULTS, E2EProfile
from hil.cannode.frame_log import DEDUPE_WINDOW_S, FrameLog
from hil.cannode.link_health import LinkHealth
from hil.cannode.waiting import WAIT_TICK_S, timed_out, value_check, wait_through_samples
from hil.errors import ConfigError, DeviceTimeout, did_you_mean
from hil.transports.can import CanTransport
from hil.transports.capture import Record

Database = cantools.database.can.Database
Message = cantools.database.can.Message

# Sample(...) runs the named tuple's Python-level __new__: once per answer awaited
_new_sample = tuple.__new__


class CanNodeDriver:
    """Driver for one CAN node (or a whole car) over an open ``CanTransport``.

    ``sticky`` names messages whose unspecified fields repeat the last values
    sent (a rest-bus signal a plan changes one field at a time); other
    messages fill them with the DBC initial value, or 0.
    """

    # the cyclic message that proves the device is alive: silence beyond a bound = lost
    PULSE: ClassVar[str | None] = None

    def __init__(
        self,
        name: str,
        transport: CanTransport,
        db: Database,
        definition: DeviceDefinition,
        *,
        e2e: E2EProfile | None = None,
        sticky: Iterable[str] = (),
        history: int = 200_000,
    ) -> None:
        self.name = name
        self.definition = definition
        self.transport = transport
        self.db = db
        self.e2e = e2e
        self.history = history
        self.decode_errors = 0
        self._receiver = e2e.receiver() if e2e else None
        self._sender = e2e.sender() if e2e else None
        self._sticky = frozenset(sticky)
        self._last_sent: dict[str, dict[str, Any]] = {}
        self._initial: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._closed = False
        pulse = db.get_message_by_name(self.PULSE) if self.PULSE else None
        self._health = LinkHealth(
            name, transport, (pulse.frame_id, pulse.name, pulse.cycle_time) if pulse else None
        )
        self._logs: dict[int, FrameLog] = {
            m.frame_id: FrameLog(m, history) for m in db.messages if not m.is_container
        }
        # each protected message's E2E spec, looked up once (a wait decodes per answer)
        self._specs = {
            log: spec
            for log in self._logs.values()
            if e2e is not None and (spec := e2e.by_frame_id(log.message.frame_id)) is not None
        }
        # per message name: what a send needs (see _outgoing_for)
        self._outgoing: dict[str, tuple[Message, Callable[[Any], bytes], int, bool, bool]] = {}
        self._by_signal: dict[str, tuple[FrameLog, str]] = {}
        for log in self._logs.values():
            for s in log.message.signals:
                self._by_signal[f"{log.message.name}.{s.name}"] = (log, s.name)
        capture = transport.capture
        capture.add_listener(self._on_record)
        self._seed(capture.records)

    # -- capture intake ---------------------------------------------------

    def _on_record(self, rec: Record[Any]) -> None:
        # Runs on whichever thread receives from the bus (the transport's reader, or
        # a waiter in its pump): keep it to a lookup and an append.
        log = self._logs.get(rec.data.arbitration_id)
        if log is not None:
            log.pending.append(rec)
        elif rec.data.is_error_frame:
            self._health.on_error_frame(rec.t)

    def _seed(self, records: Any) -> None:
        """Take frames captured before this driver existed (see ``FrameLog.seed``)."""
        until = time.monotonic() + DEDUPE_WINDOW_S
        for frame_id, log in self._logs.items():
            log.seed(records(key=frame_id), until)

    def _update(self, log: FrameLog) -> None:
        """Decode what arrived since the last call (caller holds ``_lock``)."""
        if not log.pending:  # nothing new (a waiter looks before every receive)
            return
        self.decode_errors += log.update(self._receiver, self._specs.get(log), self.history)

    # -- names --------------------------------------------------------------

    def _resolve(self, signal: str) -> tuple[FrameLog, str]:
        try:
            return self._by_signal[signal]
        except KeyError:
            raise ConfigError(
                f"{self.name}: no signal {signal!r}; " + did_you_mean(signal, self._by_signal),
                device=self.name,
            ) from None

    def message(self, name: str) -> Message:
        try:
            return self.db.get_message_by_name(name)
        except KeyError:
            names = [m.name for m in self.db.messages]
            raise ConfigError(
                f"{self.name}: no message {name!r}; " + did_you_mean(name, names),
                device=self.name,
            ) from None

    # -- observing ------------------------------------------------------------

    def samples(self, signal: str, since: float) -> list[Sample]:
        """Observations of ``signal`` with ``t >= since``, after the last one before."""
        log, sig = self._resolve(signal)
        with self._lock:
            self._update(log)
            ts, values = log.ts, log.values
            i = bisect_left(ts, since)
            if not log.multiplexed:
                start = max(0, i - 1)
                return [Sample(t, d[sig]) for t, d in zip(ts[start:], values[start:], strict=True)]
            out: list[Sample] = []
            j = i - 1
            while j >= 0 and sig not in values[j]:
                j -= 1
            if j >= 0:
                out.append(Sample(ts[j], values[j][sig]))
            out.extend(
                Sample(t, d[sig]) for t, d in zip(ts[i:], values[i:], strict=True) if sig in d
            )
            return out

    def frame_of(self, signal: str) -> str | None:
        """The message every observation of ``signal`` comes with (so signals of one
        frame can be judged together); None for a multiplexed message, or a signal that
        is not decoded from frames (a subclass's own, such as the car's UDS DTCs)."""
        found = self._by_signal.get(signal)
        if found is None or found[0].multiplexed:
            return None
        return str(found[0].message.name)

    def frames(self, message: str, since: float) -> list[tuple[float, dict[str, Any]]]:
        """Decoded frames of ``message`` with ``t >= since`` (all signals at once)."""
        log = self._logs[self.message(message).frame_id]
        with self._lock:
            self._update(log)
            i = bisect_left(log.ts, since)
            return list(zip(log.ts[i:], log.values[i:], strict=True))

    def latest(self, signal: str) -> Sample | None:
        """The newest observation of ``signal``, or ``None`` if none yet."""
        found = self.samples(signal, float("inf"))
        return found[-1] if found else None

    def read(self, signal: str) -> Sample:
        """The newest value; waits one bounded while for a first frame."""
        log, _ = self._resolve(signal)
        cycle_ms = log.message.cycle_time
        timeout = min(max(3 * cycle_ms / 1000.0, 0.2), 5.0) if cycle_ms else 0.0
        capture = self.transport.capture
        deadline = time.monotonic() + timeout
        while True:
            seq = capture.seq
            sample = self.latest(signal)
            if sample is not None:
                return sample
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceTimeout(
                    f"no {log.message.name} frame seen within {timeout:g} s, "
                    f"so {signal} is unknown",
                    device=self.name,
                    signal=signal,
                )
            self.check_link()
            self.transport.pump(seq, min(remaining, WAIT_TICK_S))

    @property
    def e2e_errors(self) -> int:
        """Received frames dropped for a bad checksum or a stale/repeated counter."""
        with self._lock:
            for log in self._logs.values():
                self._update(log)
        return self._receiver.error_count if self._receiver else 0

    @property
    def e2e_error_details(self) -> dict[str, int]:
        """``"Message: reason"`` → count, for the frames counted in ``e2e_errors``."""
        _ = self.e2e_errors
        return dict(self._receiver.errors) if self._receiver else {}

    # -- stimulating ----------------------------------------------------------

    def stimulate(self, stimulus: str, values: Mapping[str, Any]) -> float:
        """Send the message ``stimulus``; unspecified fields get their defaults."""
        info = self.definition.stimuli.get(stimulus)
        if info is None:
            raise ConfigError(
                f"{self.name}: no stimulus {stimulus!r}; "
                + did_you_mean(stimulus, self.definition.stimuli),
                device=self.name,
            )
        if info.kind == "input":
            raise ConfigError(
                f"{self.name}: {stimulus!r} is a bench input, applied by the bench, not the device",
                device=self.name,
            )
        unknown = [k for k in values if k not in info.fields]
        if unknown:
            raise ConfigError(
                f"{self.name}: {stimulus} has no field {unknown[0]!r}; "
                + did_you_mean(unknown[0], info.fields),
                device=self.name,
            )
        if FAULT_FIELD in values and (self.e2e is None or stimulus not in self.e2e):
            pass  # a DBC signal of that name: an ordinary field
        elif FAULT_FIELD in values:
            signals = {k: v for k, v in values.items() if k != FAULT_FIELD}
            fault = self._fault_code(stimulus, values[FAULT_FIELD])
            assert self._sender is not None
            return self.send_message(
                stimulus,
                signals,
                counter=self._sender.fault_counter(stimulus, fault),
                corrupt=fault == BAD_CHECKSUM,
            )
        return self.send_message(stimulus, values)

    def _fault_code(self, stimulus: str, value: Any) -> int:
        if isinstance(value, str) and value in FAULTS:
            return FAULTS[value]
        if value in FAULTS.values():
            return int(value)
        raise ConfigError(
            f"{self.name}: {stimulus}.{FAULT_FIELD} has no value {value!r}; "
            + did_you_mean(str(value), FAULTS),
            device=self.name,
        )

    def send_message(
        self,
        name: str,
        values: Mapping[str, Any],
        *,
        counter: int | None = None,
        checksum: int | None = None,
        corrupt: bool = False,
    ) -> float:
        """Encode and send any message of the database; returns its capture time.

        E2E counter and checksum are filled in unless forced, or ``corrupt``
        (the right checksum inverted): fault injection.
        """
        outgoing = self._outgoing.get(name) or self._outgoing_for(name)
        message, encode, frame_id, extended, fd = outgoing
        full = self._defaults(message)
        full.update(values)
        try:
            if self._sender is not None:
                data = self._sender.protect(
                    message, full, counter=counter, checksum=checksum, corrupt=corrupt
                )
            else:
                data = encode(full)
        except (cantools.database.EncodeError, KeyError, ValueError, TypeError) as err:
            raise ConfigError(
                f"{self.name}: cannot encode {name} from {dict(values)!r}: {err}",
                device=self.name,
            ) from err
        self._last_sent[name] = full
        frame = can.Message(arbitration_id=frame_id, is_extended_id=extended, is_fd=fd, data=data)
        return float(self.transport.send(frame).timestamp)

    def _outgoing_for(self, name: str) -> tuple[Message, Callable[[Any], bytes], int, bool, bool]:
        """The message, its encoder and frame header, worked out on its first send."""
        message = self.message(name)
        outgoing = (
            message,
            codec_for(message).encode,
            message.frame_id,
            message.is_extended_frame,
            message.is_fd,
        )
        self._outgoing[name] = outgoing
        return outgoing

    def _defaults(self, message: Message) -> dict[str, Any]:
        if message.name in self._sticky and message.name in self._last_sent:
            return dict(self._last_sent[message.name])
        initial = self._initial.get(message.name)
        if initial is None:  # the database never changes: worked out once per message
            hidden = self.e2e.protection_signals(message.name) if self.e2e else frozenset()
            initial = {s.name: initial_value(s) for s in message.signals if s.name not in hidden}
            self._initial[message.name] = initial
        return dict(initial)

    # -- device-level ---------------------------------------------------------

    def identity(self) -> dict[str, str]:
        """Generic nodes have no identity frame: the type and the bus it is on."""
        return {
            "model": self.definition.type_name,
            "serial": "unknown",
            "firmware": "unknown",
            "bus": f"{self.transport.interface}:{self.transport.channel}",
        }

    def write_evidence(self, directory: Path) -> list[Path]:
        return [self.transport.write_log(Path(directory) / f"{self.name}.asc")]

    def check_link(self) -> None:
        """Raise ``DeviceLost`` when the bus failed, the device's pulse stopped or error
        frames flood the bus (see ``hil.cannode.link_health``)."""
        self._health.check()

    def link_doubt_until(self) -> float | None:
        """When the silence bound decides about a pulse that is overdue (see
        ``LinkHealth.doubt_until``); None while the device is heard on time."""
        return self._health.doubt_until()

    def wait_for(
        self,
        signal: str,
        predicate: Callable[[Any], bool] | Any,
        timeout: float,
        *,
        since: float | None = None,
    ) -> Sample:
        """The first observation of ``signal`` that satisfies ``predicate``.

        ``predicate`` is a callable on the reported value, or a value / choice
        name to compare with (``"E"``). Observations from ``since`` on count
        (default: now, including the current value). Raises ``DeviceTimeout``
        naming the last value seen.
        """
        info = self.definition.signal(signal, self.name)
        cursor = time.time() if since is None else since
        deadline = time.monotonic() + timeout
        found = self._by_signal.get(signal)
        if found is None or found[0].multiplexed:
            capture = self.transport.capture
            return wait_through_samples(
                self.name,
                self.samples,
                lambda: capture.seq,
                self.transport.pump,
                self.check_link,
                signal,
                predicate,
                info,
                cursor,
                deadline,
                timeout,
            )
        check = value_check(info, predicate)
        # a signal of a plain frame: its decoded log is read in place, under the lock
        # taken once per look; a Sample only for what is returned (this loop runs once
        # per answer of a round trip, and once per frame of a stream)
        log, sig = found
        capture, transport, lock = self.transport.capture, self.transport, self._lock
        link_checked = -math.inf
        after: float | None = None  # time of the last observation looked at
        last: Any = None
        while True:
            seq = capture.seq
            with lock:
                if log.pending:
                    self._update(log)
                ts = log.ts
                # from the cursor on (each pass reads only what is new, up to the first
                # match); the first pass also has the value before the cursor
                start = bisect_left(ts, cursor) - 1
                values = log.values
                for j in range(start if start > 0 else 0, len(ts)):
                    t = ts[j]
                    if after is not None and t <= after:
                        continue
                    after = t
                    last = values[j][sig]
                    if check(last):
                        return _new_sample(Sample, (t, last))
            if after is not None and after >= cursor:
                cursor = math.nextafter(after, math.inf)
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                raise timed_out(self.name, signal, predicate, info, timeout, after, last)
            # the link is judged on a clock (a silence bound is seconds), not per frame:
            # a busy stream wakes this loop for every batch
            if now - link_checked >= WAIT_TICK_S:
                self.check_link()
                link_checked = now
            transport.pump(seq, remaining if remaining < WAIT_TICK_S else WAIT_TICK_S)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ValueError):  # already removed
            self.transport.capture.remove_listener(self._on_record)
