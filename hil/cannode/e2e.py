"""End-to-end protection of safety-relevant frames: rolling counter + CRC-8.

Each protected message carries a 4-bit rolling counter and an 8-bit
checksum (CRC-8 SAE J1850: polynomial 0x1D, init 0xFF, final xor 0xFF)
computed over the low byte of the frame id followed by every payload byte
except the checksum byte. A sender increments the counter on every frame; a
receiver rejects a frame whose checksum is wrong, whose counter repeats the
last accepted one, or whose counter lies behind it (a stale or replayed
frame). The same rules serve the bench's driver and the emulated ECUs, so a
frame one side accepts the other side accepts too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cantools.database

from hil.cannode.codec import codec_for
from hil.errors import DefinitionError

Database = cantools.database.can.Database
Message = cantools.database.can.Message

COUNTER_MODULO = 16

CHECKSUM = "checksum"
REPEATED = "repeated counter"
STALE = "stale counter"

# Fault injection a bench may ask of a protected stimulus (the ``E2EFault`` field):
# the frame a broken or replaying sender would put on the bus.
FAULT_FIELD = "E2EFault"
NO_FAULT, REPEATED_COUNTER, STALE_COUNTER, BAD_CHECKSUM = 0, 1, 2, 3
FAULTS = {
    "NONE": NO_FAULT,
    "REPEATED_COUNTER": REPEATED_COUNTER,
    "STALE_COUNTER": STALE_COUNTER,
    "BAD_CHECKSUM": BAD_CHECKSUM,
}
STALE_STEP = 4  # a stale counter is this far behind the last one sent (12 ahead mod 16)


def encode(message: Message, values: Mapping[str, Any]) -> bytes:
    """Encode scaled ``values``, checked as cantools' strict encode checks them; for
    a multiplexed message only the signals its multiplexer value selects are kept
    (cantools rejects the others). See ``hil.cannode.codec``."""
    return codec_for(message).encode(values)


def _crc8_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1D) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_TABLE = _crc8_table()


def crc8_j1850(data: bytes | bytearray, crc: int = 0xFF) -> int:
    """CRC-8 SAE J1850 of ``data`` (check value of ``b"123456789"`` is 0x4B)."""
    table = _TABLE
    for byte in data:
        crc = table[crc ^ byte]
    return crc ^ 0xFF


@dataclass(frozen=True)
class E2ESpec:
    """How one message is protected; validated against the DBC when built."""

    message: str
    frame_id: int
    counter: str
    checksum: str
    checksum_byte: int
    # counter steps (mod 16) accepted as "newer"; beyond it the frame is
    # behind the last accepted one. Half the counter range: a replayed old
    # frame always lands in the rejected half.
    max_delta: int = 7

    def checksum_of(self, data: bytes | bytearray) -> int:
        """The checksum ``data`` should carry (its checksum byte is skipped)."""
        crc = _TABLE[0xFF ^ (self.frame_id & 0xFF)]  # the id byte goes first
        return _crc_continue(crc, data, self.checksum_byte)


def _crc_continue(crc: int, data: bytes | bytearray, skip: int) -> int:
    table = _TABLE
    for index, byte in enumerate(data):
        if index != skip:
            crc = table[crc ^ byte]
    return crc ^ 0xFF


class E2EProfile:
    """Which messages of a database are protected, by which signals.

    ``spec`` maps a message name to ``(counter signal, checksum signal)``.
    The shapes are checked here, when the profile is defined: a 4-bit
    unsigned unscaled counter and a byte-aligned 8-bit checksum.
    """

    def __init__(
        self, db: Database, spec: Mapping[str, tuple[str, str]], *, max_delta: int = 7
    ) -> None:
        if not 1 <= max_delta < COUNTER_MODULO:
            raise DefinitionError(f"E2E max_delta must be 1..15, got {max_delta}")
        self._by_name: dict[str, E2ESpec] = {}
        for message_name, (counter, checksum) in spec.items():
            try:
                message = db.get_message_by_name(message_name)
            except KeyError as err:
                raise DefinitionError(
                    f"E2E profile names message {message_name!r}, not in the database"
                ) from err
            self._by_name[message_name] = _build(message, counter, checksum, max_delta)
        self._by_id = {s.frame_id: s for s in self._by_name.values()}

    def get(self, message: str) -> E2ESpec | None:
        return self._by_name.get(message)

    def by_frame_id(self, frame_id: int) -> E2ESpec | None:
        return self._by_id.get(frame_id)

    def __contains__(self, message: object) -> bool:
        return message in self._by_name

    @property
    def messages(self) -> frozenset[str]:
        return frozenset(self._by_name)

    def protection_signals(self, message: str) -> frozenset[str]:
        """The counter and checksum signal names of ``message`` (none if unprotected)."""
        s = self._by_name.get(message)
        return frozenset((s.counter, s.checksum)) if s else frozenset()

    def sender(self) -> E2ESender:
        return E2ESender(self)

    def receiver(self) -> E2EReceiver:
        return E2EReceiver(self)


def _build(message: Message, counter: str, checksum: str, max_delta: int) -> E2ESpec:
    names = {s.name: s for s in message.signals}
    for role, name in (("counter", counter), ("checksum", checksum)):
        if name not in names:
            raise DefinitionError(f"E2E {role} signal {name!r} is not in message {message.name!r}")
    c, k = names[counter], names[checksum]
    if c.length != 4 or c.is_signed or c.scale != 1 or c.offset != 0:
        raise DefinitionError(
            f"E2E counter {message.name}.{counter} must be a 4-bit unsigned unscaled signal"
        )
    aligned_start = 0 if k.byte_order == "little_endian" else 7
    if k.length != 8 or k.start % 8 != aligned_start or k.scale != 1 or k.offset != 0:
        raise DefinitionError(
            f"E2E checksum {message.name}.{checksum} must be an unscaled byte-aligned 8-bit signal"
        )
    return E2ESpec(
        message=message.name,
        frame_id=message.frame_id,
        counter=counter,
        checksum=checksum,
        checksum_byte=k.start // 8,
        max_delta=max_delta,
    )


class E2ESender:
    """Fills counter and checksum for the messages one node sends."""

    def __init__(self, profile: E2EProfile) -> None:
        self.profile = profile
        self._counters: dict[str, int] = {}

    def last_counter(self, message: str) -> int | None:
        """The counter of the last frame of ``message`` sent through ``protect``."""
        return self._counters.get(message)

    def fault_counter(self, message: str, fault: int) -> int | None:
        """The counter an ``E2EFault`` sends (``None``: the next one, as usual).

        Before any frame of ``message`` was sent there is nothing to repeat:
        the first counter a sender uses (0) is taken as the reference.
        """
        last = self._counters.get(message, 0)
        if fault == REPEATED_COUNTER:
            return last
        if fault == STALE_COUNTER:
            return (last - STALE_STEP) % COUNTER_MODULO
        return None

    def next_counter(self, message: str) -> int:
        value = self._counters.get(message, -1)
        value = (value + 1) % COUNTER_MODULO
        self._counters[message] = value
        return value

    def protect(
        self,
        message: Message,
        values: Mapping[str, Any],
        *,
        counter: int | None = None,
        checksum: int | None = None,
        corrupt: bool = False,
    ) -> bytes:
        """Encode ``values`` with the next counter and the right checksum.

        ``counter``/``checksum`` force a value instead, ``corrupt`` sends the
        right checksum inverted: fault injection (a replayed counter, a
        corrupted frame) goes through the same path.
        """
        spec = self.profile.get(message.name)
        if spec is None:
            return encode(message, values)
        data = dict(values)
        data[spec.counter] = self.next_counter(message.name) if counter is None else counter
        data[spec.checksum] = 0
        raw = bytearray(encode(message, data))
        raw[spec.checksum_byte] = spec.checksum_of(raw) if checksum is None else checksum & 0xFF
        if corrupt:
            raw[spec.checksum_byte] ^= 0xFF
        return bytes(raw)


class E2EReceiver:
    """One receiver's view: the last accepted counter per protected frame."""

    def __init__(self, profile: E2EProfile) -> None:
        self.profile = profile
        self._last: dict[int, int] = {}
        self.errors: dict[str, int] = {}

    def verify(self, frame_id: int, data: bytes | bytearray, counter: int) -> str | None:
        """``None`` if the frame is acceptable, else why it is rejected.

        ``counter`` is the decoded counter value. A rejected frame does not
        move the reference counter, so a replay cannot resynchronise it.
        """
        spec = self.profile.by_frame_id(frame_id)
        if spec is None:
            return None
        reason: str | None = None
        i = spec.checksum_byte
        if len(data) <= i or data[i] != spec.checksum_of(data):
            reason = CHECKSUM
        else:
            last = self._last.get(frame_id)
            if last is not None:
                delta = (counter - last) % COUNTER_MODULO
                if delta == 0:
                    reason = REPEATED
                elif delta > spec.max_delta:
                    reason = STALE
        if reason is None:
            self._last[frame_id] = counter
            return None
        key = f"{spec.message}: {reason}"
        self.errors[key] = self.errors.get(key, 0) + 1
        return reason

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())
