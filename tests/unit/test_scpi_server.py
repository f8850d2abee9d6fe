"""The SCPI dispatcher that emulated instruments build on (no sockets needed)."""

from __future__ import annotations

import math
import pickle

import pytest

from hil.scpi.server import (
    QUEUE_SIZE,
    Call,
    ScpiError,
    ScpiServer,
    format_nr3,
    match_choice,
    parse_bool,
    parse_nr3,
    parse_number,
)


@pytest.fixture
def server() -> tuple[ScpiServer, dict[str, object]]:
    seen: dict[str, object] = {"resets": 0}
    items: dict[int, tuple[str, ...]] = {}

    def reset() -> None:
        seen["resets"] = int(str(seen["resets"])) + 1

    def set_item(call: Call) -> None:
        items[call.suffixes[-1]] = call.params

    def set_rate(call: Call) -> None:
        value = parse_number(call.one(), "S")
        if value not in (0.1, 0.25, 1.0):
            raise ScpiError(-222)
        seen["rate"] = value

    s = ScpiServer("ACME,X1,123,1.0", on_reset=reset)
    s.register(":NUMeric[:NORMal]:ITEM<n>", set_item)
    s.register(":NUMeric[:NORMal]:ITEM<n>?", lambda c: ",".join(items[c.suffixes[-1]]))
    s.register(":NUMeric[:NORMal]:VALue?", lambda c: "1.000E+00")
    s.register(":RATE", set_rate)
    s.register(":INPut:MODE", lambda c: seen.__setitem__("mode", match_choice(c.one(), ["VMEan"])))
    seen["items"] = items
    return s, seen


def errors(s: ScpiServer) -> list[str]:
    out = []
    while (e := s.handle_line("SYST:ERR?")) != '0,"No error"':
        assert e is not None
        out.append(e)
    return out


def test_long_short_and_case_insensitive_headers_are_the_same(
    server: tuple[ScpiServer, dict[str, object]],
) -> None:
    s, _ = server
    for header in (":NUMeric:NORMal:VALue?", ":NUM:NORM:VAL?", "num:norm:val?", ":NUMERIC:VAL?"):
        assert s.handle_line(header) == "1.000E+00", header
    assert errors(s) == []


def test_partial_mnemonics_are_undefined(server: tuple[ScpiServer, dict[str, object]]) -> None:
    s, _ = server
    assert s.handle_line(":NUME:NORM:VAL?") is None  # neither short (NUM) nor long (NUMERIC)
    assert errors(s) == ['-113,"Undefined header"']


def test_numeric_suffix_and_current_path(server: tuple[ScpiServer, dict[str, object]]) -> None:
    s, seen = server
    assert s.handle_line(":NUMeric:NORMal:ITEM1 U,1;ITEM2 I,1;:num:item12 P,1") is None
    assert seen["items"] == {1: ("U", "1"), 2: ("I", "1"), 12: ("P", "1")}
    # a query following a header continues from that header's path; answers join with ';'
    assert s.handle_line(":NUM:NORM:ITEM1?;ITEM2?;*IDN?;ITEM12?") == "U,1;I,1;ACME,X1,123,1.0;P,1"
    assert errors(s) == []


def test_new_message_starts_at_the_root(server: tuple[ScpiServer, dict[str, object]]) -> None:
    s, _ = server
    s.handle_line(":NUM:NORM:ITEM1 U,1")
    assert s.handle_line("ITEM1?") is None  # the current path does not survive the line
    assert errors(s) == ['-113,"Undefined header"']


def test_common_commands(server: tuple[ScpiServer, dict[str, object]]) -> None:
    s, seen = server
    assert s.handle_line("*IDN?") == "ACME,X1,123,1.0"
    assert s.handle_line("*rst;*OPC?") == "1"
    assert seen["resets"] == 1
    s.handle_line(":BOGUS")
    assert s.errors == [(-113, "Undefined header")]
    s.handle_line("*CLS")
    assert s.errors == []
    assert s.handle_line(":SYSTem:ERRor:COUNt?") == "0"


