"""How the stand-alone benchmarks print and summarise their figures.

Every figure is one line ``<name>: <value> <unit>``, the peer kit's format, so
one parser (the smoke test's, the peer kit's ``table.py``) reads them all.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import yaml


def emit(name: str, value: float, unit: str) -> None:
    if isinstance(value, int):  # counts stay counts
        text = str(value)
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    print(f"{name}: {text} {unit}", flush=True)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (the peer kit's), ``p`` in 0 … 100."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100.0 * len(ordered)) - 1))
    return ordered[k]


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def write_bench(folder: Path, bench_id: str, devices: dict[str, object]) -> Path:
    """A bench file holding ``devices`` (bench-file entries), for one benchmark."""
    bench = {
        "spec": 1,
        "id": bench_id,
        "name": f"{bench_id} benchmark",
        "lab": {"name": "benchmark", "location": "this machine", "operator": "benchmark"},
        "devices": devices,
    }
    path = folder / f"{bench_id}.yaml"
    path.write_text(yaml.safe_dump(bench, sort_keys=False), encoding="utf-8")
    return path
