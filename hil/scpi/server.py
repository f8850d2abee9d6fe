"""A small SCPI command-tree dispatcher for emulated instruments.

What a real instrument's parser does, and what drivers rely on without
noticing: headers match in their short or long form, case-insensitively
(``:NUMeric:NORMal:VALue?`` == ``:num:norm:val?``); optional nodes may be
left out (``[:NORMal]``); numeric suffixes select an instance (``ITEM3``);
one line may carry several ``;``-separated commands, and a header without a
leading colon continues from the *current path* of the previous one
(``:NUM:NORM:ITEM1 U,1;ITEM2 I,1``). Mistakes land in an error queue read
with ``SYSTem:ERRor?`` (``-113,"Undefined header"``), never in an answer.
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hil.errors import HilError

ERRORS: dict[int, str] = {
    0: "No error",
    -100: "Command error",
    -102: "Syntax error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -114: "Header suffix out of range",
    -131: "Invalid suffix",
    -221: "Settings conflict",
    -222: "Data out of range",
    -224: "Illegal parameter value",
    -350: "Queue overflow",
    -410: "Query INTERRUPTED",
}

QUEUE_SIZE = 30  # IEEE 488.2 leaves it to the device; the last slot becomes -350 on overflow
NAN_CODE = 9.91e37  # how SCPI instruments send "no data" (IEEE 488.2 NaN)
INF_CODE = 9.9e37  # and "over range"


class ScpiError(HilError):
    """An entry for the instrument's error queue, raised by a handler."""

    def __init__(self, code: int, text: str | None = None, **fields: Any) -> None:
        text = text if text is not None else ERRORS.get(code, "Device-specific error")
        super().__init__(f'{code},"{text}"', code=code, text=text, **fields)

    @property
    def code(self) -> int:
        return int(self.fields["code"])

    @property
    def text(self) -> str:
        return str(self.fields["text"])


@dataclass(frozen=True)
class Call:
    """One program message unit, as a handler receives it."""

    header: str  # canonical long form, e.g. ":NUMERIC:NORMAL:ITEM"
    query: bool
    params: tuple[str, ...] = ()
    suffixes: tuple[int, ...] = ()  # one per node that takes a numeric suffix

    def one(self) -> str:
        """The single parameter; -109/-108 when there are none or more."""
        if not self.params:
            raise ScpiError(-109)
        if len(self.params) > 1:
            raise ScpiError(-108)
        return self.params[0]

    def none(self) -> None:
        if self.params:
            raise ScpiError(-108)


Handler = Callable[[Call], str | None]
ErrorListener = Callable[[int, str], None]


@dataclass(frozen=True)
class _Mnemonic:
    short: str
    long: str
    suffix: bool  # takes a numeric suffix (ITEM<n>)

    @classmethod
    def parse(cls, text: str) -> _Mnemonic:
        suffix = text.endswith("<n>")
        text = text.removesuffix("<n>")
        lower = next((i for i, ch in enumerate(text) if ch.islower()), len(text))
        return cls(text[:lower].upper(), text.upper(), suffix)

    def match(self, token: str) -> int | None:
        """The suffix (1 when absent) if ``token`` names this node, else None."""
        base, digits = token, ""
        if self.suffix:
            m = re.fullmatch(r"(.*?)(\d*)", token)
            assert m is not None
            base, digits = m.group(1), m.group(2)
        if base not in (self.short, self.long):
            return None
        return int(digits) if digits else 1


@dataclass
class _Node:
    name: str = ""
    children: list[tuple[_Mnemonic, _Node]] = field(default_factory=list)
    handlers: dict[bool, Handler] = field(default_factory=dict)
    parent: _Node | None = None

    def child(self, mnemonic: _Mnemonic) -> _Node:
        for m, node in self.children:
            if m == mnemonic:
                return node
        node = _Node(f"{self.name}:{mnemonic.long}", parent=self)
        self.children.append((mnemonic, node))
        return node

    def find(self, token: str) -> tuple[_Node, int] | None:
        for m, node in self.children:
            suffix = m.match(token)
            if suffix is not None:
                return node, suffix
        return None


_PATTERN_PART = re.compile(r"\[:([A-Za-z]\w*(?:<n>)?)\]|:([A-Za-z]\w*(?:<n>)?)")
_HEADER = re.compile(r"(\*[A-Za-z]+|:?[A-Za-z]\w*(?::[A-Za-z]\w*)*)(\?)?(?:\s+(.*))?", re.DOTALL)


