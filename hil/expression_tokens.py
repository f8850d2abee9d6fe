"""Tokens of the expression language (``hil.expressions``): names, numbers,
strings and operators, each with its 1-based column for error messages.

The common mistakes of other languages (``&&``, ``=``, ``**``…) are named with
what to write instead, since plan authors come from C, Python and spreadsheets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hil.expression_eval import ExpressionError

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})

_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:(?<=[A-Za-z0-9])-[A-Za-z][A-Za-z0-9_]*)*")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]+")
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "(", ")", "[", "]", ",")
_MISTAKES = {
    "&&": "use 'and'",
    "||": "use 'or'",
    "**": "there is no power operator",
    "&": "use 'and'",
    "|": "use 'or'",
    "!": "use 'not'",
    "=": "use '==' to compare",
}
# longest first, so "**" is not read as "*" and "!=" is not read as "!"
_SYMBOLS = sorted((*_OPERATORS, *_MISTAKES), key=len, reverse=True)
_ESCAPES = {'"': '"', "'": "'", "\\": "\\"}


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "string", "name", "keyword", "op" or "end"
    text: str
    column: int
    value: Any = None

    def describe(self) -> str:
        if self.kind == "name":
            return f"name {self.text!r}"
        if self.kind in ("number", "string"):
            return f"{self.kind} {self.text}"
        return "the end of the expression" if self.kind == "end" else repr(self.text)


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        char = source[pos]
        if char in " \t\r\n":
            pos += 1
        elif char in "\"'":
            pos = _string(source, pos, tokens)
        elif char.isascii() and (char.isdigit() or (char == "." and _NUMBER.match(source, pos))):
            pos = _number(source, pos, tokens)
        elif _SEGMENT.match(source, pos):
            pos = _name(source, pos, tokens)
        else:
            pos = _operator(source, pos, tokens)
    tokens.append(Token("end", "", len(source) + 1))
    return tokens


def fail(source: str, column: int, reason: str) -> ExpressionError:
    return ExpressionError(reason, expression=source, column=column)


def _string(source: str, start: int, tokens: list[Token]) -> int:
    quote, pos, parts = source[start], start + 1, []
    while pos < len(source) and source[pos] != quote:
        if source[pos] == "\\" and pos + 1 < len(source):
            escaped = source[pos + 1]
            if escaped not in _ESCAPES:
                raise fail(
                    source,
                    pos + 1,
                    f"unsupported escape '\\{escaped}'; only \\\" \\' and \\\\ are allowed",
                )
            parts.append(_ESCAPES[escaped])
            pos += 2
        else:
            parts.append(source[pos])
            pos += 1
    if pos >= len(source):
        raise fail(source, start + 1, f"unterminated string; close it with {quote}")
    tokens.append(Token("string", source[start : pos + 1], start + 1, "".join(parts)))
    return pos + 1


def _number(source: str, start: int, tokens: list[Token]) -> int:
    match = _NUMBER.match(source, start)
    assert match is not None  # the caller saw a digit or ".digit"
    tail = _NUMBER_TAIL.match(source, match.end())
    if tail:
        raise fail(source, start + 1, f"malformed number {source[start : tail.end()]!r}")
    text = match.group()
    value = float(text) if any(c in text for c in ".eE") else int(text)
    tokens.append(Token("number", text, start + 1, value))
    return match.end()


def _name(source: str, start: int, tokens: list[Token]) -> int:
    match = _SEGMENT.match(source, start)
    assert match is not None
    end = match.end()
    while end < len(source) and source[end] == ".":
        segment = _SEGMENT.match(source, end + 1)
        if segment is None:
            where = "ends with '.'" if end + 1 == len(source) else "has '.' not followed by a name"
            raise fail(source, end + 1, f"name {source[start : end + 1]!r} {where}")
        end = segment.end()
    text = source[start:end]
    if text in KEYWORDS:
        tokens.append(Token("keyword", text, start + 1))
    elif text.lower() in ("true", "false"):
        raise fail(source, start + 1, f"unknown name {text!r}; use true/false (lowercase)")
    else:
        tokens.append(Token("name", text, start + 1))
    return end


def _operator(source: str, pos: int, tokens: list[Token]) -> int:
    for text in _SYMBOLS:
        if source.startswith(text, pos):
            if text in _MISTAKES:
                raise fail(source, pos + 1, f"unexpected {text!r}; {_MISTAKES[text]}")
            tokens.append(Token("op", text, pos + 1))
            return pos + len(text)
    raise fail(source, pos + 1, f"unexpected character {source[pos]!r}")
