"""MIoT serial fuzzing: lines derived from the appliance's spec, sent as the Wi-Fi module.

The bench's module driver keeps the conversation (boot, polls, reports); a
fuzz line goes out as the module's answer to the MCU's next ``get_down``,
exactly where a real module's downlink would, on the bench's own serial
transport. The probe is a ``get_properties`` of a readable property through
the driver. The protocol's rules (hil/miot, the domain's miot-serial.md):
unknown commands and methods, malformed and over-long lines get an
``error`` with a code in −9999…−5000; bad arguments get that or a
``result`` carrying a −4001…−4007 code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from hil.errors import DeviceTimeout
from hil.explore.fuzz.engine import Example, FuzzTarget, Outcome
from hil.explore.fuzz.session import DeviceUnderFuzz
from hil.miot.codec import MAX_LINE_BYTES, MAX_PARAMS, LineError, decode_line, encode_value, is_int
from hil.miot.spec import MiotSpec, PropertySpec

ERROR_CODES = range(-9999, -5000 + 1)
RESULT_CODES = range(-4007, -4001 + 1)
METHODS = ("get_properties", "set_properties", "action", "MIIO_net_change", "MIIO_mcu_version_req")
COMMANDS = ("ok", "error", "down")  # what a module may send; anything else is unknown
# only an ``error`` line in −9999…−5000 will do for these; the others may get a -400x result
ERROR_ONLY = frozenset({"unknown_method", "unknown_command", "malformed", "overlong"})
VALID = frozenset({"get", "set"})
# the order categories run in: what most often breaks a line parser first
ORDER = (
    "overlong",
    "malformed",
    "unknown_command",
    "unknown_method",
    "bad_arity",
    "unknown_ids",
    "bad_value",
    "escaped",
    "get",
    "set",
)

_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
_ID = st.integers(1, 65535)


def _down(method: str, *words: str) -> str:
    return " ".join(("down", method, *words))


def _valid_value(prop: PropertySpec) -> st.SearchStrategy[Any]:
    if prop.type == "bool":
        return st.booleans()
    if prop.type == "string":
        return st.text(max_size=20).filter(lambda s: "\r" not in s)
    if prop.enum:
        return st.sampled_from(sorted(prop.enum.values()))
    if prop.range is None:
        return st.integers(-1000, 1000) if prop.type == "int" else st.floats(-1e3, 1e3)
    lo, hi, step = prop.range
    if step > 0:
        steps = int(round((hi - lo) / step))
        # boundaries first: hypothesis shrinks towards them
        return st.integers(0, steps).map(lambda n: _typed(prop, lo + n * step))
    return st.floats(lo, hi).map(lambda v: _typed(prop, v))


def _typed(prop: PropertySpec, value: float) -> Any:
    return int(round(value)) if prop.type == "int" else round(value, 6)


def _bad_value(prop: PropertySpec) -> st.SearchStrategy[tuple[str, str]]:
    """(category, wire word) values the property must refuse: wrong type or out of range."""
    words = ['"x"', "abc", "1.5", "true"]
    wrong = [w for w in words if prop.check(decode_line(f"v {w}").args[0]) is not None]
    out = st.sampled_from(wrong).map(lambda w: ("bad_type", w))
    if prop.type in ("int", "float") and (prop.range or prop.enum):
        lo, hi = (prop.range[0], prop.range[1]) if prop.range else (0, 0)
        if prop.enum:
            lo, hi = min(prop.enum.values()), max(prop.enum.values())
        beyond = st.integers(1, 10**6).flatmap(
            lambda d: st.sampled_from([_typed(prop, lo - d), _typed(prop, hi + d)])
        )
        out = out | beyond.map(lambda v: ("out_of_range", encode_value(v)))
    return out


def miot_examples(spec: MiotSpec) -> dict[str, st.SearchStrategy[Example]]:
    """Every kind of line, valid and not, for the appliance ``spec`` describes."""
    props = [(s.siid, p) for s, p in spec.iter_properties()]
    readable = [(s, p) for s, p in props if p.readable]
    writable = [(s, p) for s, p in props if p.writable]
    known = {(s, p.piid) for s, p in props}
    parts: dict[str, st.SearchStrategy[Example]] = {}

    def ex(category: str, wire: str) -> Example:
        return Example(category, wire, must_error=category not in VALID, invalid=True)

    if readable:
        parts["get"] = st.sampled_from(readable).map(
            lambda sp: ex("get", _down("get_properties", *_ids(sp)))
        )
    if writable:
        parts["set"] = st.sampled_from(writable).flatmap(
            lambda sp: _valid_value(sp[1]).map(
                lambda v: ex("set", _down("set_properties", *_ids(sp), encode_value(v)))
            )
        )
        parts["bad_value"] = st.sampled_from(writable).flatmap(
            lambda sp: _bad_value(sp[1]).map(
                lambda cw: ex(cw[0], _down("set_properties", *_ids(sp), cw[1]))
            )
        )
        # escaped strings: any text, escaped as the grammar says, offered to a property
        parts["escaped"] = st.tuples(
            st.sampled_from(writable), st.text(min_size=1, max_size=30)
        ).map(lambda t: ex("escaped", _down("set_properties", *_ids(t[0]), encode_value(t[1]))))
    unknown = st.tuples(_ID, _ID).filter(lambda ids: ids not in known)
    parts["unknown_ids"] = unknown.map(
        lambda ids: ex("unknown_ids", _down("get_properties", *map(str, ids)))
    )
    parts["bad_arity"] = st.sampled_from(["get_properties", "set_properties", "action"]).flatmap(
        lambda m: (
            st.lists(_ID, max_size=5)
            .filter(lambda a: not _arity_ok(m, len(a)))
            .map(lambda a: ex("bad_arity", _down(m, *map(str, a))))
        )
    )
    parts["unknown_method"] = _WORD.filter(lambda w: w not in METHODS and w != "none").map(
        lambda w: ex("unknown_method", _down(w))
    )
    parts["unknown_command"] = _WORD.filter(lambda w: w not in COMMANDS).map(
        lambda w: ex("unknown_command", w)
    )
    parts["malformed"] = _malformed().map(lambda w: ex("malformed", w))
    parts["overlong"] = _overlong(readable or props).map(lambda w: ex("overlong", w))
    return {k: parts[k] for k in ORDER if k in parts}


def _ids(sp: tuple[int, PropertySpec]) -> tuple[str, str]:
    return str(sp[0]), str(sp[1].piid)


def _arity_ok(method: str, n: int) -> bool:
    if method == "get_properties":
        return n > 0 and n % 2 == 0
    if method == "set_properties":
        return n > 0 and n % 3 == 0
    return n >= 2  # action: siid aiid [piid value]…


def _malformed() -> st.SearchStrategy[str]:
    """Lines that break the grammar (each checked against the codec that both sides share)."""
    text = st.text(
        alphabet=st.characters(exclude_characters="\r", exclude_categories=["Cs"]),
        min_size=1,
        max_size=40,
    )
    shapes = st.one_of(
        text.map(lambda t: f'down get_properties "{t}'),  # unterminated string
        text.map(lambda t: f"down  get_properties {t}"),  # double space
        _WORD.map(lambda w: f"DOWN {w}"),  # upper case command
        _WORD.map(lambda w: f'down "{w}"x"'),  # stray quote
        st.integers(MAX_PARAMS + 1, MAX_PARAMS + 40).map(lambda n: "down action" + " 1" * n),
        text.map(lambda t: f"down {t}\x00"),
    )
    return shapes.filter(_breaks_grammar)


def _breaks_grammar(line: str) -> bool:
    if "\r" in line or not line.strip("\n"):
        return False
    try:
        decode_line(line.strip("\n"))
    except LineError:
        return True
    return False


def _overlong(props: list[tuple[int, PropertySpec]]) -> st.SearchStrategy[str]:
    """A well-formed-looking line longer than 512 bytes (513 and up: the limit is exact)."""

    def build(sp: tuple[int, PropertySpec], size: int, filler: str) -> str:
        head = _down("set_properties", *_ids(sp)) + ' "'
        return head + filler * (size - len(head) - 1) + '"'

    return st.builds(
        build,
        st.sampled_from(props),
        st.integers(MAX_LINE_BYTES + 1, 4 * MAX_LINE_BYTES),
        st.sampled_from(["a", "x", "0"]),
    )


class MiotFuzzTarget(FuzzTarget):
    """A MIoT appliance on the bench's serial transport, its module played by the driver."""

    protocol = "miot"

    def __init__(
        self, dut: DeviceUnderFuzz, *, probe_timeout: float = 2.0, deliver_timeout: float = 2.0
    ) -> None:
        self.dut = dut
        self.device = dut.name
        self.probe_timeout = probe_timeout
        self.deliver_timeout = deliver_timeout
        self.spec: MiotSpec = dut.driver.spec
        props = [(s.siid, p.piid) for s, p in self.spec.iter_properties() if p.readable]
        self._probe_ids = props[0] if props else None
        self._pending: str | None = None
        self._delivered = threading.Event()
        self._t_sent = 0.0
        self._t_probe = 0.0
        self._attach()

    def _attach(self) -> None:
        """Answer the MCU's next poll with the pending line, else let the driver answer."""
        transport = self.dut.transport
        inner: Callable[[float, str], None] | None = transport.on_line
        assert inner is not None

        def on_line(t: float, text: str) -> None:
            line = None
            if text == "get_down":
                line, self._pending = self._pending, None
            if line is None:
                inner(t, text)
                return
            self._t_sent = transport.write_line(line)
            self._delivered.set()

        transport.on_line = on_line
        self.dut.driver.rpc_timeout = self.probe_timeout
        deadline = time.monotonic() + 5.0  # the boot handshake, then the first poll
        while self.dut.driver.last_poll is None and time.monotonic() < deadline:
            time.sleep(0.02)

    def examples(self) -> dict[str, st.SearchStrategy[Example]]:
        return miot_examples(self.spec)

    def send(self, example: Example) -> None:
        self._delivered.clear()
        self._t_sent = 0.0
        self._pending = example.wire
        if not self._delivered.wait(self.deliver_timeout):
            self._pending = None  # the probe will say the MCU stopped polling

    def probe(self) -> str | None:
        driver = self.dut.driver
        started = time.time()
        for attempt in (1, 2):
            try:
                if self._probe_ids is None:
                    driver.request_mcu_version()
                    self._t_probe = time.time()
                    return None
                request = driver.request("get_properties", *self._probe_ids)
                break
            except Exception as err:  # a timeout, a lost port: the device is not answering
                # an MCU that still polls gets the rest of the protocol's 4 s (a loaded
                # bench can stall it); one that stopped polling is judged at once
                polled = driver.last_poll is not None and driver.last_poll > started
                if attempt == 2 or not polled or not isinstance(err, DeviceTimeout):
                    return f"no answer to get_properties {self._probe_ids}: {err}"
        assert request.reply is not None
        if request.reply.command != "result":
            return f"get_properties {self._probe_ids} answered {str(request.reply)!r}"
        self._t_probe = request.t_reply or time.time()
        return None

    def judge(self, example: Example) -> Outcome:
        if not self._t_sent:
            return Outcome("the line was never delivered (no get_down)", error_ok=False)
        answer = self._answer()
        if not example.must_error:
            return Outcome(answer)
        return Outcome(answer or "no answer", error_ok=_proper_error(example.category, answer))

    def _answer(self) -> str:
        """The MCU's first result or error after the fuzz line and before the probe's answer."""
        for rec in self.dut.transport.capture.records():
            if self._t_sent <= rec.t < self._t_probe and rec.direction == "rx":
                word = str(rec.data).partition(" ")[0]
                if word in ("result", "error"):
                    return str(rec.data)
        return ""

    def restart(self) -> None:
        self.dut.restart()
        self._attach()


def _proper_error(category: str, answer: str) -> bool:
    if not answer:
        return False
    try:
        line = decode_line(answer)
    except LineError:
        return False
    codes = [int(a) for a in line.args if is_int(a)]
    if line.command == "error":
        return bool(codes) and codes[-1] in ERROR_CODES
    if category == "escaped":
        return line.command == "result"  # a string property takes it; any other says -4005
    return category not in ERROR_ONLY and any(c in RESULT_CODES for c in codes)