def _expand(pattern: str) -> list[list[_Mnemonic]]:
    """Every spelling of a registered header, with and without its optional nodes."""
    pos = 0
    variants: list[list[_Mnemonic]] = [[]]
    for m in _PATTERN_PART.finditer(pattern):
        if m.start() != pos:
            break
        pos = m.end()
        optional, text = (True, m.group(1)) if m.group(1) else (False, m.group(2))
        mnemonic = _Mnemonic.parse(text)
        variants = [v + [mnemonic] for v in variants] + (variants if optional else [])
    if pos != len(pattern) or not pattern:
        raise ValueError(
            f"bad SCPI header pattern {pattern!r}; expected e.g. ':NUMeric[:NORMal]:ITEM<n>'"
        )
    return [v for v in variants if v]


def _split_outside_quotes(text: str, sep: str) -> tuple[list[str], bool]:
    """Split ``text`` at ``sep`` outside quoted strings; also whether a quote is left open."""
    parts, current, quote = [], [], ""
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            current.append(ch)
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts, bool(quote)


def split_units(line: str) -> list[str]:
    """Split a program message at ``;`` outside quoted strings."""
    return _split_outside_quotes(line, ";")[0]


def split_params(text: str) -> tuple[str, ...]:
    """Comma-separated parameters outside quoted strings; an empty one is -102."""
    if not text.strip():
        return ()
    parts, open_quote = _split_outside_quotes(text, ",")
    params = [p.strip() for p in parts]
    if open_quote or any(not p for p in params):
        raise ScpiError(-102)
    return tuple(params)


class ScpiServer:
    """Dispatches program messages (lines) to registered handlers.

    ``handle_line`` returns the response message (query answers joined by
    ``;``) or None when the line held no query, as an instrument sends
    nothing back for commands.
    """

    def __init__(self, identity: str, *, on_reset: Callable[[], None] | None = None) -> None:
        self.identity = identity
        self._on_reset = on_reset
        self._root = _Node()
        self._common: dict[tuple[str, bool], Handler] = {}
        self._errors: deque[tuple[int, str]] = deque()
        self._listeners: list[ErrorListener] = []
        self._lock = threading.RLock()
        self.register("*IDN?", lambda c: self.identity)
        self.register("*RST", self._reset)
        self.register("*CLS", lambda c: self.clear_errors())
        self.register("*OPC?", lambda c: "1")
        self.register("*OPC", lambda c: None)
        self.register("*WAI", lambda c: None)
        self.register("*TST?", lambda c: "0")
        self.register(":SYSTem:ERRor[:NEXT]?", lambda c: self.pop_error())
        self.register(":SYSTem:ERRor:COUNt?", lambda c: str(len(self._errors)))

    def register(self, header: str, handler: Handler, *, replace: bool = False) -> None:
        """Handle ``header`` (``*IDN?``, ``:INPut:CFACtor``, ``:NUMeric[:NORMal]:ITEM<n>?``)."""
        query = header.endswith("?")
        header = header.removesuffix("?")
        if header.startswith("*"):
            key = (header.upper(), query)
            if key in self._common and not replace:
                raise ValueError(f"{header}{'?' * query} is already registered")
            self._common[key] = handler
            return
        for variant in _expand(header):
            node = self._root
            for mnemonic in variant:
                node = node.child(mnemonic)
            if query in node.handlers and not replace:
                raise ValueError(f"{header}{'?' * query} is already registered")
            node.handlers[query] = handler

    def add_error_listener(self, listener: ErrorListener) -> None:
        """Call ``listener(code, text)`` whenever an error is queued."""
        self._listeners.append(listener)

    # --- the error queue --------------------------------------------------------------

    def push_error(self, code: int, text: str | None = None) -> None:
        text = text if text is not None else ERRORS.get(code, "Device-specific error")
        with self._lock:
            if len(self._errors) >= QUEUE_SIZE:
                self._errors[-1] = (-350, ERRORS[-350])
            else:
                self._errors.append((code, text))
        for listener in self._listeners:
            listener(code, text)

    def pop_error(self) -> str:
        with self._lock:
            code, text = self._errors.popleft() if self._errors else (0, ERRORS[0])
        return f'{code},"{text}"'

    def clear_errors(self) -> None:
        with self._lock:
            self._errors.clear()

    @property
    def errors(self) -> list[tuple[int, str]]:
        """The queued errors, oldest first, without draining them."""
        with self._lock:
            return list(self._errors)

    # --- parsing and dispatch ---------------------------------------------------------

    def handle_line(self, line: str) -> str | None:
        """Execute one program message; return its response message, if any."""
        answers: list[str] = []
        with self._lock:
            path = self._root  # each program message starts at the root
            for unit in split_units(line.strip()):
                unit = unit.strip()
                if not unit:
                    if line.strip():  # ";;" or a leading ";" is a syntax error, a blank line is not
                        self.push_error(-102)
                    break
                try:
                    answer, path = self._execute(unit, path)
                except ScpiError as err:
                    self.push_error(err.code, err.text)
                    if -200 < err.code <= -100:
                        break  # a command error discards the rest of the message (IEEE 488.2)
                    continue
                if answer is not None:
                    answers.append(answer)
        return ";".join(answers) if answers else None

    def _execute(self, unit: str, path: _Node) -> tuple[str | None, _Node]:
        m = _HEADER.fullmatch(unit)
        if m is None:
            raise ScpiError(-102)
        header, query = m.group(1).upper(), m.group(2) is not None
        params = split_params(m.group(3) or "")
        if header.startswith("*"):
            handler = self._common.get((header, query))
            if handler is None:
                raise ScpiError(-113)
            return handler(Call(header, query, params)), path  # common commands keep the path
        node = self._root if header.startswith(":") else path
        suffixes: list[int] = []
        for token in header.lstrip(":").split(":"):
            found = node.find(token)
            if found is None:
                raise ScpiError(-113)
            node, suffix = found
            suffixes.append(suffix)
        handler = node.handlers.get(query)
        if handler is None:
            raise ScpiError(-113)
        answer = handler(Call(node.name, query, params, tuple(suffixes)))
        return answer, node.parent or self._root

    def _reset(self, call: Call) -> None:
        call.none()
        if self._on_reset is not None:
            self._on_reset()


