"""What one input element of the emulated analyzer measures, update by update.

The numbers come from what the element is wired to (a ``PowerSource``: one
appliance, or the household feed) under the bench's ``Supply``, plus seeded
noise of the size a WT310 shows at standby levels, so energy plans measure
something real and reproducible. Energy is integrated over emulated time,
which runs ``1 / time_scale`` times faster than the wall clock (a bench's time
scale is wall seconds per plan second).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from hil.emulation.physics import ElectricalState, PowerSource, Supply

# Every function an ITEM may name, in SCPI mnemonic form (long form = upper case).
FUNCTIONS = [
    *("U", "I", "P", "S", "Q", "LAMBda", "PHI", "FU", "FI", "CFU", "CFI", "UTHD", "ITHD"),
    *("UPPeak", "UMPeak", "IPPeak", "IMPeak", "PPPeak", "PMPeak"),
    *("TIME", "WP", "WPP", "WPM", "AH"),
]

# Current over-range: the WT310 measures up to 140 % of the range (RMS) and
# range x crest factor (peak); beyond that it reports over-range.
RMS_HEADROOM = 1.4
AUTO_UP = 1.3  # auto-ranging picks the smallest range that leaves this headroom
SINE_CF = math.sqrt(2.0)
# a load's current THD grows with how spiky its current is; a rough fit for small
# switched-mode supplies (crest factor 2.8 → about 125 %), enough to be plausible
ITHD_PER_CREST = 90.0


@dataclass
class Integrator:
    """The :INTEGrate block: RESET → START ⇄ STOP → RESET."""

    state: str = "RESET"
    wp_wh: float = 0.0
    wpp_wh: float = 0.0
    wpm_wh: float = 0.0
    ah: float = 0.0
    time_s: float = 0.0

    def add(self, power_w: float, current_a: float, dt_s: float) -> None:
        if self.state != "START" or not math.isfinite(power_w):
            return
        wh = power_w * dt_s / 3600.0
        self.wp_wh += wh
        if wh >= 0:
            self.wpp_wh += wh
        else:
            self.wpm_wh += wh
        self.ah += current_a * dt_s / 3600.0
        self.time_s += dt_s


@dataclass
class Element:
    """Settings of one input element and the newest data it produced.

    Ranges, crest factor, mode and rate are common to all elements (the
    instrument sets them together); each element keeps its own copy so that
    an update reads one consistent set.
    """

    source: PowerSource | None
    rng: random.Random
    ranges: dict[int, list[float]]
    voltage_ranges: dict[int, list[float]] = field(default_factory=dict)
    offset_w: float = 0.0  # the offset_error defect
    reports_thd: bool = True  # False: the no_thd defect
    mode: str = "RMS"
    crest_factor: int = 3
    current_auto: bool = True
    current_range: float = 20.0
    voltage_auto: bool = True
    voltage_range: float = 600.0
    rate_s: float = 0.25
    integrator: Integrator = field(default_factory=Integrator)
    data: dict[str, float] = field(default_factory=dict)

    def reset(self) -> None:
        """*RST: factory settings; the integrator is reset too."""
        self.mode, self.crest_factor, self.current_auto = "RMS", 3, True
        self.current_range = max(self.ranges[3])
        self.voltage_auto = True
        self.voltage_range = max(self.voltage_ranges.get(3, [600.0]))
        self.rate_s = 0.25
        self.integrator = Integrator()

    def set_crest_factor(self, cf: int) -> None:
        # ranges differ per crest factor: keep the position in the list, as the WT310 does
        self.current_range = _same_position(self.ranges, self.crest_factor, cf, self.current_range)
        if self.voltage_ranges:
            self.voltage_range = _same_position(
                self.voltage_ranges, self.crest_factor, cf, self.voltage_range
            )
        self.crest_factor = cf

    def state_at(self, supply: Supply) -> ElectricalState:
        if self.source is None:  # nothing wired: the supply is there, nothing draws from it
            st = ElectricalState(supply.voltage_v, 0.0, 0.0, 0.0)
        else:
            st = self.source.electrical_state(supply.voltage_v)
        return supply.applied_to(st)

    def update(self, supply: Supply, dt_s: float) -> dict[str, float]:
        """One data update: measure, integrate over ``dt_s`` emulated seconds, publish."""
        st = self.state_at(supply)
        g = self.rng.gauss
        u = st.voltage_v + g(0.0, 0.025)  # about ±0.05 V
        wired = st.current_a > 0.0 or st.power_w != 0.0
        # about ±3 mW at 0.5 W: a floor plus a share of the reading
        sigma_p = 0.0005 + 0.002 * abs(st.power_w)
        p = st.power_w + g(0.0, sigma_p) + self.offset_w if wired else self.offset_w
        rel = sigma_p / abs(st.power_w) if st.power_w else 0.002
        i = max(0.0, st.current_a * (1.0 + g(0.0, rel)))
        s = u * i
        cfu = st.voltage_crest_factor + g(0.0, 0.002)
        cfi = st.current_crest_factor + g(0.0, 0.01) if i > 0 else math.nan
        lam = max(-1.0, min(1.0, p / s)) if s > 0 else math.nan
        fu = st.frequency_hz + g(0.0, 0.002)
        data = {
            "U": u,
            "I": i,
            "P": p,
            "S": s,
            "Q": math.sqrt(max(s * s - p * p, 0.0)) if s > 0 else 0.0,
            "LAMBDA": lam,
            "PHI": math.degrees(math.acos(lam)) if math.isfinite(lam) else math.nan,
            "FU": fu,
            "FI": fu if i > 0 else math.nan,
            "UPPEAK": u * cfu,
            "UMPEAK": -u * cfu,
            "IPPEAK": i * cfi if i > 0 else 0.0,
            "IMPEAK": -i * cfi if i > 0 else 0.0,
            "PPPEAK": p * cfu * (cfi if i > 0 else 1.0),
            "PMPEAK": min(0.0, p),
            "CFU": cfu,
            "CFI": cfi,
            "UTHD": st.voltage_thd_percent + g(0.0, 0.01) if u > 0 else math.nan,
            "ITHD": max(0.0, (cfi - SINE_CF) * ITHD_PER_CREST) if i > 0 else math.nan,
        }
        if not self.reports_thd:
            data["UTHD"] = data["ITHD"] = math.nan
        if self._voltage_over_range(u, cfu):
            for key in ("U", "S", "Q", "UPPEAK", "UMPEAK", "CFU"):
                data[key] = math.copysign(math.inf, data[key] or 1.0)
        if self._over_range(i, cfi):
            for key in ("I", "P", "S", "Q", "IPPEAK", "IMPEAK", "PPPEAK", "PMPEAK", "CFI"):
                data[key] = math.copysign(math.inf, data[key] or 1.0)
            data["LAMBDA"] = data["PHI"] = math.nan
        self.integrator.add(data["P"], i, dt_s)
        data.update(
            TIME=self.integrator.time_s,
            WP=self.integrator.wp_wh,
            WPP=self.integrator.wpp_wh,
            WPM=self.integrator.wpm_wh,
            AH=self.integrator.ah,
        )
        self.data = data
        return data

    def _over_range(self, i: float, cfi: float) -> bool:
        ranges = self.ranges[self.crest_factor]
        peak = i * (cfi if math.isfinite(cfi) else 0.0)
        if self.current_auto:
            fits = [r for r in ranges if i <= r * AUTO_UP and peak <= r * self.crest_factor]
            self.current_range = fits[0] if fits else ranges[-1]
        r = self.current_range
        return i > r * RMS_HEADROOM or peak > r * self.crest_factor

    def _voltage_over_range(self, u: float, cfu: float) -> bool:
        ranges = self.voltage_ranges.get(self.crest_factor)
        if not ranges:
            return False
        peak = u * cfu
        if self.voltage_auto:
            fits = [r for r in ranges if u <= r * AUTO_UP and peak <= r * self.crest_factor]
            self.voltage_range = fits[0] if fits else ranges[-1]
        r = self.voltage_range
        return u > r * RMS_HEADROOM or peak > r * self.crest_factor


def _same_position(ranges: dict[int, list[float]], old_cf: int, new_cf: int, value: float) -> float:
    old = ranges[old_cf]
    index = old.index(value) if value in old else len(old) - 1
    return ranges[new_cf][index]
