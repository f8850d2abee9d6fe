"""hil.cannode.codec: the precompiled encode/decode gives cantools' bytes, values and
errors (strict encode, ``decode_simple``) for every message of the shipped databases."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cantools.database
import pytest
from cantools.database import EncodeError
from hypothesis import given
from hypothesis import strategies as st

from hil.cannode.codec import MessageCodec, codec_for
from hil.transports.can import load_dbc

ROOT = Path(__file__).resolve().parents[2]
DATABASES = {
    name: load_dbc(ROOT / "devices" / name / f"{name}.dbc") for name in ("ev", "hub", "charger")
}
MESSAGES = [m for db in DATABASES.values() for m in db.messages if not m.is_container and m.signals]
Message = cantools.database.can.Message
Signal = cantools.database.can.Signal

MUX_DBC = """VERSION ""
BU_: HIL DUT
BO_ 768 MUX_Status: 3 DUT
 SG_ Kind M : 0|8@1+ (1,0) [0|1] "" HIL
 SG_ Voltage m0 : 8|16@1+ (0.01,0) [0|655.35] "V" HIL
 SG_ Current m1 : 8|16@1- (0.1,0) [-3276.8|3276.7] "A" HIL
BO_ 769 BE_Status: 4 DUT
 SG_ Level : 7|12@0- (0.5,1) [-1023|1024.5] "" HIL
 SG_ Flag : 27|1@1+ (1,0) [0|1] "" HIL
"""


def _scaled(scale: float, offset: float) -> Callable[[int], float]:
    return lambda raw: raw * scale + offset


def _accepted(s: Signal) -> tuple[float, float]:
    """The physical range a signal accepts: its DBC range within what its raw bits hold."""
    raw_low = -(2 ** (s.length - 1)) if s.is_signed else 0
    raw_high = 2 ** (s.length - 1) - 1 if s.is_signed else 2**s.length - 1
    scale, offset = s.conversion.scale, s.conversion.offset
    low = max(s.minimum if s.minimum is not None else -1e300, raw_low * scale + offset)
    high = min(s.maximum if s.maximum is not None else 1e300, raw_high * scale + offset)
    return low, high


def _in_range(message: Message) -> st.SearchStrategy[dict[str, Any]]:
    """Values every signal of ``message`` accepts: on the raw grid, within its range."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for s in message.signals:
        low, high = _accepted(s)
        scale, offset = s.conversion.scale, s.conversion.offset
        raw = st.integers(round((low - offset) / scale), round((high - offset) / scale))
        fields[s.name] = raw.map(_scaled(scale, offset))
    return st.fixed_dictionaries(fields)


@given(st.data())
def test_encode_and_decode_equal_cantools(data: st.DataObject) -> None:
    message = data.draw(st.sampled_from(MESSAGES))
    values = data.draw(_in_range(message))
    codec = MessageCodec(message)
    expected = bytes(message.encode(values, scaling=True, strict=True))
    assert codec.encode(values) == expected
    assert codec.decode(bytearray(expected)) == message.decode_simple(expected, False, True)


@given(st.data())
def test_any_payload_decodes_as_cantools_decodes_it(data: st.DataObject) -> None:
    """Every bit pattern, sign bits and value-table raw values included."""
    message = data.draw(st.sampled_from(MESSAGES))
    payload = bytearray(data.draw(st.binary(min_size=message.length, max_size=message.length)))
    decoded = MessageCodec(message).decode(payload)
    expected = message.decode_simple(bytes(payload), False, True)
    assert decoded == expected
    assert [type(v) for v in decoded.values()] == [type(v) for v in expected.values()]


def _bms() -> tuple[Message, MessageCodec, dict[str, Any]]:
    message = DATABASES["ev"].get_message_by_name("BMS_Status")
    values = {
        "SoC": 50.0,
        "PackVoltage": 400.0,
        "PackCurrent": 0.0,
        "ContactorState": 0,
        "LinkVoltage": 0.0,
    }
    return message, MessageCodec(message), values


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"SoC": 100.1}, 'Expected signal "SoC" value smaller than or equal to 100'),
        ({"PackCurrent": -3300}, 'Expected signal "PackCurrent" value greater than'),
        ({"SoC": float("nan")}, None),  # cantools' own verdict, whatever it is
        ({"Bogus": 1}, "not required to encode"),
    ],
)
def test_what_strict_rejects_is_rejected_with_its_words(
    change: dict[str, Any], words: str | None
) -> None:
    message, codec, values = _bms()
    values.update(change)
    try:
        message.encode(dict(values), scaling=True, strict=True)
    except (EncodeError, ValueError) as err:  # NaN: a ValueError from its rounding
        expected: Exception | None = err
    else:
        expected = None
    if expected is None:  # accepted by cantools: the same bytes
        assert codec.encode(values) == message.encode(dict(values), strict=True)
        return
    if words is not None:
        assert words in str(expected)
    with pytest.raises(type(expected)) as raised:
        codec.encode(values)
    assert str(raised.value) == str(expected)


