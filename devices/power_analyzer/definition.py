"""The analyzer's SCPI map (``scpi_map.yaml``) and the definition plans see.

Loading reads one small file and opens nothing else, so plans can be
validated against the analyzer before any instrument is touched. The
definition depends on one device setting, ``elements`` (1 to 3, default 1):
element 1's signals are ``U``, ``P``…, element n's are ``U<n>``, ``P<n>``….
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hil.bench.definition import DeviceDefinition, SignalInfo, StimulusInfo, ValueKind
from hil.errors import ConfigError, DefinitionError
from hil.yamlio import check_spec, load_file, validate

TYPE_NAME = "power_analyzer"
MAP_FILE = Path(__file__).with_name("scpi_map.yaml")
SPEC = 1
# iec62301: reports supply conditions and a specified power uncertainty per element
# (hil.measure.iec62301.ConditionMeter), so a measure step may use method: iec62301
CAPABILITIES = frozenset({"power_meter", "energy_meter", "iec62301"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Instrument(_Strict):
    manufacturer: str
    models: dict[int, str] = Field(min_length=1)


class SignalMap(_Strict):
    function: str
    unit: str | None = None
    description: str = ""


class SettingSignal(_Strict):
    query: str
    unit: str | None = None
    choices: dict[str, int] = Field(default_factory=dict)
    description: str = ""


class Defaults(_Strict):
    mode: Literal["RMS", "VMEAN", "DC"]
    crest_factor: Literal[3, 6]
    current_range: float = Field(gt=0)
    voltage_range: float = Field(gt=0)
    update_rate: float = Field(gt=0)


class PowerUncertainty(_Strict):
    relative: float = Field(gt=0, lt=1)
    absolute_w: float = Field(gt=0)


class Uncertainty(_Strict):
    power: PowerUncertainty


class ScpiMap(_Strict):
    spec: int
    instrument: Instrument
    signals: dict[str, SignalMap]
    integration_states: dict[str, int]
    setting_signals: dict[str, SettingSignal]
    current_ranges: dict[Literal[3, 6], list[float]]
    voltage_ranges: dict[Literal[3, 6], list[float]]
    update_rates: list[float]
    defaults: Defaults
    uncertainty: Uncertainty

    def ranges(self, crest_factor: int) -> list[float]:
        return self.current_ranges[3 if crest_factor == 3 else 6]

    def power_uncertainty(self, power_w: float) -> float:
        """The specified expanded (95 %) uncertainty of a power reading, in W."""
        u = self.uncertainty.power
        return max(u.relative * abs(power_w), u.absolute_w)


@functools.cache
def load_map(path: Path = MAP_FILE) -> ScpiMap:
    """The parsed map (cached: it is read-only and shared by driver and emulator)."""
    data, locs = load_file(path, DefinitionError)
    check_spec(data, locs, SPEC, DefinitionError, "SCPI map")
    return validate(ScpiMap, data, locs, DefinitionError)


def element_count(settings: Mapping[str, Any] | None) -> int:
    """The ``elements`` setting, checked against the models the map knows."""
    value = (settings or {}).get("elements", 1)
    models = load_map().instrument.models
    if isinstance(value, bool) or value not in models:
        raise ConfigError(f"setting elements must be one of {sorted(models)}, got {value!r}")
    return int(value)


def signal_name(base: str, element: int) -> str:
    """``P`` for element 1, ``P2`` for element 2."""
    return base if element == 1 else f"{base}{element}"


def split_signal(name: str, elements: int) -> tuple[str, int] | None:
    """The inverse of ``signal_name`` for numeric signals: ``P2`` → (``P``, 2)."""
    functions = load_map().signals
    if name in functions:
        return name, 1
    base, digit = name[:-1], name[-1:]
    if base in functions and digit.isdigit() and 2 <= int(digit) <= elements:
        return base, int(digit)
    return None


def _setting(name: str, unit: str | None, description: str, **kw: Any) -> StimulusInfo:
    value = SignalInfo("value", unit=unit, description=description, **kw)
    return StimulusInfo(name, "setting", {"value": value}, description)


def _input(name: str, unit: str | None, lo: float, hi: float, description: str) -> StimulusInfo:
    value = SignalInfo("value", unit=unit, minimum=lo, maximum=hi)
    return StimulusInfo(name, "input", {"value": value}, description)


def definition(settings: Mapping[str, Any] | None = None) -> DeviceDefinition:
    """Signals, stimuli and capabilities of the analyzer for its ``elements`` setting."""
    scpi = load_map()
    elements = element_count(settings)
    signals: dict[str, SignalInfo] = {}
    for n in range(1, elements + 1):
        for base, s in scpi.signals.items():
            name = signal_name(base, n)
            text = s.description + (f" (element {n})" if elements > 1 else "")
            signals[name] = SignalInfo(name, unit=s.unit, description=text)
    states = dict(scpi.integration_states)
    signals["INTEGRATION"] = SignalInfo(
        "INTEGRATION", kind="enum", choices=states, description="integrator state"
    )
    for name, q in scpi.setting_signals.items():
        kind: ValueKind = "enum" if q.choices else "number"
        signals[name] = SignalInfo(
            name, kind=kind, unit=q.unit, choices=dict(q.choices), description=q.description
        )
    stimuli = {
        "crest_factor": _setting(
            "crest_factor",
            None,
            "crest factor setting, 3 or 6 (6 for spiky standby currents)",
            choices={"CF3": 3, "CF6": 6},
            minimum=3,
            maximum=6,
        ),
        "current_range": _setting(
            "current_range",
            "A",
            "fixed current range in A; 0 selects auto-ranging",
            minimum=0,
            maximum=max(scpi.ranges(3)),
        ),
        "voltage_range": _setting(
            "voltage_range",
            "V",
            "fixed voltage range in V; 0 selects auto-ranging",
            minimum=0,
            maximum=max(scpi.voltage_ranges[3]),
        ),
        "update_rate": _setting(
            "update_rate",
            "s",
            f"data update interval, one of {scpi.update_rates} s",
            minimum=min(scpi.update_rates),
            maximum=max(scpi.update_rates),
        ),
        "integration": StimulusInfo(
            "integration",
            "action",
            {"command": SignalInfo("command", kind="enum", choices=states)},
            "energy integrator: RESET, START or STOP",
        ),
        "supply_v": _input(
            "supply_v", "V", 0, 300, "mains voltage fed to the measured appliances (bench input)"
        ),
        "supply_hz": _input("supply_hz", "Hz", 40, 70, "mains frequency (bench input)"),
        "supply_thd": _input(
            "supply_thd", "%", 0, 50, "mains voltage THD up to the 13th harmonic (bench input)"
        ),
        "supply_crest_factor": _input(
            "supply_crest_factor", None, 1.0, 3.0, "mains voltage crest factor (bench input)"
        ),
    }
    return DeviceDefinition(
        type_name=TYPE_NAME,
        transport="visa",
        signals=signals,
        stimuli=stimuli,
        capabilities=CAPABILITIES,
        files=(MAP_FILE,),
        identity_fields=("manufacturer", "model", "serial", "firmware"),
    )