def test_syntax_errors_and_parameter_errors(server: tuple[ScpiServer, dict[str, object]]) -> None:
    s, seen = server
    s.handle_line(":NUM:NORM:ITEM1 U,,1")
    s.handle_line(":NUM::VAL?")
    s.handle_line(":RATE")
    s.handle_line(":RATE 1S,2S")
    s.handle_line(":RATE 3S")
    s.handle_line(":RATE 250XS")
    s.handle_line(":INPut:MODE SQUARE")
    assert errors(s) == [
        '-102,"Syntax error"',
        '-102,"Syntax error"',
        '-109,"Missing parameter"',
        '-108,"Parameter not allowed"',
        '-222,"Data out of range"',
        '-131,"Invalid suffix"',
        '-224,"Illegal parameter value"',
    ]
    s.handle_line(":RATE 250MS;:INP:MODE vme")
    assert (seen["rate"], seen["mode"]) == (0.25, "VMEAN")


def test_command_error_discards_the_rest_of_the_message(
    server: tuple[ScpiServer, dict[str, object]],
) -> None:
    s, seen = server
    assert s.handle_line(":RATE 1S;:NOPE;:RATE 0.1") is None
    assert seen["rate"] == 1.0
    # an execution error (-2xx) does not stop the commands after it
    assert s.handle_line(":RATE 7;*IDN?") == "ACME,X1,123,1.0"
    assert errors(s) == ['-113,"Undefined header"', '-222,"Data out of range"']


def test_error_queue_overflow_keeps_the_oldest(
    server: tuple[ScpiServer, dict[str, object]],
) -> None:
    s, _ = server
    for _ in range(QUEUE_SIZE + 5):
        s.handle_line(":NOPE")
    queued = s.errors
    assert len(queued) == QUEUE_SIZE
    assert queued[0] == (-113, "Undefined header")
    assert queued[-1] == (-350, "Queue overflow")


def test_error_listener_and_replacing_a_handler(
    server: tuple[ScpiServer, dict[str, object]],
) -> None:
    s, _ = server
    heard: list[tuple[int, str]] = []
    s.add_error_listener(lambda code, text: heard.append((code, text)))
    s.handle_line("*NOPE?")
    assert heard == [(-113, "Undefined header")]
    with pytest.raises(ValueError, match="already registered"):
        s.register(":SYSTem:ERRor?", lambda c: "x")
    s.register(":SYSTem:ERRor[:NEXT]?", lambda c: '0,"No error"', replace=True)
    assert s.handle_line("SYST:ERR:NEXT?") == '0,"No error"'
    with pytest.raises(ValueError, match="bad SCPI header pattern"):
        s.register("NUM:VAL?", lambda c: "x")


def test_value_helpers() -> None:
    assert parse_bool("on") is True
    assert parse_bool("0") is False
    assert parse_number("100MS", "S") == pytest.approx(0.1)
    assert parse_number("500mA", "A") == pytest.approx(0.5)
    assert parse_number("2.5E-3") == pytest.approx(0.0025)
    with pytest.raises(ScpiError) as info:
        parse_bool("maybe")
    assert info.value.code == -224
    assert match_choice("lamb", ["LAMBda"]) == "LAMBDA"
    assert format_nr3(230.1234) == "2.301E+02"
    assert format_nr3(0.00451) == "4.510E-03"
    assert format_nr3(math.nan) == "9.910E+37"
    assert math.isnan(parse_nr3(format_nr3(math.nan)))
    assert parse_nr3(format_nr3(math.inf)) == math.inf


def test_scpi_error_survives_pickling() -> None:
    err = pickle.loads(pickle.dumps(ScpiError(-222)))  # noqa: S301 - our own bytes, as xdist does
    assert (err.code, err.text, str(err)) == (-222, "Data out of range", '-222,"Data out of range"')
