"""SCPI fuzzing: program messages derived from the instrument's command vocabulary.

The vocabulary is what the bench's driver really sends (its program messages,
from the VISA capture: the SCPI map as the driver uses it) plus the IEEE 488.2
common commands every instrument has. Fuzz input goes over a raw TCP
connection to the instrument's socket (binary junk cannot pass through a VISA
``write``), each message followed by ``*IDN?;*OPC?`` on the same connection so
its answer marks the point where the message was processed (an example's own
queries answer on one line of their own, never that one). The probe is
``*IDN?`` through the bench's own pyvisa session; the error rule is that a
malformed or unknown header leaves a command error (-100…-199) in the queue
read with ``SYSTem:ERRor?``.
"""

from __future__ import annotations

import re
import socket
import time

from hypothesis import strategies as st

from hil.errors import ConfigError, HilError
from hil.explore.fuzz.engine import Example, FuzzTarget, Outcome
from hil.explore.fuzz.session import DeviceUnderFuzz
from hil.scpi.server import split_units

SYNC = "*IDN?;*OPC?"  # no example is this message, so no example's answer is its answer
COMMON = ("*IDN?", "*CLS", "*OPC?", "*TST?", "*WAI", ":SYSTem:ERRor?", ":SYSTem:ERRor:COUNt?")
COMMAND_ERRORS = range(-199, -100 + 1)
QUEUE_READS = 40  # more than any instrument's queue holds (IEEE 488.2 leaves it to the device)
LONG = 1024  # a program message longer than this is "overlong" (a common input buffer size)
# the order categories run in: what most often breaks a parser first
ORDER = ("overlong_header", "malformed", "unknown", "binary", "overlong_valid", "valid")
_RESOURCE = re.compile(r"TCPIP0?::([^:]+)::(\d+)::SOCKET", re.IGNORECASE)
_ALPHA = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=10)


def vocabulary(messages: list[str]) -> tuple[list[str], list[str]]:
    """(whole program messages, their absolute headers) from what a driver sent."""
    whole = sorted({m for m in messages if m.strip()} | set(COMMON))
    headers = sorted({split_units(m)[0].split(" ")[0] for m in whole})
    return whole, headers


def _case(text: str, flips: list[bool]) -> str:
    return "".join(
        c.swapcase() if f else c for c, f in zip(text, flips + [False] * len(text), strict=False)
    )


def scpi_examples(messages: list[str]) -> dict[str, st.SearchStrategy[Example]]:
    """Every kind of program message, valid and not, for this vocabulary."""
    whole, headers = vocabulary(messages)
    settings = [m for m in whole if "?" not in m] or whole

    def ex(category: str, text: str, must_error: bool = True) -> Example:
        return Example(category, text, must_error=must_error, invalid=must_error)

    mangle = st.sampled_from(
        [
            lambda h: h.replace(":", "::", 1) if ":" in h[1:] else h + "::X",  # empty node
            lambda h: "9" + h.lstrip(":*"),  # a header cannot start with a digit
            lambda h: h[:2] + "@" + h[2:],  # a character no header holds
            lambda h: h + " 1,,2",  # an empty parameter
            lambda h: h + ' "open',  # an unterminated string
            lambda h: h + ";;",  # an empty program message unit
        ]
    )
    parts = {
        "valid": st.tuples(st.sampled_from(whole), st.lists(st.booleans(), max_size=40)).map(
            lambda t: ex("valid", _case(t[0], t[1]), must_error=False)
        ),
        "malformed": st.tuples(st.sampled_from(headers), mangle).map(
            lambda t: ex("malformed", t[1](t[0]))
        ),
        # "ZZ" begins no header of any instrument this targets: the header is unknown
        "unknown": st.tuples(st.lists(_ALPHA, min_size=1, max_size=4), st.booleans()).map(
            lambda t: ex("unknown", ":ZZ" + ":".join(t[0]) + "?" * t[1])
        ),
        "overlong_valid": st.tuples(st.sampled_from(settings), st.integers(LONG + 1, 8 * LONG)).map(
            lambda t: ex("overlong_valid", _repeat(t[0], t[1]), must_error=False)
        ),
        "overlong_header": st.integers(LONG + 1, 8 * LONG).map(
            lambda n: ex("overlong_header", ":" + "A" * n)
        ),
        # bytes no header can begin with, then anything but the terminator
        "binary": st.tuples(st.integers(0x80, 0xFF), st.binary(max_size=64))
        .map(lambda t: bytes([t[0]]) + t[1].replace(b"\n", b""))
        # bytes that decode to blanks only (C2 85 is U+0085) are a blank line: no error
        .filter(lambda b: b.decode("utf-8", errors="replace").strip() != "")
        .map(lambda b: ex("binary", b.hex())),
    }
    return {k: parts[k] for k in ORDER}


