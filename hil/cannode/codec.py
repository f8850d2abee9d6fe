"""One message's encoder and decoder, worked out once from its DBC layout.

A step that sends a command and expects the answer encodes and decodes on the
waiting thread, so their cost is part of every round trip. cantools' strict
``Message.encode`` checks the signal names and ranges on every call before it
encodes; here the names and bounds are taken from the database once, a value
set that passes them is encoded by cantools' own codec without re-checking, and
anything else (a value out of range, a choice name, a missing or unknown signal,
a multiplexed message) goes through the strict encode, so every error is still
cantools' own, with its wording. The fast path accepts only what the strict
encode accepts, and encodes it with the same codec, so the bytes are the same.
When every signal is an Intel-order integer, the raw values (cantools' own
conversion) are or'ed into one int at their start bits, the decoder's shifts and
masks inverted (cantools' packer builds a dict and packs both byte orders per
call); a raw value that does not fit its bits goes to cantools' packer, which
rejects it.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from typing import Any

import cantools.database
from cantools.database.conversion import (
    IdentityConversion,
    LinearConversion,
    LinearIntegerConversion,
    NamedSignalConversion,
)
from cantools.database.utils import decode_data, encode_data

Message = cantools.database.can.Message

# exact types only: a bool, a NamedSignalValue or a numpy scalar takes the strict path
_NUMBERS = (int, float)


class MessageCodec:
    """Encode and decode one (non-container) message of a database."""

    __slots__ = (
        "_bounds",
        "_decode_args",
        "_encode_args",
        "_fields",
        "_length",
        "_names",
        "_slots",
        "message",
    )

    def __init__(self, message: Message) -> None:
        self.message = message
        codecs = message._codecs  # the layout cantools compiled when it loaded the DBC
        simple = (
            codecs is not None
            and not codecs["multiplexers"]
            and not message.is_container
            and bool(codecs["signals"])
        )
        self._length = message.length
        self._names: frozenset[str] | None = None
        self._bounds: tuple[tuple[str, float, float], ...] = ()
        self._encode_args: tuple[Any, Any] | None = None
        self._decode_args: tuple[Any, Any] | None = None
        self._fields: tuple[_Field, ...] | None = None
        self._slots: tuple[_Slot, ...] | None = None
        if not simple or codecs is None:
            return
        signals = codecs["signals"]
        self._names = frozenset(s.name for s in signals)
        # the same tolerance as cantools' strict check (a scaled value a rounding
        # step outside its range is still accepted)
        self._bounds = tuple(
            (
                s.name,
                -math.inf if s.minimum is None else s.minimum - abs(s.conversion.scale) * 1e-6,
                math.inf if s.maximum is None else s.maximum + abs(s.conversion.scale) * 1e-6,
            )
            for s in signals
        )
        self._encode_args = (signals, codecs["formats"])
        self._decode_args = (signals, codecs["formats"])
        self._fields = _little_endian_fields(signals)
        if self._fields is not None:
            self._slots = tuple(
                (name, low, high, shift, mask, -sign, mask if not sign else sign - 1, s.conversion)
                for (name, shift, mask, sign, _, _), (_, low, high), s in zip(
                    self._fields, self._bounds, signals, strict=True
                )
            )

    def encode(self, values: Mapping[str, Any]) -> bytes:
        """The frame's payload for the scaled ``values`` of exactly its signals.

        Raises cantools' ``EncodeError`` for what its strict encode rejects.
        """
        names, args = self._names, self._encode_args
        if args is None or type(values) is not dict or values.keys() != names:
            return self._strict(values)
        slots = self._slots
        if slots is not None:
            # every signal an Intel-order integer: each value checked against cantools'
            # bounds, its raw value (cantools' own conversion) or'ed into one int at its
            # start bit, as the decoder reads it; one loop over the signals
            whole = 0
            for name, low, high, shift, mask, raw_low, raw_high, conversion in slots:
                value = values[name]
                if type(value) not in _NUMBERS or not low <= value <= high:
                    return self._strict(values)
                raw = conversion.numeric_scaled_to_raw(value)
                if not raw_low <= raw <= raw_high:  # wider than its bits: cantools' packer
                    return self._pack(values, args)
                whole |= (raw & mask) << shift
            return whole.to_bytes(self._length, "little")
        for name, low, high in self._bounds:
            value = values[name]
            if type(value) not in _NUMBERS or not low <= value <= high:
                return self._strict(values)
        return self._pack(values, args)

    def _pack(self, values: Mapping[str, Any], args: tuple[Any, Any]) -> bytes:
        """cantools' codec, without its per-call strict check (the values passed it)."""
        return encode_data(values, args[0], args[1], True).to_bytes(self._length, "big")

    def _strict(self, values: Mapping[str, Any]) -> bytes:
        message = self.message
        data = dict(values)
        if any(s.multiplexer_ids for s in message.signals):
            # only the signals the multiplexer value selects (cantools rejects the others)
            data = message.gather_signals(data)
        return bytes(message.encode(data, scaling=True, strict=True))

    def decode(self, data: bytes | bytearray) -> dict[str, Any]:
        """Scaled values by signal name, value-table names not applied (as
        ``decode_simple(data, False, True)``); raises on a frame too short."""
        fields = self._fields
        if fields is not None and len(data) == self._length:
            # every signal an Intel-order integer: shifts and masks of one int give
            # cantools' values (its bit unpacking builds two dicts and reverses the
            # payload per frame; the scaling is its own expression, raw * scale + offset)
            whole = int.from_bytes(data, "little")
            decoded_fast: dict[str, Any] = {}
            for name, shift, mask, sign, scale, offset in fields:
                raw = (whole >> shift) & mask
                if raw & sign:
                    raw -= sign << 1
                decoded_fast[name] = raw if scale is None else raw * scale + offset
            return decoded_fast
        args = self._decode_args
        if args is None:
            return dict(self.message.decode_simple(data, False, True))  # type: ignore[arg-type]
        decoded: dict[str, Any] = decode_data(
            data,  # type: ignore[arg-type]  # cantools slices it; a bytearray serves
            self._length,
            args[0],
            args[1],
            False,
            True,
            False,
            True,
        )
        return decoded


