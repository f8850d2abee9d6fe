"""One MIoT serial line ↔ words.

A line is a lowercase command followed by parameters separated by single
spaces. Parameters are ``true``/``false``, integers, floats, double-quoted
strings (a space written ``\\u0020``) or bare words (method names, ``none``).
Both sides of the link use this module, so the bench and the emulator can
never disagree on the grammar.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from hil.errors import HilError

MAX_LINE_BYTES = 512
MAX_PARAMS = 64

Value = bool | int | float | str

_INT = re.compile(r"^-?[0-9]+$")
_FLOAT = re.compile(r"^-?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?$")
_BARE = re.compile(r"^[A-Za-z0-9_.:\-]+$")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
# characters that cannot appear raw inside a quoted word on the wire
_MUST_ESCAPE = {" ", '"', "\\", "\r", "\n", "\t"}


class LineError(HilError, ValueError):
    """A line breaks the MIoT line grammar (length, parameters, quoting)."""


@dataclass(frozen=True, slots=True)
class Line:
    """A decoded line: its command and its typed parameters."""

    command: str
    args: tuple[Value, ...] = ()

    def __str__(self) -> str:
        return encode_line(self.command, *self.args)


class Bare(str):
    """A word sent without quotes (a method name, ``none``, a net state)."""

    __slots__ = ()


def encode_value(value: Value) -> str:
    """The wire form of one parameter."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineError(f"cannot send {value!r}: MIoT numbers must be finite")
        text = repr(value)
        return text
    if isinstance(value, Bare):
        if not _BARE.match(value):
            raise LineError(f"bare word {str(value)!r} holds characters that need quoting")
        return str(value)
    if isinstance(value, str):
        return '"' + "".join(f"\\u{ord(c):04x}" if c in _MUST_ESCAPE else c for c in value) + '"'
    raise LineError(
        f"cannot send a {type(value).__name__} ({value!r}); expected bool/int/float/str"
    )


def encode_line(command: str, *args: Value) -> str:
    """Join ``command`` and ``args`` into one line (without the terminator).

    Raises ``LineError`` if the line would break the 512-byte or
    64-parameter limit, so an oversized report is caught where it is built.
    """
    if not command or not _BARE.match(command):
        raise LineError(f"command {command!r} must be one bare word")
    if len(args) > MAX_PARAMS:
        raise LineError(f"{command}: {len(args)} parameters; at most {MAX_PARAMS} are allowed")
    text = " ".join([command, *(encode_value(a) for a in args)])
    size = len(text.encode("utf-8"))
    if size > MAX_LINE_BYTES:
        raise LineError(f"{command}: line is {size} bytes; at most {MAX_LINE_BYTES} are allowed")
    return text


def decode_value(word: str) -> Value:
    """The typed value of one wire word."""
    if word == "true":
        return True
    if word == "false":
        return False
    if word.startswith('"'):
        if len(word) < 2 or not word.endswith('"'):
            raise LineError(f"unterminated string {word!r}")
        inner = word[1:-1]
        if '"' in inner:
            raise LineError(f"stray quote inside string {word!r}")
        return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), inner)
    if _INT.match(word):
        return int(word)
    if _FLOAT.match(word):
        return float(word)
    if _BARE.match(word):
        return Bare(word)
    raise LineError(f"word {word!r} is neither a number, a bool, a quoted string nor a bare word")


def decode_line(text: str) -> Line:
    """Split one received line into its command and typed parameters."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_LINE_BYTES:
        raise LineError(f"line is {size} bytes; at most {MAX_LINE_BYTES} are allowed")
    if not text:
        raise LineError("empty line")
    words = text.split(" ")
    if "" in words:
        raise LineError(f"words must be separated by single spaces: {text!r}")
    command = words[0]
    if not _BARE.match(command) or command != command.lower():
        raise LineError(f"command {command!r} must be one lowercase word")
    if len(words) - 1 > MAX_PARAMS:
        raise LineError(f"{command}: {len(words) - 1} parameters; at most {MAX_PARAMS} are allowed")
    return Line(command, tuple(decode_value(w) for w in words[1:]))


def is_int(value: Value) -> bool:
    """An integer parameter (``true`` is not one, although Python says so)."""
    return isinstance(value, int) and not isinstance(value, bool)
