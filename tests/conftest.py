"""Shared test setup: a leak check after every test, and bench helpers."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from hil.lifecycle import open_resources

ROOT = Path(__file__).resolve().parent.parent
EMULATED_BENCH = ROOT / "benches" / "emulated.yaml"
LAB_BENCH = ROOT / "benches" / "lab-example.yaml"
PLANS = ROOT / "testplans"

pytest_plugins = ("pytester",)

settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _hil_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("hil-") and t.is_alive()]


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Like python-can's own suite: nothing may stay open after a test."""
    yield
    deadline = time.monotonic() + 3.0
    while (open_resources() or _hil_threads()) and time.monotonic() < deadline:
        time.sleep(0.02)
    leaked = open_resources()
    threads = _hil_threads()
    assert not leaked, f"resources left open: {leaked}"
    assert not threads, f"threads left running: {[t.name for t in threads]}"


@pytest.fixture
def unused_tcp_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
