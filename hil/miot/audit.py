"""Signals the bench derives from a MIoT link's transcript, for acceptance plans.

The protocol's acceptance rules (domain: miot-serial.md) are about timing
and form on the wire — the polling period, how fast downlinks are answered,
how often reports come, how long lines are — not about any one property.
``LinkAudit`` listens to the serial capture (the same timestamped records
the evidence is written from) and turns each relevant line into an
observation of a ``miot.*`` signal, so a plan judges the rules with the
ordinary ``expect``/invariant machinery, on capture timestamps:

``miot.model-length``      bytes of the model word, at each ``model`` line
``miot.mcu-version-valid`` the ``mcu_version`` word is exactly four digits
``miot.poll-period``       median ``get_down`` interval over the last 10 polls (one
                           late wake-up on a busy bench does not move it)
``miot.answer-time``       ``down`` line → its ``result``/``error``/``mcu_version``;
                           a downlink left unanswered past the RPC timeout is
                           published at the next poll with its age so far
``miot.report-interval``   at each ``properties_changed``: the shortest time since
                           one of its properties was last reported
``miot.event-rate``        ``event_occured`` lines in the trailing second
``miot.line-length``       bytes of every line the MCU sends

The three ``*-code`` signals are published by the probes (see
hil/miot/acceptance.py), which send the downlinks a healthy module never
would. Every MIoT device declares these signals (``MiotSpec.definition``).
"""

from __future__ import annotations

import re
import statistics
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from hil.bench.definition import SignalInfo, StimulusInfo
from hil.bench.driver import Sample
from hil.errors import ProtocolError
from hil.miot.codec import LineError, decode_line, is_int
from hil.transports.capture import RX, TX, Capture, Record

LINK_SERVICE = "miot"  # reserved: no spec may name a service so
MAX_SAMPLES = 10_000  # per signal; older ones are dropped first
POLL_WINDOW = 10  # intervals the poll period is the median of
EVENT_WINDOW_S = 1.0  # the rule: at most 3 event_occured per second

MODEL_LENGTH = "miot.model-length"
VERSION_VALID = "miot.mcu-version-valid"
POLL_PERIOD = "miot.poll-period"
ANSWER_TIME = "miot.answer-time"
REPORT_INTERVAL = "miot.report-interval"
EVENT_RATE = "miot.event-rate"
LINE_LENGTH = "miot.line-length"
UNKNOWN_METHOD_CODE = "miot.unknown-method-code"
READ_ONLY_CODE = "miot.read-only-write-code"
OUT_OF_RANGE_CODE = "miot.out-of-range-code"


def _info(name: str, kind: Any, unit: str | None, description: str) -> SignalInfo:
    return SignalInfo(name, kind, unit=unit, description=description)


AUDIT_SIGNALS: Mapping[str, SignalInfo] = {
    s.name: s
    for s in (
        _info(MODEL_LENGTH, "number", None, "bytes of the model word the MCU announced"),
        _info(VERSION_VALID, "bool", None, "the mcu_version word the MCU sent is four digits"),
        _info(POLL_PERIOD, "number", "s", f"median get_down interval over {POLL_WINDOW} polls"),
        _info(ANSWER_TIME, "number", "s", "time from a downlink to the MCU's answer"),
        _info(REPORT_INTERVAL, "number", "s", "shortest time since a reported property's last"),
        _info(EVENT_RATE, "number", None, "event_occured lines in the trailing second"),
        _info(LINE_LENGTH, "number", None, "bytes of a line the MCU sent"),
        _info(UNKNOWN_METHOD_CODE, "number", None, "code of the error to an unknown method"),
        _info(READ_ONLY_CODE, "number", None, "code of the result to a read-only write"),
        _info(OUT_OF_RANGE_CODE, "number", None, "code of the result to an out-of-range write"),
    )
}

PROBE_UNKNOWN_METHOD = "miot.send-unknown-method"
PROBE_READ_ONLY = "miot.write-read-only"
PROBE_OUT_OF_RANGE = "miot.write-out-of-range"
PROBE_MCU_VERSION = "miot.request-mcu-version"
PROBES: Mapping[str, StimulusInfo] = {
    s.name: s
    for s in (
        StimulusInfo(PROBE_UNKNOWN_METHOD, "action", {}, "send a downlink method nobody knows"),
        StimulusInfo(PROBE_READ_ONLY, "action", {}, "write the spec's first read-only property"),
        StimulusInfo(PROBE_OUT_OF_RANGE, "action", {}, "write a value outside a property's range"),
        StimulusInfo(PROBE_MCU_VERSION, "action", {}, "MIIO_mcu_version_req: ask for mcu_version"),
    )
}

_FOUR_DIGITS = re.compile(r"[0-9]{4}")


