"""Household current management: how much the car may charge beside everything else.

household current = the charger's measured current + every appliance's
reported current (``power-consumption.electric-current``, or its
``power-consumption.electric-power`` at the nominal mains voltage). The
charge limit is what the household limit leaves over after the *other*
loads, floored to the charger's 0.1 A resolution and capped at the
wallbox's declared maximum. IEC 61851-1 offers no current below 6 A: with
less headroom than that the hub pauses the charge (limit 0), and raises the
limit again as soon as the other loads go away.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

MIN_CHARGE_A = 6.0  # IEC 61851-1: the lowest current a pilot can offer
CURRENT = "power-consumption.electric-current"
POWER = "power-consumption.electric-power"


def appliance_current(props: Mapping[str, Any], mains_v: float) -> float:
    """An appliance's current from what it reported (A; 0 if it reports neither)."""
    current = props.get(CURRENT)
    if isinstance(current, int | float) and not isinstance(current, bool):
        return max(float(current), 0.0)
    power = props.get(POWER)
    if isinstance(power, int | float) and not isinstance(power, bool) and mains_v > 0:
        return max(float(power), 0.0) / mains_v
    return 0.0


def other_loads(appliances: Iterable[Mapping[str, Any]], mains_v: float) -> float:
    return sum(appliance_current(props, mains_v) for props in appliances)


def charge_limit(
    household_limit_a: float, other_a: float, charger_max_a: float, defects: frozenset[str]
) -> float:
    """The limit to send in ``HUB_ChargeLimit``: 0 (paused) or 6 A..the wallbox maximum."""
    if "ignores_household_limit" in defects:
        return charger_max_a
    headroom = min(household_limit_a - other_a, charger_max_a)
    # floor to 0.1 A (the frame's resolution): rounding up would overshoot the limit
    limit = math.floor(headroom * 10.0 + 1e-6) / 10.0
    if limit >= MIN_CHARGE_A:
        return limit
    if "sheds_below_minimum" in defects and limit > 0:
        return limit
    return 0.0
