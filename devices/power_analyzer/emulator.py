"""An emulated WT300-series power analyzer: an SCPI server on a loopback socket.

The bench reaches it through pyvisa-py as ``TCPIP::127.0.0.1::<port>::SOCKET``,
the same code path as a LAN instrument in the lab. Each input element
measures what the bench wired to its channel (one appliance, or the
household feed) under the bench's supply, which is an input of this emulator
(``supply_v``, ``supply_hz``, ``supply_thd``, ``supply_crest_factor``) so a
plan can disturb it. Data are refreshed every ``:RATE`` interval (of emulated
time) by a worker thread, and ``:NUMeric:NORMal:VALue?`` answers the newest
update, as the instrument does.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from devices.power_analyzer.definition import element_count, load_map
from devices.power_analyzer.model import FUNCTIONS, Element
from hil.bench.registry import EmulatorContext
from hil.emulation.base import Emulator
from hil.emulation.physics import PowerSource, Supply
from hil.emulation.tcp import LineServer
from hil.errors import ConfigError, EmulatorError
from hil.scpi.server import (
    Call,
    ScpiError,
    ScpiServer,
    format_nr3,
    match_choice,
    parse_bool,
    parse_number,
)

MODES = ("RMS", "VMEan", "DC")
# query answers name functions by their short form (LAMBDA -> LAMB), as the WT310 does
SHORT = {f.upper(): f.rstrip("abcdefghijklmnopqrstuvwxyz") for f in FUNCTIONS}
MAX_ITEMS = 255
POLL_S = 0.05  # how long the accept loop blocks, so it notices stopping quickly
MIN_PERIOD_S = 0.005  # at high time scales, update no faster than this (wall clock)
PRESET = ["U", "I", "P", "S", "Q", "LAMBDA", "PHI", "FU", "FI", "UPPEAK", "UMPEAK", "IPPEAK"]
PRESET += ["IMPEAK", "PPPEAK", "PMPEAK"]  # the WT310's preset pattern: 15 items


INPUT_BUFFER = 1024  # bytes of one program message the hangs_on_long_input defect survives


class _NoSyntaxErrors(ScpiServer):
    """The silent_syntax_error defect: -102 never reaches the error queue."""

    def push_error(self, code: int, text: str | None = None) -> None:
        if code != -102:
            super().push_error(code, text)


SUPPLY_INPUTS = {
    "supply_v": "voltage_v",
    "supply_hz": "frequency_hz",
    "supply_thd": "thd_percent",
    "supply_crest_factor": "crest_factor",
}


class PowerAnalyzerEmulator(Emulator):
    """WT300-series analyzer (1 to 3 elements); see README.md for the command set."""

    DEFECTS: ClassVar[Mapping[str, str]] = {
        "stuck_reading": ":NUMeric:NORMal:VALue? always answers the first reading it gave",
        "offset_error": "active power P (and so WP and LAMBDA) reads 0.2 W too high",
        "drop_after_malformed": "stops answering anything after a malformed or unknown header",
        "no_error_queue": 'SYSTem:ERRor? always answers 0,"No error"',
        "auto_range_only": "accepts fixed current ranges and AUTO OFF without an error, "
        "but keeps auto-ranging (its AUTO? answer says so)",
        "no_thd": "UTHD and ITHD always read NaN (no harmonic measurement)",
        "hangs_on_long_input": "stops answering anything after a program message longer than "
        f"{INPUT_BUFFER} bytes (its input buffer overflows)",
        "silent_syntax_error": "a syntax error (-102: a malformed header, an empty unit) is "
        "not queued: SYSTem:ERRor? has nothing to say about it",
    }
    INPUTS: ClassVar[Mapping[str, str]] = {
        "supply_v": "V",
        "supply_hz": "Hz",
        "supply_thd": "%",
        "supply_crest_factor": "",
    }

    def __init__(
        self,
        name: str,
        *,
        source: PowerSource | None = None,
        sources: Mapping[int, PowerSource] | None = None,
        defects: Iterable[str] = (),
        time_scale: float = 1.0,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, defects=defects, time_scale=time_scale, settings=settings)
        scpi_map = load_map()
        try:
            count = element_count(self.settings)
        except ConfigError as err:
            raise EmulatorError(str(err), device=name) from None
        wired = {1: source} if source is not None else {}
        wired.update(sources or {})
        self.supply = Supply(voltage_v=float(self.settings.get("supply_v", 230.0)))
        seed = self.settings.get("seed", zlib.crc32(name.encode()))
        rng = random.Random(seed)
        ranges = {int(cf): list(r) for cf, r in scpi_map.current_ranges.items()}
        vranges = {int(cf): list(r) for cf, r in scpi_map.voltage_ranges.items()}
        self.rates = list(scpi_map.update_rates)
        self.elements = [
            Element(
                wired.get(n),
                random.Random(rng.random()),
                ranges,
                vranges,
                offset_w=0.2 if self.has("offset_error") else 0.0,
                reports_thd=not self.has("no_thd"),
            )
            for n in range(1, count + 1)
        ]
        for e in self.elements:
            e.reset()
        self.items: list[tuple[str, int]] = []
        self.number = len(PRESET)
        self._reset_items()
        serial = str(self.settings.get("serial", "C2QD12345"))
        instrument = scpi_map.instrument
        model = instrument.models[count]
        idn = f"{instrument.manufacturer},{model},{serial},F1.03"
        server = _NoSyntaxErrors if self.has("silent_syntax_error") else ScpiServer
        self.scpi = server(idn, on_reset=self._reset)
        self._lock = threading.Lock()  # element state: updater thread vs socket handlers
        self._first_reading: str | None = None
        self._muted = False
        self._server: LineServer | None = None
        self._register()
        if self.has("drop_after_malformed"):
            self.scpi.add_error_listener(self._mute_on_command_error)

    # --- lifecycle --------------------------------------------------------------------

    @property
    def element(self) -> Element:
        """Element 1 (the only one of a WT310)."""
        return self.elements[0]

    def _start(self) -> None:
        server = LineServer(self._reply)
        server.timeout = POLL_S
        self._server = server
        self.endpoint = {"resource": f"TCPIP::127.0.0.1::{server.port}::SOCKET"}
        with self._lock:
            self._update_all(0.0)  # data exist from the first query on
        self.spawn(self._serve, "scpi")
        self.spawn(self._run_updates, "update")

    def _serve(self) -> None:
        server = self._server
        assert server is not None
        while not self.stopping.is_set():
            server.handle_request()  # bounded by server.timeout

    def _run_updates(self) -> None:
        last = time.monotonic()
        # time_scale = wall seconds per plan second (0.1: a 60 s measurement takes
        # 6 s), so emulated instrument time runs 1/time_scale faster
        while not self.stopping.wait(max(self.element.rate_s * self.time_scale, MIN_PERIOD_S)):
            now = time.monotonic()
            with self._lock:
                self._update_all((now - last) / self.time_scale)
            last = now

    def _update_all(self, dt_s: float) -> None:
        for e in self.elements:
            e.update(self.supply, dt_s)

    def _stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        # LineServer.stop() waits for serve_forever(); this server runs handle_request()
        server.stopping.set()
        server.drop_connections()
        server.server_close()

    def _apply_input(self, name: str, value: float) -> None:
        if value < 0:
            raise EmulatorError(f"{name} must be >= 0, got {value:g}", device=self.name)
        with self._lock:
            self.supply = dataclasses.replace(self.supply, **{SUPPLY_INPUTS[name]: float(value)})

    @property
    def supply_v(self) -> float:
        return self.supply.voltage_v

    # --- read-only views for tests ----------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Settings, integrator and newest data (element 1's; ``elements`` has every one)."""
        with self._lock:
            e = self.element
            return {
                "mode": e.mode,
                "crest_factor": e.crest_factor,
                "current_auto": e.current_auto,
                "current_range": e.current_range,
                "voltage_auto": e.voltage_auto,
                "voltage_range": e.voltage_range,
                "update_rate": e.rate_s,
                "items": list(self.items[: self.number]),
                "integration": e.integrator.state,
                "energy_wh": e.integrator.wp_wh,
                "integration_time_s": e.integrator.time_s,
                "supply_v": self.supply.voltage_v,
                "supply": dataclasses.asdict(self.supply),
                "data": dict(e.data),
                "elements": [dict(x.data) for x in self.elements],
                "muted": self._muted,
                "errors": self.scpi.errors,
            }

    @property
    def energy_wh(self) -> float:
        with self._lock:
            return self.element.integrator.wp_wh

    # --- the SCPI side ----------------------------------------------------------------

    def _reply(self, line: str) -> str | None:
        if len(line.encode()) > INPUT_BUFFER and self.has("hangs_on_long_input"):
            self._muted = True
        if self._muted:
            return None
        answer = self.scpi.handle_line(line)
        return None if self._muted else answer

    def _mute_on_command_error(self, code: int, text: str) -> None:
        if -200 < code <= -100:
            self._muted = True

    def _reset(self) -> None:
        with self._lock:
            for e in self.elements:
                e.reset()
            self._reset_items()

    def _reset_items(self) -> None:
        self.items = [(f, 1) for f in PRESET] + [("NONE", 1)] * (MAX_ITEMS - len(PRESET))
        self.number = len(PRESET)

    def _register(self) -> None:
        on = self.scpi.register
        on(":INPut:MODE", self._set_mode)
        on(":INPut:MODE?", lambda c: self.element.mode)
        on(":INPut:CFACtor", self._set_crest_factor)
        on(":INPut:CFACtor?", lambda c: str(self.element.crest_factor))
        on(":INPut:CURRent:AUTO", self._set_current_auto)
        on(":INPut:CURRent:AUTO?", lambda c: str(int(self.element.current_auto)))
        on(":INPut:CURRent[:RANGe]", self._set_current_range)
        on(":INPut:CURRent[:RANGe]?", lambda c: format_nr3(self.element.current_range))
        on(":INPut:VOLTage:AUTO", self._set_voltage_auto)
        on(":INPut:VOLTage:AUTO?", lambda c: str(int(self.element.voltage_auto)))
        on(":INPut:VOLTage[:RANGe]", self._set_voltage_range)
        on(":INPut:VOLTage[:RANGe]?", lambda c: format_nr3(self.element.voltage_range))
        on(":RATE", self._set_rate)
        on(":RATE?", lambda c: format_nr3(self.element.rate_s))
        on(":NUMeric[:NORMal]:ITEM<n>", self._set_item)
        on(":NUMeric[:NORMal]:ITEM<n>?", self._get_item)
        on(":NUMeric[:NORMal]:NUMBer", self._set_number)
        on(":NUMeric[:NORMal]:NUMBer?", lambda c: str(self.number))
        on(":NUMeric[:NORMal]:VALue?", self._values)
        for command in ("RESet", "STARt", "STOP"):
            on(f":INTEGrate:{command}", self._integrate)
        on(":INTEGrate:STATe?", lambda c: self.element.integrator.state)
        if self.has("no_error_queue"):
            on(":SYSTem:ERRor[:NEXT]?", lambda c: '0,"No error"', replace=True)

    def _set_all(self, **values: Any) -> None:
        with self._lock:
            for e in self.elements:
                for key, value in values.items():
                    setattr(e, key, value)

    def _set_mode(self, call: Call) -> None:
        self._set_all(mode=match_choice(call.one(), MODES))

    def _set_crest_factor(self, call: Call) -> None:
        cf = parse_number(call.one())
        if cf not in (3, 6):
            raise ScpiError(-222)
        with self._lock:
            for e in self.elements:
                e.set_crest_factor(int(cf))

    def _set_current_auto(self, call: Call) -> None:
        auto = parse_bool(call.one())
        if self.has("auto_range_only"):
            return  # acknowledged, and ignored
        self._set_all(current_auto=auto)

    def _set_current_range(self, call: Call) -> None:
        value = parse_number(call.one(), "A")
        ranges = self.element.ranges[self.element.crest_factor]
        match = _match_range(ranges, value)
        if self.has("auto_range_only"):
            return
        # choosing a range leaves auto-ranging
        self._set_all(current_range=match, current_auto=False)

    def _set_voltage_auto(self, call: Call) -> None:
        self._set_all(voltage_auto=parse_bool(call.one()))

    def _set_voltage_range(self, call: Call) -> None:
        value = parse_number(call.one(), "V")
        match = _match_range(self.element.voltage_ranges[self.element.crest_factor], value)
        self._set_all(voltage_range=match, voltage_auto=False)

    def _set_rate(self, call: Call) -> None:
        value = parse_number(call.one(), "S")
        match = [r for r in self.rates if abs(r - value) < 1e-9]
        if not match:
            raise ScpiError(-222)
        self._set_all(rate_s=match[0])

    def _item_index(self, call: Call) -> int:
        n = call.suffixes[-1]
        if not 1 <= n <= MAX_ITEMS:
            raise ScpiError(-114, "Header suffix out of range")
        return n - 1

    def _set_item(self, call: Call) -> None:
        index = self._item_index(call)
        if not call.params:
            raise ScpiError(-109)
        if len(call.params) > 2:
            raise ScpiError(-108)
        function = match_choice(call.params[0], [*FUNCTIONS, "NONE"])
        element = parse_number(call.params[1]) if len(call.params) > 1 else 1.0
        if element != int(element) or not 1 <= element <= len(self.elements):
            raise ScpiError(-222)  # no such input element on this model
        self.items[index] = (function, int(element))

    def _get_item(self, call: Call) -> str:
        function, element = self.items[self._item_index(call)]
        if function in ("NONE", "TIME"):
            return function
        return f"{SHORT[function]},{element}"

    def _set_number(self, call: Call) -> None:
        n = parse_number(call.one())
        if n != int(n) or not 1 <= n <= MAX_ITEMS:
            raise ScpiError(-222)
        self.number = int(n)

    def _values(self, call: Call) -> str:
        if len(call.params) > 1:
            raise ScpiError(-108)
        if self.has("stuck_reading") and self._first_reading is not None:
            return self._first_reading
        with self._lock:
            data = [dict(e.data) for e in self.elements]
        wanted = range(self.number)
        if call.params:
            n = parse_number(call.params[0])
            if n != int(n) or not 1 <= n <= MAX_ITEMS:
                raise ScpiError(-222)
            wanted = range(int(n) - 1, int(n))
        nan = float("nan")
        answer = ",".join(
            format_nr3(data[self.items[i][1] - 1].get(self.items[i][0], nan)) for i in wanted
        )
        if self._first_reading is None:
            self._first_reading = answer
        return answer

    def _integrate(self, call: Call) -> None:
        call.none()
        command = call.header.rsplit(":", 1)[-1]  # RESET, START or STOP
        with self._lock:
            integ = self.element.integrator
            if command == "START" and integ.state == "START":
                raise ScpiError(-221, "Settings conflict; integration already running")
            if command == "STOP" and integ.state != "START":
                raise ScpiError(-221, "Settings conflict; integration is not running")
            for e in self.elements:  # one integrator start/stop for every element
                if command == "RESET":
                    if integ.state == "START":
                        raise ScpiError(-221, "Settings conflict; stop integration before reset")
                    e.integrator = type(integ)()
                else:
                    e.integrator.state = command


