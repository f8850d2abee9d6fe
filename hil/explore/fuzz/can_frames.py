"""CAN fuzz input derived from a DBC: frames per category, the safety envelope.

Raw signal values come from each signal's bits and its DBC range: in range,
at the range's limits, and outside it where the bits allow (out of range).
E2E-protected frames say how their counter is to be completed when sent
(next, repeated, stale, or the next one with a bad checksum), since only the
sender knows the receiver's reference counter.

Only frames a receiver must reject outright (wrong length, failed E2E, an
unknown or foreign id) are held to the safety envelope: a frame with one
out-of-range signal may still act on its valid ones (``HvRequest`` in a
``HIL_VehicleSim`` whose ``TargetSpeed`` is out of range), so for it only
liveness is judged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cantools.database
from hypothesis import strategies as st

from hil.cannode.e2e import E2EProfile
from hil.explore.fuzz.engine import Example

Message = cantools.database.can.Message
Signal = cantools.database.can.Signal

BAD_LENGTH, NOT_SUPPORTED = 0x13, 0x11
# request lengths ISO 14229 rules out for the services hil's ECUs serve (single frames)
WRONG_LENGTHS = {
    0x10: (1, 3, 4, 5, 6, 7),
    0x11: (1, 3, 4, 5, 6, 7),
    0x14: (1, 2, 3, 5, 6, 7),
    0x19: (1,),
    0x22: (1, 2, 4, 6),
    0x27: (1,),
    0x31: (1, 2, 3),
    0x3E: (1, 3, 4, 5, 6, 7),
}
# the order categories run in: what most often breaks a receiver first
ORDER = (
    "wrong_length",
    "stale_counter",
    "bad_checksum",
    "out_of_range",
    "unknown_id",
    "own_id",
    "uds_wrong_length",
    "uds_unknown_service",
    "boundary",
    "in_range",
)
# ISO 15765-4's diagnostic ids: junk there is an ISO-TP stream, fuzzed as UDS instead
DIAGNOSTIC_IDS = range(0x7DF, 0x7F0)
UNKNOWN_SERVICES = (0x12, 0x13, 0x15, 0x20, 0x21, 0x23, 0x24, 0x2A, 0x2C, 0x2E, 0x2F, 0x34, 0x3D)


@dataclass(frozen=True)
class Guard:
    """A safety signal that must not move from ``before`` to ``after`` on invalid input."""

    message: str
    signal: re.Pattern[str]
    before: frozenset[int]
    after: frozenset[int]
    what: str
    # a valid request that puts the signal in a ``before`` state, so that a violation
    # can show (a door must be locked for an invalid frame to be seen unlocking it)
    arm: tuple[str, Mapping[str, int]] | None = None


# the safety envelope, by signal name: any DBC with these signals is held to it
ENVELOPE = (
    Guard(
        "BODY_Status",
        re.compile(r"Lock(FL|FR|RL|RR)"),
        frozenset({1}),
        frozenset({0}),
        "unlocked",
        arm=("BODY_LockCmd", {"LockRequest": 1}),
    ),
    Guard(
        "BMS_Status",
        re.compile(r"ContactorState"),
        frozenset({0}),
        frozenset({1, 2}),
        "the main contactors started closing",
    ),
)


@dataclass(frozen=True)
class Frame:
    """A frame to send; ``counter`` says how an E2E-protected one is completed at send time."""

    frame_id: int
    data: bytes
    extended: bool = False
    message: str | None = None
    counter: str = "none"  # "next", "repeat", "stale<k>", "badsum<x>" or "none"
    uds: bytes | None = None  # a diagnostic request instead of a frame
    expect_nrc: int | None = None

    def text(self) -> str:
        if self.uds is not None:
            return f"UDS {self.uds.hex().upper()}"
        ident = f"{self.frame_id:08X}" if self.extended else f"{self.frame_id:03X}"
        return f"{ident}#{self.data.hex().upper()}"


def _bits(sig: Signal) -> tuple[int, int]:
    if sig.is_signed:
        return -(1 << (sig.length - 1)), (1 << (sig.length - 1)) - 1
    return 0, (1 << sig.length) - 1


def _raw_range(sig: Signal) -> tuple[int, int]:
    """The raw values the DBC range allows, within what the bits hold."""
    lo, hi = _bits(sig)
    ends = []
    for scaled in (sig.minimum, sig.maximum):
        ends.append(None if scaled is None else sig.conversion.scaled_to_raw(scaled))
    if ends[0] is not None and ends[1] is not None and ends[0] > ends[1]:
        ends.reverse()  # a negative scale
    rlo = lo if ends[0] is None else max(lo, math.ceil(ends[0] - 1e-9))
    rhi = hi if ends[1] is None else min(hi, math.floor(ends[1] + 1e-9))
    return (rlo, rhi) if rlo <= rhi else (lo, hi)


def _outside(sig: Signal) -> list[tuple[int, int]]:
    lo, hi = _bits(sig)
    rlo, rhi = _raw_range(sig)
    return [r for r in ((lo, rlo - 1), (rhi + 1, hi)) if r[0] <= r[1]]


def encode_raw(message: Message, raw: dict[str, int]) -> bytes:
    return bytes(message.encode(raw, scaling=False, padding=False, strict=False))


def _values(
    message: Message, pick: Callable[[Signal], st.SearchStrategy[int]]
) -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries({s.name: pick(s) for s in message.signals})


def can_examples(
    db: Any, receives: list[Message], own: list[Message], e2e: E2EProfile | None, uds: bool
) -> dict[str, st.SearchStrategy[Example]]:
    """Every kind of frame, valid and not, for the device ``db`` describes.

    Multiplexed messages and float signals get wrong lengths only (their raw
    values are not plain integers in one range: not generated here yet).
    """
    usable = [
        m for m in receives if not m.is_multiplexed() and not any(s.is_float for s in m.signals)
    ]
    protected = [m for m in usable if e2e is not None and m.name in e2e]
    known_ids = {m.frame_id for m in db.messages}
    parts: dict[str, st.SearchStrategy[Example]] = {}

    def ex(category: str, frame: Frame, invalid: bool = True) -> Example:
        return Example(
            category, frame.text(), must_error=frame.uds is not None, invalid=invalid, data=frame
        )

    def framed(
        category: str, picks: Callable[[Signal], st.SearchStrategy[int]], invalid: bool
    ) -> st.SearchStrategy[Example]:
        def build(m: Message) -> st.SearchStrategy[Example]:
            counter = "next" if e2e is not None and m.name in e2e else "none"
            return _values(m, picks).map(
                lambda raw: ex(
                    category,
                    Frame(m.frame_id, encode_raw(m, raw), m.is_extended_frame, m.name, counter),
                    invalid,
                )
            )

        return st.sampled_from(usable).flatmap(build)

    if usable:
        parts["in_range"] = framed("in_range", lambda s: st.integers(*_raw_range(s)), False)
        parts["boundary"] = framed(
            "boundary", lambda s: st.sampled_from(sorted(set(_raw_range(s)))), False
        )
        widened = [m for m in usable if any(_outside(s) for s in m.signals)]
        if widened:
            parts["out_of_range"] = st.sampled_from(widened).flatmap(_out_of_range(e2e, ex))
        parts["wrong_length"] = st.sampled_from(receives).flatmap(
            lambda m: (
                st.integers(0, 8)
                .filter(lambda n: n != m.length)
                .flatmap(lambda n: st.binary(min_size=n, max_size=n))
                .map(
                    lambda data: ex(
                        "wrong_length", Frame(m.frame_id, data, m.is_extended_frame, m.name)
                    )
                )
            )
        )
    if protected:
        counters = st.sampled_from(["repeat", *(f"stale{k}" for k in range(1, 9))])
        parts["stale_counter"] = _protected("stale_counter", protected, counters, ex)
        checksums = st.integers(1, 255).map(lambda x: f"badsum{x}")
        parts["bad_checksum"] = _protected("bad_checksum", protected, checksums, ex)
    if own:
        parts["own_id"] = st.tuples(st.sampled_from(own), st.binary(max_size=8)).map(
            lambda t: ex("own_id", Frame(t[0].frame_id, t[1], t[0].is_extended_frame))
        )
    parts["unknown_id"] = st.tuples(
        st.integers(0, 0x7FF).filter(lambda i: i not in known_ids and i not in DIAGNOSTIC_IDS),
        st.binary(max_size=8),
    ).map(lambda t: ex("unknown_id", Frame(t[0], t[1])))
    if uds:
        parts["uds_wrong_length"] = st.sampled_from(sorted(WRONG_LENGTHS)).flatmap(
            lambda sid: st.sampled_from(WRONG_LENGTHS[sid]).flatmap(
                lambda n: st.binary(min_size=n - 1, max_size=n - 1).map(
                    lambda rest: ex(
                        "uds_wrong_length",
                        Frame(0, b"", uds=bytes([sid]) + rest, expect_nrc=BAD_LENGTH),
                    )
                )
            )
        )
        parts["uds_unknown_service"] = st.tuples(
            st.sampled_from(UNKNOWN_SERVICES), st.binary(max_size=6)
        ).map(
            lambda t: ex(
                "uds_unknown_service",
                Frame(0, b"", uds=bytes([t[0]]) + t[1], expect_nrc=NOT_SUPPORTED),
            )
        )
    return {k: parts[k] for k in ORDER if k in parts}


def _out_of_range(
    e2e: E2EProfile | None, ex: Callable[..., Example]
) -> Callable[[Message], st.SearchStrategy[Example]]:
    def build(m: Message) -> st.SearchStrategy[Example]:
        wide = [s for s in m.signals if _outside(s)]
        counter = "next" if e2e is not None and m.name in e2e else "none"

        def one(choice: tuple[Signal, dict[str, int]]) -> st.SearchStrategy[Example]:
            sig, raw = choice
            bad = st.sampled_from(_outside(sig)).flatmap(lambda r: st.integers(*r))
            return bad.map(
                lambda v: ex(
                    "out_of_range",
                    Frame(
                        m.frame_id,
                        encode_raw(m, {**raw, sig.name: v}),
                        m.is_extended_frame,
                        m.name,
                        counter,
                    ),
                    invalid=False,
                )
            )

        return st.tuples(
            st.sampled_from(wide), _values(m, lambda s: st.integers(*_raw_range(s)))
        ).flatmap(one)

    return build


def _protected(
    category: str,
    messages: list[Message],
    modes: st.SearchStrategy[str],
    ex: Callable[[str, Frame], Example],
) -> st.SearchStrategy[Example]:
    """In-range frames of E2E-protected ``messages`` completed with a faulty counter/checksum."""

    def build(t: tuple[Message, str]) -> st.SearchStrategy[Example]:
        m, mode = t
        return _values(m, lambda s: st.integers(*_raw_range(s))).map(
            lambda raw: ex(
                category, Frame(m.frame_id, encode_raw(m, raw), m.is_extended_frame, m.name, mode)
            )
        )

    return st.tuples(st.sampled_from(messages), modes).flatmap(build)