def test_a_missing_signal_is_named() -> None:
    _, codec, values = _bms()
    del values["SoC"]
    with pytest.raises(EncodeError, match='"SoC" is required'):
        codec.encode(values)


def test_the_range_tolerance_is_cantools_own() -> None:
    """A scaled value within a millionth of a step outside its range is accepted (cantools
    allows it), one beyond that is not."""
    _, codec, values = _bms()
    codec.encode({**values, "SoC": 100.0 + 0.1 * 0.5e-6})
    with pytest.raises(EncodeError):
        codec.encode({**values, "SoC": 100.0 + 0.1 * 2e-6})


def test_choice_names_and_bools_take_the_strict_path() -> None:
    message, codec, values = _bms()
    flagged = {**values, "ContactorState": True}
    assert codec.encode(flagged) == message.encode(dict(flagged), strict=True)


def test_a_multiplexed_message_encodes_the_selected_signals() -> None:
    db = cantools.database.load_string(MUX_DBC, database_format="dbc")
    assert isinstance(db, cantools.database.can.Database)
    message = db.get_message_by_name("MUX_Status")
    codec = codec_for(message)
    # every signal given: only those the multiplexer selects are encoded
    both = {"Kind": 1, "Voltage": 1.0, "Current": -2.5}
    frame = codec.encode(both)
    assert frame == message.encode({"Kind": 1, "Current": -2.5}, strict=True)
    assert codec.decode(frame) == {"Kind": 1, "Current": -2.5}
    with pytest.raises(EncodeError):
        codec.encode({"Kind": 0, "Voltage": 700.0, "Current": 0.0})


def test_a_motorola_signal_takes_cantools_decoder() -> None:
    db = cantools.database.load_string(MUX_DBC, database_format="dbc")
    assert isinstance(db, cantools.database.can.Database)
    message = db.get_message_by_name("BE_Status")
    codec = MessageCodec(message)
    for payload in (bytes(4), b"\xff\xf0\x08\x00", b"\x80\x10\x00\x00"):
        assert codec.decode(bytearray(payload)) == message.decode_simple(payload, False, True)
    values = {"Level": -20.5, "Flag": 1}
    assert codec.encode(values) == message.encode(values, strict=True)


def test_a_short_frame_does_not_decode() -> None:
    _, codec, _ = _bms()
    with pytest.raises(cantools.database.DecodeError):
        codec.decode(bytearray(3))


def test_one_codec_per_message() -> None:
    message = MESSAGES[0]
    assert codec_for(message) is codec_for(message)


def _anywhere_in_range(message: Message) -> st.SearchStrategy[dict[str, Any]]:
    """Values off the raw grid too (cantools rounds them), ints and floats, within range."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for s in message.signals:
        low, high = _accepted(s)
        fields[s.name] = st.one_of(
            st.floats(low, high, allow_nan=False),
            st.integers(math.ceil(low), math.floor(high))
            if math.ceil(low) <= high
            else st.nothing(),
        )
    return st.fixed_dictionaries(fields)


@given(st.data())
def test_values_between_raw_steps_encode_as_cantools_rounds_them(data: st.DataObject) -> None:
    message = data.draw(st.sampled_from(MESSAGES))
    values = data.draw(_anywhere_in_range(message))
    assert MessageCodec(message).encode(values) == bytes(
        message.encode(values, scaling=True, strict=True)
    )


WIDE_DBC = """VERSION ""
BU_: HIL DUT
BO_ 770 Wide: 2 HIL
 SG_ Level : 0|8@1+ (1,0) [0|1000] "" DUT
 SG_ Trim : 8|4@1- (1,0) [-100|100] "" DUT
"""


@pytest.mark.parametrize("values", [{"Level": 300, "Trim": 0}, {"Level": 0, "Trim": -9}])
def test_a_raw_value_wider_than_its_bits_fails_as_in_cantools(values: dict[str, int]) -> None:
    """A DBC range wider than the signal's bits: cantools' own packing decides."""
    db = cantools.database.load_string(WIDE_DBC, database_format="dbc")
    assert isinstance(db, cantools.database.can.Database)
    message = db.get_message_by_name("Wide")
    codec = MessageCodec(message)
    with pytest.raises(Exception) as expected:
        message.encode(dict(values), scaling=True, strict=True)
    with pytest.raises(type(expected.value)) as raised:
        codec.encode(values)
    assert str(raised.value) == str(expected.value)
    fits = {"Level": 255, "Trim": -8}
    assert codec.encode(fits) == message.encode(fits, strict=True) == b"\xff\x08"
