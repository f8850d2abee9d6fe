"""A minimal bench and N-step plans for the plan-engine benchmarks.

The bench holds one emulated car (python-can ``virtual`` channel of its own),
so a measurement step reads a captured, decoded CAN signal: the plan engine's
own cost, not an instrument's. The plans mirror the peer kit's steps: each step
records one measurement judged against limits [0, 10] (the car stands still,
so ``VehicleSpeed`` is 0 km/h), or does nothing (a zero wait).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml

SIGNAL = "ev.DRIVE_Status.VehicleSpeed"


def write_bench(folder: Path) -> Path:
    """A bench file with one emulated car on a fresh virtual channel."""
    bench = {
        "spec": 1,
        "id": "bench-plan-engine",
        "name": "plan engine benchmark",
        "lab": {"name": "benchmark", "location": "this machine", "operator": "benchmark"},
        "time_scale": 1.0,
        "devices": {
            "ev": {
                "type": "ev",
                "emulated": True,
                "can": {
                    "interface": "virtual",
                    "channel": f"bench-{uuid.uuid4().hex[:8]}",
                    "bitrate": 500000,
                },
            }
        },
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(bench, sort_keys=False), encoding="utf-8")
    return path


def write_plan(folder: Path, steps: int, *, measure: bool) -> Path:
    """A plan of ``steps`` steps: a measurement each, or a zero wait each."""
    kind = "meas" if measure else "nomeas"
    body = []
    for i in range(steps):
        if measure:
            action = {
                "measure": {
                    "signal": SIGNAL,
                    "duration": "1 ms",
                    "interval": "1 ms",
                    "statistic": "last",
                    "limit": {"min": 0, "max": 10},
                }
            }
        else:
            action = {"wait": {"duration": "0 s"}}
        body.append({"id": f"s{i}", **action})
    plan = {
        "spec": 1,
        "id": f"BENCH-{kind}-{steps}",
        "title": f"{steps} steps ({kind})",
        "version": "1",
        "requirements": ["REQ-BENCH-1"],
        "severity": "normal",
        "owner": "benchmark",
        "devices": ["ev"],
        "steps": body,
    }
    path = folder / f"bench-{kind}-{steps}.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    return path
