"""The decoded history of one CAN frame id, filled lazily from the capture.

The capture listener only appends raw records to ``pending`` (on whichever
thread receives from the bus); a reader asking for a signal decodes what is
pending, once each, into parallel lists of timestamps and signal dicts.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import can
import cantools.database

from hil.cannode.codec import codec_for
from hil.cannode.e2e import E2EReceiver, E2ESpec
from hil.transports.capture import RX, Record

Message = cantools.database.can.Message

DEDUPE_WINDOW_S = 0.5  # longer than any listener call racing the initial snapshot
SEED_TAIL = 256


class FrameLog:
    """Decoded history of one frame id: parallel lists of times and signal dicts."""

    __slots__ = (
        "decode",
        "message",
        "multiplexed",
        "pending",
        "seed_seen",
        "seed_tail",
        "seed_until",
        "ts",
        "values",
    )

    def __init__(self, message: Message, history: int) -> None:
        self.message = message
        self.decode = codec_for(message).decode
        self.multiplexed = any(s.multiplexer_ids for s in message.signals)
        # bounded: a message nobody reads is never decoded, and an unbounded list
        # would keep every one of its frames alive after the capture let them go
        # (append and popleft are atomic, so the listener needs no lock)
        self.pending: deque[Record[can.Message]] = deque(maxlen=max(1, history))
        self.ts: list[float] = []
        self.values: list[dict[str, Any]] = []
        self.seed_tail: dict[int, Record[can.Message]] = {}
        self.seed_seen: set[int] = set()
        self.seed_until = 0.0

    def seed(self, snapshot: list[Record[can.Message]], until: float) -> None:
        """Take frames captured before the listener was registered.

        The listener is registered first, so a frame appended while the
        snapshot is taken may arrive both ways; the snapshot's tail is kept
        until ``until`` (monotonic) to drop such duplicates.
        """
        if not snapshot:
            return
        self.seed_tail = {id(r): r for r in snapshot[-SEED_TAIL:]}
        self.seed_until = until
        self.pending.extendleft(reversed(snapshot[-(self.pending.maxlen or 1) :]))

    def _drop_seed_duplicates(self, batch: list[Record[can.Message]]) -> list[Record[can.Message]]:
        """Keep the first delivery of each seeded frame (snapshot or listener)."""
        tail, seen = self.seed_tail, self.seed_seen
        kept = []
        for rec in batch:
            key = id(rec)  # unique: the tail dict keeps every seeded record alive
            if key in tail:
                if key in seen:
                    continue
                seen.add(key)
            kept.append(rec)
        if time.monotonic() > self.seed_until:
            self.seed_tail, self.seed_seen = {}, set()
        return kept

    def update(self, receiver: E2EReceiver | None, spec: E2ESpec | None, history: int) -> int:
        """Decode what arrived since the last call, keeping the newest ``history``;
        returns how many frames could not be decoded. Frames that fail E2E
        verification are dropped (and counted by ``receiver``), as a real
        receiver drops them. The caller serialises calls."""
        pending = self.pending
        n = len(pending)
        if not n:
            return 0
        popleft = pending.popleft
        # the listener may append meanwhile: take n; one alone is an awaited answer
        batch = [popleft()] if n == 1 else [popleft() for _ in range(n)]
        if self.seed_tail:
            batch = self._drop_seed_duplicates(batch)
        decode = self.decode  # takes the bytearray as is: no copy
        ts_append, values_append = self.ts.append, self.values.append
        errors = 0
        for rec in batch:
            frame = rec.data
            try:
                decoded = decode(frame.data)
            except Exception:  # truncated frame, unknown multiplexer value
                errors += 1
                continue
            if (
                spec is not None
                and receiver is not None
                and rec.direction == RX
                and receiver.verify(spec.frame_id, frame.data, int(decoded[spec.counter]))
            ):
                continue
            ts_append(rec.t)
            values_append(decoded)
        excess = len(self.ts) - history
        if excess > 0:
            del self.ts[:excess]
            del self.values[:excess]
        return errors
