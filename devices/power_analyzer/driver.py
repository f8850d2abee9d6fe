"""Driver for a WT300-series power analyzer (1 to 3 elements) over VISA/SCPI.

Every reading is one ``:NUMeric:NORMal:VALue?`` query whose answer lists the
items configured on construction (every signal of every element); settings
read back with their own queries. Observations are parsed back out of the
transport's capture, so their timestamps are those of the wire.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devices.power_analyzer.definition import (
    Defaults,
    element_count,
    load_map,
    signal_name,
    split_signal,
)
from hil.bench.definition import DeviceDefinition
from hil.bench.driver import Sample
from hil.bench.registry import DriverContext
from hil.errors import ConfigError, DeviceLost, ProtocolError
from hil.measure.iec62301 import ConditionSample
from hil.scpi.server import INF_CODE, NAN_CODE, parse_nr3
from hil.transports.capture import Record
from hil.transports.visa import ScpiExchange, VisaTransport

VALUE_QUERY = ":NUMeric:NORMal:VALue?"
STATE_QUERY = ":INTEGrate:STATe?"
ERROR_QUERY = "SYSTem:ERRor?"
INTEGRATE = {"RESET": ":INTEGrate:RESet", "START": ":INTEGrate:STARt", "STOP": ":INTEGrate:STOP"}
MAX_ERRORS = 64  # bounds draining a queue that never empties (a broken instrument)
# the NR3 codes a VALue? answer uses for "no data" and "over range", as floats
# (parse_nr3's meaning, looked up once per field instead of re-parsing the text)
_NR3_CODES = {
    NAN_CODE: math.nan,
    -NAN_CODE: math.nan,
    INF_CODE: math.inf,
    -INF_CODE: -math.inf,
}


def _parse_error(text: str, device: str) -> tuple[int, str]:
    code, _, message = text.partition(",")
    try:
        return int(code), message.strip().strip('"')
    except ValueError:
        raise ProtocolError(
            f'{ERROR_QUERY} answered {text!r}; expected <code>,"<message>"', device=device
        ) from None


# the element quantities an IEC 62301 sample holds, by the map's signal names
CONDITION_SIGNALS = {
    "power_w": "P",
    "voltage_v": "U",
    "current_a": "I",
    "power_factor": "LAMBDA",
    "frequency_hz": "FREQ",
    "voltage_crest_factor": "CFU",
    "current_crest_factor": "CFI",
    "voltage_thd_percent": "UTHD",
}


class PowerAnalyzerDriver:
    """A WT300-series analyzer on an open ``VisaTransport``; a ``PowerMeter`` and an
    IEC 62301 ``ConditionMeter``."""

    def __init__(
        self,
        name: str,
        transport: VisaTransport,
        definition: DeviceDefinition,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.definition = definition
        self.transport = transport
        scpi_map = load_map()
        self._map = scpi_map
        try:
            self._elements = element_count(settings)
        except ConfigError as err:
            raise ConfigError(f"{name}: {err}") from None
        # VALue? answers these (signal, function, element), in this order
        self._items = [
            (signal_name(s, n), m.function, n)
            for n in range(1, self._elements + 1)
            for s, m in scpi_map.signals.items()
        ]
        self._states = dict(scpi_map.integration_states)
        # settings read back with their own query: query → signal
        self._queries = {STATE_QUERY: "INTEGRATION"}
        self._queries.update({q.query: n for n, q in scpi_map.setting_signals.items()})
        self._query_of_signal = {s: q for q, s in reversed(self._queries.items())}
        self._item_names = [s for s, _, _ in self._items]
        self._item_index = {s: i for i, s in enumerate(self._item_names)}
        self._lock = threading.RLock()
        self._seen_seq = 0  # capture records already turned into samples
        self._history: dict[str, list[Sample]] = {s: [] for s in definition.signals}
        self._closed = False
        self._configure(dict(settings or {}), scpi_map.defaults)

    # --- setup ------------------------------------------------------------------------

    def _configure(self, settings: dict[str, Any], defaults: Defaults) -> None:
        rate = float(settings.get("update_rate", defaults.update_rate))
        crest_factor = int(settings.get("crest_factor", defaults.crest_factor))
        current_range = float(settings.get("current_range", defaults.current_range))
        voltage_range = float(settings.get("voltage_range", defaults.voltage_range))
        self.transport.write("*RST")
        self.transport.query("*OPC?")  # *RST finishes before the settings below land
        self.transport.write(f":INPut:MODE {defaults.mode}")
        self.transport.write(f":INPut:CFACtor {crest_factor}")
        # IEC 62301: a fixed range (auto-ranging misses current pulses); naming the range
        # keeps the result independent of where auto-ranging happened to be
        self.transport.write(":INPut:CURRent:AUTO OFF")
        self.transport.write(f":INPut:CURRent:RANGe {current_range:g}")
        self.transport.write(":INPut:VOLTage:AUTO OFF")
        self.transport.write(f":INPut:VOLTage:RANGe {voltage_range:g}")
        self.transport.write(f":RATE {_rate(rate)}")
        items = ";".join(
            f"ITEM{n} {function},{element}"
            for n, (_, function, element) in enumerate(self._items, 1)
        )
        # one line, later headers continue from :NUMeric:NORMal (the SCPI current path)
        self.transport.write(f":NUMeric:NORMal:{items}")
        self.transport.write(f":NUMeric:NORMal:NUMber {len(self._items)}")
        self._check_errors("configuring the analyzer")

    def _check_errors(self, doing: str) -> None:
        errors = self.errors()
        if errors:
            listed = "; ".join(f'{code},"{text}"' for code, text in errors)
            raise ProtocolError(
                f"instrument reported errors while {doing}: {listed}", device=self.name
            )

    # --- the Driver protocol ----------------------------------------------------------

    def identity(self) -> dict[str, str]:
        answer = self.transport.query("*IDN?")
        parts = [p.strip() for p in answer.split(",")]
        if len(parts) != 4:
            raise ProtocolError(
                f"*IDN? answered {answer!r}; expected manufacturer,model,serial,firmware",
                device=self.name,
            )
        return dict(zip(("manufacturer", "model", "serial", "firmware"), parts, strict=True))

    def read(self, signal: str) -> Sample:
        self._signal(signal)
        with self._lock:
            query = self._query_of_signal.get(signal)
            if query is not None:
                answer, t = self._query(query)
                return Sample(t, self._setting(signal, answer, strict=True))
            # one value wanted: every field is still parsed (a malformed answer fails
            # the same way), but no dict of all of them is built
            numbers, t = self._read_numbers()
            value = numbers[self._item_index[signal]]
            return Sample(t, _NR3_CODES.get(value, value))

    def samples(self, signal: str, since: float) -> list[Sample]:
        self._signal(signal)
        with self._lock:
            self._ingest()
            history = self._history[signal]
            start = bisect.bisect_left(history, since, key=lambda s: s.t)
            return history[max(0, start - 1) :]  # with the last one before `since`

    def stimulate(self, stimulus: str, values: Mapping[str, Any]) -> float:
        info = self.definition.stimulus(stimulus, self.name)
        if info.kind == "input":
            raise ConfigError(
                f"{self.name}.{stimulus} is a bench input, applied by the bench, not the device"
            )
        missing = sorted(set(info.fields) - set(values))
        unknown = sorted(set(values) - set(info.fields))
        if missing or unknown:
            raise ConfigError(
                f"{self.name}.{stimulus} takes fields {sorted(info.fields)}; "
                f"missing {missing}, unknown {unknown}"
            )
        command = self._command(stimulus, values)
        with self._lock:
            t = self.transport.write_at(command)
            self._check_errors(f"applying {stimulus} ({command!r})")
        return t

    def write_evidence(self, directory: Path) -> list[Path]:
        path = Path(directory) / f"{self.name}.scpi.jsonl"
        self.transport.capture.write_jsonl(
            path,
            lambda e: {"command": e.command, "response": e.response, "t_end": round(e.t_end, 6)},
        )
        return [path]

    def check_link(self) -> None:
        if getattr(self.transport, "lost", False) or not self.transport.is_open:
            raise DeviceLost("the VISA session is closed or failed", device=self.name)

    def link_doubt_until(self) -> None:
        """Never in doubt: a closed port or session is seen at once by ``check_link``,
        and a device that stops answering fails its request with a timeout."""
        return None

    def close(self) -> None:
        self._closed = True  # the bench closes the transport itself, after the driver

    # --- conveniences for hand-written tests ------------------------------------------

    def measure_power(self) -> float:
        """Active power P in W, read now."""
        return float(self.read("P").value)

    def measure(self) -> dict[str, float]:
        """Every numeric signal of every element (U, I, P, … WP, U2 …) from one update."""
        with self._lock:
            return self._read_values()[0]

    def read_conditions(self, signal: str) -> ConditionSample:
        """One update of the element whose active power is ``signal`` (``P``, ``P2``…),
        with its supply conditions: an IEC 62301 sample."""
        self._signal(signal)
        split = split_signal(signal, self._elements)
        if split is None or split[0] != "P":
            powers = [signal_name("P", n) for n in range(1, self._elements + 1)]
            raise ConfigError(
                f"{self.name}: IEC 62301 samples are taken of an active power signal "
                f"({', '.join(powers)}), not {signal!r}"
            )
        element = split[1]
        with self._lock:
            values, t = self._read_values()
        fields = {k: values[signal_name(base, element)] for k, base in CONDITION_SIGNALS.items()}
        return ConditionSample(t=t, **fields)

    def power_uncertainty(self, power_w: float) -> float:
        """The specified expanded uncertainty of a power reading (scpi_map.yaml), in W."""
        return self._map.power_uncertainty(power_w)

    def integration(self, command: str) -> float:
        """RESET, START or STOP the energy integrator; returns the capture timestamp."""
        return self.stimulate("integration", {"command": command})

    def errors(self) -> list[tuple[int, str]]:
        """Drain the instrument's error queue, oldest first (empty when all is well)."""
        found: list[tuple[int, str]] = []
        for _ in range(MAX_ERRORS):
            code, text = _parse_error(self.transport.query(ERROR_QUERY), self.name)
            if code == 0:
                return found
            found.append((code, text))
        return found

    def query(self, command: str) -> str:
        """Raw SCPI query (captured like every other exchange)."""
        return self.transport.query(command)

    def write(self, command: str) -> None:
        """Raw SCPI command; changing the ITEM list breaks the driver's parsing."""
        self.transport.write(command)

    # --- internals --------------------------------------------------------------------

    def _signal(self, signal: str) -> None:
        self.definition.signal(signal, self.name)

    def _command(self, stimulus: str, values: Mapping[str, Any]) -> str:
        if stimulus == "integration":
            return INTEGRATE[self._state_name(values["command"])]
        value = values["value"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self.name}.{stimulus} takes a number, got {value!r}")
        if stimulus == "crest_factor":
            if value not in (3, 6):
                raise ConfigError(f"{self.name}.crest_factor must be 3 or 6, got {value!r}")
            return f":INPut:CFACtor {int(value)}"
        if stimulus in ("current_range", "voltage_range"):
            node, unit = ("CURRent", "A") if stimulus == "current_range" else ("VOLTage", "V")
            if value < 0:
                raise ConfigError(f"{self.name}.{stimulus} must be >= 0 {unit} (0 = auto)")
            return f":INPut:{node}:AUTO ON" if value == 0 else f":INPut:{node}:RANGe {value:g}"
        return f":RATE {_rate(float(value))}"

    def _state_name(self, value: Any) -> str:
        for name, code in self._states.items():
            if value in (name, code) and not isinstance(value, bool):
                return name
        raise ConfigError(
            f"{self.name}.integration command must be one of {list(self._states)}, got {value!r}"
        )

    def _query(self, command: str) -> tuple[str, float]:
        return self.transport.query_at(command)

    def _read_values(self) -> tuple[dict[str, float], float]:
        numbers, t = self._read_numbers()
        return self._named(numbers), t

    def _read_numbers(self) -> tuple[list[float], float]:
        """One VALue? answer as its floats, NR3 codes not yet mapped (see _NR3_CODES)."""
        answer, t = self._query(VALUE_QUERY)
        numbers = self._numbers(answer)
        if numbers is None:
            raise ProtocolError(
                f"{VALUE_QUERY} answered {answer!r}; expected {len(self._items)} numbers "
                f"for {self._items}",
                device=self.name,
            )
        return numbers, t

    def _numbers(self, answer: str) -> list[float] | None:
        # parse_nr3 per field without its per-field text checks: float() already reads
        # "NAN" as NaN, so only the two codes remain, mapped where a value is used
        fields = answer.split(",")
        if len(fields) != len(self._item_names):
            return None
        try:
            return [float(f) for f in fields]
        except ValueError:
            return None

    def _named(self, numbers: list[float]) -> dict[str, float]:
        codes = _NR3_CODES
        return {s: codes.get(v, v) for s, v in zip(self._item_names, numbers, strict=True)}

    def _values(self, answer: str) -> dict[str, float] | None:
        numbers = self._numbers(answer)
        return None if numbers is None else self._named(numbers)

    def _setting(self, signal: str, answer: str, strict: bool = False) -> float | None:
        """A setting query's answer as the signal's value (enum names → their numbers)."""
        text = answer.strip().upper()
        value: float | None
        if signal == "INTEGRATION":
            value = self._states.get(text)
        else:
            try:
                value = parse_nr3(text)
            except ValueError:
                value = None
            choices = self._map.setting_signals[signal].choices
            if value is not None and choices and value not in choices.values():
                value = None
        if value is None and strict:
            raise ProtocolError(
                f"{self._query_of(signal)} answered {answer!r}; expected "
                + (f"one of {list(self._states)}" if signal == "INTEGRATION" else "a number"),
                device=self.name,
            )
        return value

    def _query_of(self, signal: str) -> str:
        return self._query_of_signal[signal]

    def _ingest(self) -> None:
        """Turn capture records not seen yet into samples (each record parsed once)."""
        records, self._seen_seq = self.transport.capture.since(self._seen_seq)
        for rec in records:
            self._ingest_one(rec)

    def _ingest_one(self, rec: Record[ScpiExchange]) -> None:
        ex = rec.data
        if ex.response is None:
            return
        if ex.command == VALUE_QUERY:
            values = self._values(ex.response)
            for signal, value in (values or {}).items():
                self._history[signal].append(Sample(rec.t, value))
        elif ex.command in self._queries:
            signal = self._queries[ex.command]
            setting = self._setting(signal, ex.response)
            if setting is not None:
                self._history[signal].append(Sample(rec.t, setting))


def _rate(seconds: float) -> str:
    """``:RATE`` parameter: 250MS, 1S."""
    return f"{round(seconds * 1000)}MS" if seconds < 1 else f"{seconds:g}S"


def create(ctx: DriverContext) -> PowerAnalyzerDriver:
    """The driver factory of the device type."""
    if not isinstance(ctx.transport, VisaTransport):
        raise ConfigError(
            f"device {ctx.name!r}: a power_analyzer needs a visa transport, "
            f"got {type(ctx.transport).__name__}"
        )
    return PowerAnalyzerDriver(ctx.name, ctx.transport, ctx.definition, ctx.settings)
