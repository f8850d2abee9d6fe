"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from tests.integration.fault_bench import bench_file


@pytest.fixture
def open_bench(tmp_path: Path) -> Iterator[Callable[..., Bench]]:
    opened: list[Bench] = []

    def make(**extra: dict[str, Any]) -> Bench:
        bench = Bench(load_bench(bench_file(tmp_path, **extra))).open()
        opened.append(bench)
        return bench

    yield make
    for bench in opened:
        bench.close()