def _repeat(message: str, size: int) -> str:
    """``message`` repeated as ``;``-separated units until the whole is longer than ``size``."""
    count = size // (len(message) + 1) + 1
    return ";".join([message] * count)


def wire_bytes(example: Example) -> bytes:
    """What goes on the socket (binary examples are shown, and kept, as hex)."""
    if example.category == "binary":
        return bytes.fromhex(example.wire)
    return example.wire.encode("utf-8")


class ScpiFuzzTarget(FuzzTarget):
    """An SCPI instrument on a TCP socket, opened by the bench through pyvisa-py."""

    protocol = "scpi"

    def __init__(self, dut: DeviceUnderFuzz, *, probe_timeout: float = 3.0) -> None:
        self.dut = dut
        self.device = dut.name
        self.probe_timeout = probe_timeout
        self._messages = [
            rec.data.command for rec in dut.transport.capture.records() if rec.data.command
        ]
        self._sock: socket.socket | None = None
        self._synced = False
        self._attach()

    def _attach(self) -> None:
        transport = self.dut.transport
        m = _RESOURCE.fullmatch(transport.resource)
        if m is None:
            raise ConfigError(
                f"SCPI fuzzing needs a raw socket resource (TCPIP::host::port::SOCKET), "
                f"got {transport.resource!r}"
            )
        self.idn = transport.query("*IDN?")
        self._errors()  # start from an empty queue
        self._sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=5.0)

    def examples(self) -> dict[str, st.SearchStrategy[Example]]:
        return scpi_examples(self._messages)

    def send(self, example: Example) -> None:
        sock = self._sock
        assert sock is not None
        self._synced = False
        try:
            sock.sendall(wire_bytes(example) + b"\n" + SYNC.encode() + b"\n")
        except OSError:
            return
        # answers to queries inside the example come first; the sync's answer marks the end
        marker = f"{self.idn};1".encode()
        buf = b""
        deadline = time.monotonic() + self.probe_timeout
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, OSError):
                return
            if not chunk:
                return
            buf += chunk
            if any(line.strip() == marker for line in buf.split(b"\n")):
                self._synced = True
                return

    def probe(self) -> str | None:
        if not self._synced:
            return f"no answer to *IDN? ({SYNC}) sent after it within {self.probe_timeout:g} s"
        try:
            idn = self.dut.transport.query("*IDN?")
        except Exception as err:  # a timeout or a dropped session: not answering
            return f"*IDN? through the bench's VISA session failed: {err}"
        return None if idn == self.idn else f"*IDN? answered {idn!r}, not {self.idn!r}"

    def judge(self, example: Example) -> Outcome:
        try:
            codes = self._errors()
        except (HilError, ValueError) as err:
            return Outcome(f"SYSTem:ERRor? failed: {err}", error_ok=False)
        shown = ", ".join(str(c) for c in codes) or "an empty error queue"
        if not example.must_error:
            return Outcome(shown)
        return Outcome(
            f"SYSTem:ERRor? gave {shown}", error_ok=any(c in COMMAND_ERRORS for c in codes)
        )

    def _errors(self) -> list[int]:
        codes: list[int] = []
        for _ in range(QUEUE_READS):
            answer = self.dut.transport.query(":SYSTem:ERRor?")
            code = int(answer.split(",", 1)[0])
            if code == 0:
                break
            codes.append(code)
        return codes

    def restart(self) -> None:
        self._close_socket()
        self.dut.restart()
        self._attach()

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        self._close_socket()