def _match_range(ranges: list[float], value: float) -> float:
    match = [r for r in ranges if abs(r - value) <= 1e-9 * max(r, 1.0)]
    if not match:
        raise ScpiError(-222)
    return match[0]


def create(ctx: EmulatorContext) -> PowerAnalyzerEmulator:
    """The emulator factory: element n measures ``wiring["n"]`` (an appliance, or the
    household feed, ``hil.emulation.physics.HouseholdFeed``)."""
    try:
        count = element_count(ctx.settings)
    except ConfigError as err:
        raise EmulatorError(str(err), device=ctx.name) from None
    channels = [str(n) for n in range(1, count + 1)]
    extra = sorted(set(ctx.wiring) - set(channels))
    if extra:
        raise EmulatorError(
            f"this analyzer has {count} input element(s), wired as {channels}; cannot wire "
            f"channels {extra} (the device setting elements says how many it has)",
            device=ctx.name,
        )
    sources: dict[int, PowerSource] = {}
    for channel, source in ctx.wiring.items():
        if not isinstance(source, PowerSource):
            raise EmulatorError(
                f"channel {channel!r} is wired to {getattr(source, 'name', source)!r} "
                f"({type(source).__name__}), which does not implement "
                "PowerSource.electrical_state()",
                device=ctx.name,
            )
        sources[int(channel)] = source
    return PowerAnalyzerEmulator(
        ctx.name,
        sources=sources,
        defects=ctx.defects,
        time_scale=ctx.time_scale,
        settings=ctx.settings,
    )