# --- helpers for handlers ----------------------------------------------------------------


def parse_bool(text: str) -> bool:
    """SCPI boolean: ON, OFF, 1 or 0."""
    value = text.strip().upper()
    if value in ("ON", "1"):
        return True
    if value in ("OFF", "0"):
        return False
    raise ScpiError(-224, detail=f"expected ON or OFF, got {text!r}")


_PREFIXES = {"": 1.0, "M": 1e-3, "U": 1e-6, "N": 1e-9, "K": 1e3, "MEG": 1e6}
_NUMBER = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:E[+-]?\d+)?)\s*([A-Z]*)")


def parse_number(text: str, unit: str = "") -> float:
    """A decimal number with an optional ``[prefix]unit`` suffix (``250MS``, ``0.5A``)."""
    m = _NUMBER.fullmatch(text.strip().upper())
    if m is None:
        raise ScpiError(-224, detail=f"expected a number, got {text!r}")
    value, suffix = float(m.group(1)), m.group(2)
    if suffix:
        if not unit or not suffix.endswith(unit.upper()):
            raise ScpiError(-131)
        prefix = suffix[: len(suffix) - len(unit)]
        if prefix not in _PREFIXES:
            raise ScpiError(-131)
        value *= _PREFIXES[prefix]
    if not math.isfinite(value):
        raise ScpiError(-222)
    return value


def match_choice(text: str, choices: Sequence[str]) -> str:
    """Character data matched like a header (``VMEan`` accepts VME or VMEAN); the long form."""
    token = text.strip().upper()
    for choice in choices:
        mnemonic = _Mnemonic.parse(choice)
        if token in (mnemonic.short, mnemonic.long):
            return mnemonic.long
    raise ScpiError(-224, detail=f"expected one of {list(choices)}, got {text!r}")


def format_nr3(value: float, digits: int = 4) -> str:
    """``2.301E+02`` style; NaN and infinity as the 9.91E+37 / 9.9E+37 codes."""
    if math.isnan(value):
        value = NAN_CODE
    elif math.isinf(value):
        value = math.copysign(INF_CODE, value)
    return f"{value:.{digits - 1}E}"


def parse_nr3(text: str) -> float:
    """The client-side inverse of ``format_nr3`` (codes back to NaN / infinity)."""
    value = float(text)
    if abs(value) == NAN_CODE or text.strip().upper() == "NAN":
        return math.nan
    if abs(value) == INF_CODE:
        return math.copysign(math.inf, value)
    return value