# name, shift, mask, sign bit (0: unsigned), scale (None: the raw value as is), offset
_Field = tuple[str, int, int, int, Any, Any]
# name, lowest and highest scaled value cantools accepts, shift, mask, lowest and
# highest raw value its bits hold, cantools' conversion
_Slot = tuple[str, float, float, int, int, int, int, Any]


def _little_endian_fields(signals: Any) -> tuple[_Field, ...] | None:
    """How to cut each signal out of the payload read as one little-endian integer,
    when every signal is an Intel-order integer with a linear scaling (else None:
    cantools' own decoder serves)."""
    fields: list[_Field] = []
    for s in signals:
        conversion = s.conversion
        if isinstance(conversion, NamedSignalConversion):
            # value-table names are not applied here: its numeric conversion decides
            conversion = conversion._conversion
        if s.byte_order != "little_endian" or s.is_float or s.length < 1:
            return None
        scale: Any
        offset: Any
        if isinstance(conversion, IdentityConversion):
            scale, offset = None, 0
        elif isinstance(conversion, (LinearIntegerConversion, LinearConversion)):
            scale, offset = conversion.scale, conversion.offset
        else:
            return None
        sign = 1 << (s.length - 1) if s.is_signed else 0
        fields.append((s.name, s.start, (1 << s.length) - 1, sign, scale, offset))
    return tuple(fields)


_CODECS: weakref.WeakKeyDictionary[Message, MessageCodec] = weakref.WeakKeyDictionary()


def codec_for(message: Message) -> MessageCodec:
    """The message's codec, built on first use and kept as long as the message."""
    codec = _CODECS.get(message)
    if codec is None:
        codec = _CODECS[message] = MessageCodec(message)
    return codec
