"""The appliance side of the MIoT link: an emulated MCU on a pty.

The base class does everything the protocol asks of any appliance: the boot
handshake, ``get_down`` polling, executing downlinks with access, type and
range checks, and rate-limited reports. A device subclass adds its physics
through three hooks: ``_property_written``, ``_on_action`` and ``_tick``,
and changes its own state with ``update`` and ``emit``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from hil.emulation.base import Emulator
from hil.emulation.pty import PtyLink
from hil.miot.codec import MAX_LINE_BYTES, Bare, LineError, Value, decode_line, encode_line
from hil.miot.mcu_methods import (
    ERR_BAD_LINE,
    ERR_UNKNOWN_COMMAND,
    ERR_UNKNOWN_METHOD,
    NET_STATES,
    ActionRefused,
    DownlinkMethods,
    Key,
)
from hil.miot.spec import MiotSpec, PropertySpec
from hil.miot.wire import WIRE_INPUT, WireFault
from hil.transports import selector_loop
from hil.transports.selector_loop import SelectorLoop, TimerHandle

__all__ = ["NET_STATES", "ROBUSTNESS_DEFECTS", "ActionRefused", "MiotMcuEmulator"]

_REPORTS_PER_LINE = 20  # 60 parameters: below the 64-parameter limit
LOOP_ROLE = "miot-mcu"  # every MCU of the process runs on this one selector loop

# Robustness defects every MIoT MCU can carry, whatever the appliance: the
# protocol fuzzer (hil/explore/fuzz/miot.py) is the check that finds them.
ROBUSTNESS_DEFECTS: Mapping[str, str] = {
    "hangs_on_long_line": "stops polling and answering after a line longer than 512 bytes "
    "(its receive buffer overflows)",
}


class MiotMcuEmulator(DownlinkMethods, Emulator):
    """An appliance MCU speaking MIoT serial on the master side of a pty.

    ``endpoint`` is ``{"url": <pty slave path>}``; the bench opens that path
    with pyserial exactly as it would open ``/dev/ttyUSB0``. Every appliance
    has the bench input ``serial_link`` (a fault on the wire from the module,
    see hil/miot/wire.py) besides its own ``INPUTS``.

    The MCU is driven by events on the process's shared selector loop (bytes
    from the bench, its poll and tick timers), not a thread of its own, so its
    hooks must not block; a class whose hooks wait (the phone waits for its
    hub) sets ``OWN_LOOP`` and gets a loop thread of its own.
    """

    INPUTS: ClassVar[Mapping[str, str]] = {WIRE_INPUT: ""}
    DEFECTS: ClassVar[Mapping[str, str]] = ROBUSTNESS_DEFECTS

    BOOT_RETRY_S = 0.2
    POLL_PERIOD_S = 0.2  # the recommended period; the rule allows 0.1–0.2 s
    CATCH_UP = 0.9  # after a late poll the next may come this fraction of a period early
    # 1 s per property and 3 events per second are the platform's rules; the
    # margin keeps us inside them as judged on the module's capture timestamps,
    # which a busy bench's reader thread may stamp a little late
    REPORT_INTERVAL_S = 1.1
    EVENT_WINDOW_S = 1.1
    EVENTS_PER_WINDOW = 3
    TICK_S = 0.02  # physics resolution
    OWN_LOOP: ClassVar[bool] = False  # True when a hook may block (see the class doc)

    def __init__(
        self,
        name: str,
        spec: MiotSpec,
        *,
        defects: Iterable[str] = (),
        time_scale: float = 1.0,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, defects=defects, time_scale=time_scale, settings=settings)
        self.spec = spec
        self.poll_period = float(self.settings.get("poll_period_s", self.POLL_PERIOD_S))
        self.report_interval = self.REPORT_INTERVAL_S
        self.unknown_method_code = ERR_UNKNOWN_METHOD  # a defect may answer with another
        self.wire = WireFault(name)
        self._lock = threading.RLock()
        self._values: dict[Key, Value] = {
            (s.siid, p.piid): p.default() for s, p in spec.iter_properties()
        }
        self._names: dict[str, Key] = {
            f"{s.name}.{p.name}": (s.siid, p.piid) for s, p in spec.iter_properties()
        }
        self._stage = "model"  # → "mcu_version" → "running"
        self._net = "offline"
        self._pending: dict[Key, Value] = {}
        self._last_report: dict[Key, float] = {}
        self._events: deque[tuple[int, int, tuple[Value, ...]]] = deque()
        self._event_times: deque[float] = deque()
        self._link: PtyLink | None = None
        self._loop: SelectorLoop | None = None
        self._timer: TimerHandle | None = None
        self._poked = False  # a step is queued for what another thread changed
        self._rx = bytearray()
        self._ticks = type(self)._tick is not MiotMcuEmulator._tick  # physics to advance
        self._next_send = 0.0
        self.polls = 0  # get_down lines sent, for tests and state()
        self.hung = False  # the hangs_on_long_line defect struck: deaf and mute for good

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # an appliance's own inputs come on top of the wire every MIoT MCU has
        cls.INPUTS = {**cls.INPUTS, WIRE_INPUT: ""}
        # and so do the robustness defects, injectable on any appliance
        cls.DEFECTS = {**cls.DEFECTS, **ROBUSTNESS_DEFECTS}

    # ----- lifecycle

    def _start(self) -> None:
        self._link = PtyLink()
        self.endpoint = {"url": self._link.path}
        own = self.OWN_LOOP
        self._loop = SelectorLoop(f"mcu-{self.name}") if own else selector_loop.acquire(LOOP_ROLE)
        self._loop.add_reader(self._link.master, self._on_readable)
        self._loop.call_soon(self._step)

    def _stop(self) -> None:
        loop, link = self._loop, self._link
        if loop is not None:
            loop.run(self._detach)  # once it returns, the loop will not touch the pty again
            selector_loop.release(loop)
            self._loop = None
        if link is not None:
            link.close()

    def _detach(self) -> None:
        """Loop thread: no more timers or reads for this MCU."""
        self._set_timer(None)
        if self._loop is not None and self._link is not None:
            self._loop.remove_reader(self._link.master)

    # ----- what subclasses and tests use

    def value(self, name: str) -> Value:
        """The current value of property ``"service.property"``."""
        with self._lock:
            return self._values[self._names[name]]

    def update(self, name: str, value: Value) -> None:
        """Change a property from inside the appliance; reported if it notifies."""
        key = self._names[name]
        prop = self.spec.prop(*key)
        assert prop is not None
        self._store(key, prop, prop.normalize(value))

    def republish(self, name: str) -> None:
        """Report property ``name`` again although it did not change (a heartbeat report)."""
        key = self._names[name]
        with self._lock:
            self._pending[key] = self._values[key]
        self._poke()

    def set_input(self, name: str, value: float) -> None:
        """The wire fault is the base's; every other input is the appliance's own."""
        if name == WIRE_INPUT:
            self.wire.set(value)
            return
        super().set_input(name, value)

    def emit(self, name: str, **args: Value) -> None:
        """Queue ``event_occured`` for event ``"service.event"`` (≤ 3 per second)."""
        for service, event in self.spec.iter_events():
            if f"{service.name}.{event.name}" == name:
                flat: list[Value] = []
                for piid in event.arguments:
                    prop = service.prop(piid)
                    if prop is not None and prop.name in args:
                        flat += [piid, prop.normalize(args[prop.name])]
                with self._lock:
                    self._events.append((service.siid, event.eiid, tuple(flat)))
                self._poke()
                return
        raise KeyError(name)

    def state(self) -> dict[str, Any]:
        """A read-only snapshot for tests: boot stage, network state, values."""
        with self._lock:
            return {
                "stage": self._stage,
                "net": self._net,
                "poll_period_s": self.poll_period,
                "polls": self.polls,
                "wire": self.wire.state,
                "values": {n: self._values[k] for n, k in self._names.items()},
            }

    @property
    def booted(self) -> bool:
        return self._stage == "running"

    # ----- hooks

    def _property_written(self, name: str, old: Value, new: Value) -> None:
        """Called on the MCU thread after the module wrote a property."""

    def _on_action(self, name: str, args: Mapping[str, Value]) -> Mapping[str, Value]:
        """Run action ``"service.action"``; return its out-properties by name."""
        raise ActionRefused(-4004)

    def _tick(self, now: float) -> None:
        """Advance the physics; ``now`` is ``time.monotonic()``."""

    # ----- the MCU loop

    def _on_readable(self) -> None:
        """Loop thread: bytes from the bench (a hung MCU still drains them, deaf)."""
        data = self._link.read_available() if self._link is not None else None
        if data is None:
            self._detach()
            return
        if self.hung or not data:
            return
        buf = self._rx
        buf += self.wire.carry(data)
        while (idx := buf.find(b"\r")) >= 0 and not self.hung:
            raw = bytes(buf[:idx]).strip(b"\n")
            del buf[: idx + 1]
            if len(raw) > MAX_LINE_BYTES and self.has("hangs_on_long_line"):
                self.hung = True
                break
            self._receive(raw)
        if len(buf) > MAX_LINE_BYTES:
            buf.clear()
            if self.has("hangs_on_long_line"):
                self.hung = True
            else:
                self._error("line longer than 512 bytes", ERR_BAD_LINE)
        self._step()

    def _poke(self) -> None:
        """Another thread changed what the MCU reports: step at once, not at the next timer."""
        loop = self._loop
        if loop is None or self._poked or loop.on_loop_thread:  # on the loop a step follows
            return
        self._poked = True
        loop.call_soon(self._step)

    def _step(self) -> None:
        """Loop thread: send what is due, advance the physics, report; sleep till the next due."""
        self._poked = False
        if self.hung or self.stopping.is_set():
            self._set_timer(None)  # a hung MCU stops polling, answering and reporting
            return
        now = time.monotonic()
        if now >= self._next_send:
            self._send_periodic(now)
        wake = math.inf
        if self._ticks:
            self._tick(now)
            wake = now + self.TICK_S
        if self._stage == "running":
            wake = min(wake, self._flush_reports(now))
        self._set_timer(min(wake, self._next_send))  # read after _tick: a reboot resets it

    def _set_timer(self, when: float | None) -> None:
        timer, loop = self._timer, self._loop
        if timer is not None and not timer.cancelled and timer.when == when:
            return
        if timer is not None:
            timer.cancel()
        self._timer = None if when is None or loop is None else loop.call_at(when, self._step)

    def _send_periodic(self, now: float) -> None:
        if self._stage == "model":
            self._send("model", Bare(self.spec.model))
            self._next_send = now + self.BOOT_RETRY_S
        elif self._stage == "mcu_version":
            self._send("mcu_version", Bare(self.spec.mcu_version))
            self._next_send = now + self.BOOT_RETRY_S
        else:
            self._send("get_down")
            self.polls += 1
            # on a fixed grid, so a late wake-up does not stretch the period for good;
            # but never sooner than 0.9 periods, so catching up keeps within the rule
            self._next_send = max(
                self._next_send + self.poll_period, now + self.CATCH_UP * self.poll_period
            )

    def _send(self, command: str, *args: Value) -> None:
        link = self._link
        if link is not None:
            link.write(encode_line(command, *args).encode() + b"\r")

    def _error(self, message: str, code: int) -> None:
        self._send("error", message, code)

    def _receive(self, raw: bytes) -> None:
        if not raw:
            return
        try:
            line = decode_line(raw.decode("utf-8"))
        except (LineError, UnicodeDecodeError) as err:
            self._error(f"malformed line: {err}", ERR_BAD_LINE)
            return
        if line.command == "ok":
            if self._stage == "model":
                self._stage, self._next_send = "mcu_version", 0.0
            elif self._stage == "mcu_version":
                self._stage, self._next_send = "running", 0.0
        elif line.command == "error":
            pass  # a refused report or boot line: boot lines are retried anyway
        elif line.command == "down":
            self._downlink(line)
        else:
            self._error(f"unknown command {line.command}", ERR_UNKNOWN_COMMAND)

    # ----- state and reports

    def _name_of(self, siid: int, piid: int) -> str:
        return next(n for n, k in self._names.items() if k == (siid, piid))

    def _store(self, key: Key, prop: PropertySpec, value: Value) -> Value:
        with self._lock:
            old = self._values[key]
            self._values[key] = value
            changed = prop.notifies and (value != old or type(value) is not type(old))
            if changed:
                self._pending[key] = value  # the platform keeps only the last value anyway
        if changed:
            self._poke()
        return old

    def _flush_reports(self, now: float) -> float:
        """Send the reports and events due; returns when the next one falls due."""
        if not self._pending and not self._events:
            return math.inf  # the idle case, every poll: whoever adds one pokes the loop
        with self._lock:
            due = [
                k
                for k in self._pending
                if now - self._last_report.get(k, -1e9) >= self.report_interval
            ]
            words: list[Value] = []
            for key in due:
                words += [key[0], key[1], self._pending.pop(key)]
                self._last_report[key] = now
            while self._event_times and now - self._event_times[0] >= self.EVENT_WINDOW_S:
                self._event_times.popleft()
            events = []
            while self._events and len(self._event_times) < self.EVENTS_PER_WINDOW:
                events.append(self._events.popleft())
                self._event_times.append(now)
            later = [self._last_report.get(k, now) + self.report_interval for k in self._pending]
            if self._events:  # the window is full: the next may go when its oldest leaves
                later.append(self._event_times[0] + self.EVENT_WINDOW_S)
        step = 3 * _REPORTS_PER_LINE
        for i in range(0, len(words), step):
            self._send("properties_changed", *words[i : i + step])
        for siid, eiid, flat in events:
            self._send("event_occured", siid, eiid, *flat)
        return min(later, default=math.inf)
