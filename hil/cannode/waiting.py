"""What a CAN driver's ``wait_for`` shares between its two ways of looking.

A signal of a plain frame is read from its decoded log in place
(``CanNodeDriver.wait_for``, once per answer of a round trip, so it keeps to one
loop); a multiplexed message's signal, or one a subclass serves itself (the car's
UDS values), is read through ``samples()`` (``wait_through_samples`` here). Both
judge observations with ``value_check`` and fail with ``timed_out``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from hil.bench.definition import SignalInfo
from hil.bench.driver import Sample
from hil.errors import DeviceTimeout

WAIT_TICK_S = 0.05  # a waiter looks at the link at least this often


def value_check(info: SignalInfo, predicate: Callable[[Any], bool] | Any) -> Callable[[Any], bool]:
    """``predicate`` itself when callable; else equality with the plan's value
    (``"LOCKED"``, ``12``) as the driver reports it (``ValueError`` when it cannot be)."""
    if callable(predicate):
        return predicate
    target = info.coerce(predicate)

    def check(value: Any) -> bool:
        # decoded values are float products of the scale: compare at 1e-6
        return bool(abs(value - target) < 1e-6)

    return check


def timed_out(
    device: str,
    signal: str,
    predicate: Any,
    info: SignalInfo,
    timeout: float,
    seen_at: float | None,
    value: Any,
) -> DeviceTimeout:
    """The error of a wait that saw no match: what was wanted, and the last value seen
    (its words built only here, not on every wait)."""
    if callable(predicate):
        name = getattr(predicate, "__name__", "<lambda>")
        wanted = "matching the predicate" if name == "<lambda>" else f"matching {name}"
    else:
        wanted = f"== {predicate!r}"
    seen = "nothing" if seen_at is None else info.label(value)
    return DeviceTimeout(
        f"{signal}: no value {wanted} within {timeout:g} s; last value seen: {seen}",
        device=device,
        signal=signal,
        last=None if seen_at is None else value,
    )


def wait_through_samples(
    device: str,
    samples: Callable[[str, float], list[Sample]],
    seq: Callable[[], int],
    pump: Callable[[int, float], bool],
    check_link: Callable[[], None],
    signal: str,
    predicate: Any,
    info: SignalInfo,
    cursor: float,
    deadline: float,
    timeout: float,
) -> Sample:
    """The first sample from ``cursor`` on (and the one before it) that satisfies
    ``predicate``, receiving through ``pump`` until ``deadline`` (monotonic)."""
    check = value_check(info, predicate)
    link_checked = -math.inf
    last: Sample | None = None
    while True:
        mark = seq()
        for sample in samples(signal, cursor):
            if last is None or sample.t > last.t:
                last = sample
                if check(sample.value):
                    return sample
        if last is not None:
            cursor = max(cursor, math.nextafter(last.t, math.inf))
        now = time.monotonic()
        remaining = deadline - now
        if remaining <= 0:
            raise timed_out(
                device,
                signal,
                predicate,
                info,
                timeout,
                None if last is None else last.t,
                None if last is None else last.value,
            )
        if now - link_checked >= WAIT_TICK_S:
            check_link()
            link_checked = now
        pump(mark, min(remaining, WAIT_TICK_S))
