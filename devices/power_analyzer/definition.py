"""The analyzer's SCPI map (``scpi_map.yaml``) and the definition plans see.

Loading reads one small file and opens nothing else, so plans can be
validated against the analyzer before any instrument is touched.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hil.bench.definition import DeviceDefinition, SignalInfo, StimulusInfo
from hil.errors import DefinitionError
from hil.yamlio import check_spec, load_file, validate

TYPE_NAME = "power_analyzer"
MAP_FILE = Path(__file__).with_name("scpi_map.yaml")
SPEC = 1
CAPABILITIES = frozenset({"power_meter", "energy_meter"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Instrument(_Strict):
    manufacturer: str
    model: str
    element: int = Field(ge=1)


class SignalMap(_Strict):
    function: str
    unit: str | None = None
    description: str = ""


class Defaults(_Strict):
    mode: Literal["RMS", "VMEAN", "DC"]
    crest_factor: Literal[3, 6]
    current_range: float = Field(gt=0)
    update_rate: float = Field(gt=0)


class ScpiMap(_Strict):
    spec: int
    instrument: Instrument
    signals: dict[str, SignalMap]
    integration_states: dict[str, int]
    current_ranges: dict[Literal[3, 6], list[float]]
    update_rates: list[float]
    defaults: Defaults

    def ranges(self, crest_factor: int) -> list[float]:
        return self.current_ranges[3 if crest_factor == 3 else 6]


@functools.cache
def load_map(path: Path = MAP_FILE) -> ScpiMap:
    """The parsed map (cached: it is read-only and shared by driver and emulator)."""
    data, locs = load_file(path, DefinitionError)
    check_spec(data, locs, SPEC, DefinitionError, "SCPI map")
    return validate(ScpiMap, data, locs, DefinitionError)


def _setting(name: str, unit: str | None, description: str, **kw: Any) -> StimulusInfo:
    value = SignalInfo("value", unit=unit, description=description, **kw)
    return StimulusInfo(name, "setting", {"value": value}, description)


def definition(settings: Mapping[str, Any] | None = None) -> DeviceDefinition:
    """Signals, stimuli and capabilities of the analyzer; ``settings`` change nothing here."""
    scpi = load_map()
    signals = {
        name: SignalInfo(name, unit=s.unit, description=s.description)
        for name, s in scpi.signals.items()
    }
    states = dict(scpi.integration_states)
    signals["INTEGRATION"] = SignalInfo(
        "INTEGRATION", kind="enum", choices=states, description="integrator state"
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
        "supply_v": StimulusInfo(
            "supply_v",
            "input",
            {"value": SignalInfo("value", unit="V", minimum=0, maximum=300)},
            "mains voltage fed to the measured appliance (a bench input)",
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
