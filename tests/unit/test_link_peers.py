"""``links.peers``: the devices one is wired or linked with, in either direction (what
the bench reconnects before a plan beside the plan's own devices)."""

from __future__ import annotations

import pytest

from hil.bench.links import peers
from hil.bench.loader import load_bench
from tests.conftest import EMULATED_BENCH

APPLIANCES = {"oven", "lights", "air_conditioner", "coffee_maker", "fridge", "robot_vacuum"}


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        # links to the car and the wallbox; appliances and the phone link to it
        ("hub", {"ev", "charger", "phone"} | APPLIANCES),
        # its inlet is wired to the wallbox; the hub and the phone link to it
        ("ev", {"charger", "hub", "phone"}),
        # links to nothing: the car's inlet and the hub reach it
        ("charger", {"ev", "hub"}),
        ("oven", {"hub", "power_analyzer"}),  # the analyzer's element 2 measures it
        # 'household' (element 3) is every appliance's feed, not a device of its own
        ("power_analyzer", {"smart_plug", "oven"}),
        ("smart_plug", {"power_analyzer"}),
    ],
)
def test_peers_are_links_and_wiring_both_ways(device: str, expected: set[str]) -> None:
    config = load_bench(EMULATED_BENCH).config
    assert peers(config, device) == expected
