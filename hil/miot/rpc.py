"""One MIoT downlink from queueing to the MCU's answer, and the protocol's result codes.

Shared by the module driver (``hil/miot/module.py``) and whatever reports on
its answers; nothing here touches a transport.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from hil.miot.codec import Line, Value, encode_line, is_int
from hil.miot.spec import PropertySpec

RPC_TIMEOUT_S = 4.0  # the platform's limit for answering any downlink

RESULT_CODES: Mapping[int, str] = {
    0: "success",
    1: "accepted, not finished",
    -4001: "not readable",
    -4002: "not writable",
    -4003: "no such property, method or event",
    -4004: "internal error",
    -4005: "bad value",
    -4006: "bad action parameter",
    -4007: "bad device id",
}

Expect = Literal["result", "mcu_version", "none"]


def meaning(code: int) -> str:
    """The protocol's name for a result or error code."""
    if code in RESULT_CODES:
        return RESULT_CODES[code]
    if -9999 <= code <= -5000:
        return "MCU error"
    return "unknown code"


@dataclass
class Request:
    """One downlink, from queueing to the MCU's answer."""

    words: tuple[Value, ...]  # the method and its arguments, after ``down``
    expect: Expect
    match: tuple[int, ...] = ()  # leading ints the answering ``result`` must start with
    done: threading.Event = field(default_factory=threading.Event)
    t_sent: float | None = None  # capture time of the ``down`` line
    t_reply: float | None = None
    reply: Line | None = None

    @property
    def text(self) -> str:
        return encode_line("down", *self.words)


def parse_get_result(
    by_ids: Mapping[tuple[int, int], tuple[str, PropertySpec]], args: tuple[Value, ...]
) -> list[tuple[str, PropertySpec | None, int, Value]]:
    """``s p code [value] …`` → (name, property, code, value); a value only with code 0."""
    out: list[tuple[str, PropertySpec | None, int, Value]] = []
    i = 0
    while i + 2 < len(args):
        siid, piid, code = args[i], args[i + 1], args[i + 2]
        if not (is_int(siid) and is_int(piid) and is_int(code)):
            break  # the caller reports what is missing
        i += 3
        value: Value = ""
        if code == 0 and i < len(args):
            value, i = args[i], i + 1
        name, prop = by_ids.get((int(siid), int(piid)), (f"{siid}.{piid}", None))
        out.append((name, prop, int(code), value))
    return out