class LinkAudit:
    """Derives the ``miot.*`` observations from one serial capture (see the module doc).

    Attach it to the driver's transport capture; it replays what was captured
    before (the boot lines) and then follows every new record, on the thread
    that records it.
    """

    def __init__(self, capture: Capture[str], *, rpc_timeout: float) -> None:
        self.capture = capture
        self.rpc_timeout = rpc_timeout
        self._lock = threading.Lock()
        self._obs: dict[str, deque[Sample]] = {n: deque(maxlen=MAX_SAMPLES) for n in AUDIT_SIGNALS}
        self._polls: deque[float] = deque(maxlen=POLL_WINDOW + 1)
        self._waiting: deque[tuple[float, str]] = deque()  # (t sent, what answers it)
        self._reported: dict[tuple[int, int], float] = {}
        self._events: deque[float] = deque()
        with self._lock:
            # new records wait on the lock until the replay is done; one recorded
            # between the listener and the snapshot is in both, and skipped once
            capture.add_listener(self._on_record)
            snapshot = capture.records()
            self._replayed = {id(r) for r in snapshot}
            self._replayed_until = snapshot[-1].t if snapshot else 0.0
            for rec in snapshot:
                self._follow(rec)

    def close(self) -> None:
        self.capture.remove_listener(self._on_record)

    # ----- observations

    def publish(self, signal: str, sample: Sample) -> None:
        with self._lock:
            self._obs[signal].append(sample)

    def samples(self, signal: str, since: float) -> list[Sample]:
        """Observations at or after ``since``, preceded by the last one before it."""
        with self._lock:
            obs = list(self._obs[signal])
        i = next((n for n, s in enumerate(obs) if s.t >= since), len(obs))
        return obs[max(0, i - 1) :]

    def latest(self, signal: str, device: str) -> Sample:
        with self._lock:
            obs = self._obs[signal]
            if obs:
                return obs[-1]
        raise ProtocolError(f"{signal} was never observed on the link", device=device)

    # ----- the transcript

    def _on_record(self, rec: Record[Any]) -> None:
        with self._lock:
            if self._replayed:
                if id(rec) in self._replayed:
                    return
                if rec.t > self._replayed_until + 1.0:
                    self._replayed.clear()  # the replay's stragglers are long through
            self._follow(rec)

    def _add(self, signal: str, t: float, value: Any) -> None:
        self._obs[signal].append(Sample(t, value))

    def _follow(self, rec: Record[Any]) -> None:
        text = str(rec.data)
        command, _, rest = text.partition(" ")
        t = rec.t
        if rec.direction == TX:
            if command == "down":
                method = rest.partition(" ")[0]
                if method == "MIIO_mcu_version_req":
                    self._waiting.append((t, "mcu_version"))
                elif method not in ("none", "MIIO_net_change"):
                    self._waiting.append((t, "result"))
            return
        if rec.direction != RX:
            return
        self._add(LINE_LENGTH, t, len(text.encode("utf-8")))
        if command == "model":
            self._add(MODEL_LENGTH, t, len(rest.encode("utf-8")))
            self._polls.clear()  # a reboot: polling starts again
        elif command == "mcu_version":
            self._add(VERSION_VALID, t, _FOUR_DIGITS.fullmatch(rest) is not None)
            self._answered(t, "mcu_version")
        elif command == "get_down":
            self._poll(t)
        elif command in ("result", "error"):
            self._answered(t, "result")
        elif command == "properties_changed":
            self._report(t, text)
        elif command == "event_occured":
            self._events.append(t)
            while self._events and t - self._events[0] >= EVENT_WINDOW_S:
                self._events.popleft()
            self._add(EVENT_RATE, t, len(self._events))

    def _poll(self, t: float) -> None:
        self._polls.append(t)
        polls = list(self._polls)
        if len(polls) >= 4:
            gaps = [b - a for a, b in zip(polls, polls[1:], strict=False)]
            self._add(POLL_PERIOD, t, statistics.median(gaps))
        # what is still unanswered after the RPC timeout counts with its age so far
        while self._waiting and t - self._waiting[0][0] > self.rpc_timeout:
            sent, _ = self._waiting.popleft()
            self._add(ANSWER_TIME, t, t - sent)

    def _answered(self, t: float, kind: str) -> None:
        for item in self._waiting:
            if item[1] == kind:
                self._waiting.remove(item)
                self._add(ANSWER_TIME, t, t - item[0])
                return

    def _report(self, t: float, text: str) -> None:
        try:
            args = decode_line(text).args
        except LineError:
            return  # the module answers it with an error; nothing to time
        shortest: float | None = None
        for siid, piid in zip(args[::3], args[1::3], strict=False):
            if not (is_int(siid) and is_int(piid)):
                continue
            key = (int(siid), int(piid))
            last = self._reported.get(key)
            if last is not None:
                gap = t - last
                shortest = gap if shortest is None else min(shortest, gap)
            self._reported[key] = t
        if shortest is not None:
            self._add(REPORT_INTERVAL, t, shortest)
