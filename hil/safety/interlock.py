"""The safe-state interlock: on every abort path, make every reachable device safe.

Each device type declares its safe state as an ordered list of its own
stimuli (charger: no current offered; oven: off; plug: relay open; analyzer:
integration stopped) and a rank (energy sources before the loads they feed).
``drive_safe`` walks the bench in rank order, gives every device a bounded
time, never lets one unreachable device stop the others, and returns a
report of what it did and what it could not reach — evidence for the record.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from hil.bench.bench import Bench
from hil.bench.registry import SafeAction, get_device_type
from hil.errors import HilError

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 3.0  # per device: a safe state that takes longer counts as not reached


@dataclass
class DeviceOutcome:
    device: str
    rank: int
    actions: list[str] = field(default_factory=list)
    reached: bool = False
    error: str = ""
    seconds: float = 0.0


@dataclass
class InterlockReport:
    reason: str
    started: float
    devices: list[DeviceOutcome] = field(default_factory=list)

    @property
    def unreachable(self) -> list[str]:
        return [d.device for d in self.devices if not d.reached]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "unreachable": self.unreachable}

    def summary(self) -> str:
        made = [d.device for d in self.devices if d.reached]
        text = f"interlock ({self.reason}): safe: {', '.join(made) or 'none'}"
        if self.unreachable:
            why = "; ".join(f"{d.device}: {d.error}" for d in self.devices if not d.reached)
            text += f"; NOT REACHED: {why}"
        return text


def safe_plan(bench: Bench) -> list[tuple[str, int, tuple[SafeAction, ...]]]:
    """(device, rank, actions) in the order the interlock acts."""
    plan = []
    for name, dev in bench.config.devices.items():
        dtype = get_device_type(dev.type)
        if dtype.safe_state:
            plan.append((name, dtype.safe_rank, dtype.safe_state))
    return sorted(plan, key=lambda item: (item[1], item[0]))


def _describe(action: SafeAction) -> str:
    values = ", ".join(f"{k}={v}" for k, v in action.values.items())
    return action.description or f"{action.stimulus}({values})"


def _make_safe(
    bench: Bench,
    name: str,
    actions: tuple[SafeAction, ...],
    outcome: DeviceOutcome,
    timeout_s: float,
) -> None:
    done = threading.Event()
    failure: list[BaseException] = []

    def act() -> None:
        try:
            for action in actions:
                if action.unless is not None:
                    signal, safe_values = action.unless
                    if bench.get(name).read(signal).value in safe_values:
                        outcome.actions.append(_describe(action) + " (already)")
                        continue
                bench.stimulate(name, action.stimulus, action.values)
                outcome.actions.append(_describe(action))
        except (HilError, OSError) as err:
            failure.append(err)
        finally:
            done.set()

    begin = time.monotonic()
    # a worker per device, so that one that hangs costs at most timeout_s
    threading.Thread(target=act, name=f"hil-interlock-{name}", daemon=True).start()
    finished = done.wait(timeout_s)
    outcome.seconds = round(time.monotonic() - begin, 3)
    if not finished:
        outcome.error = f"no answer within {timeout_s:g} s"
    elif failure:
        outcome.error = str(failure[0])
    else:
        outcome.reached = True


def drive_safe(
    bench: Bench, reason: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> InterlockReport:
    """Drive every device of ``bench`` that declares a safe state to it, in rank order."""
    report = InterlockReport(reason=reason, started=time.time())
    for name, rank, actions in safe_plan(bench):
        outcome = DeviceOutcome(device=name, rank=rank)
        report.devices.append(outcome)
        if name not in bench.drivers:
            outcome.error = "not open (lost or never reached)"
            continue
        if name in bench.lost:  # no answer to wait for: say so at once
            outcome.error = f"lost: {bench.lost[name]}"
            continue
        _make_safe(bench, name, actions, outcome, timeout_s)
    text = report.summary()
    (log.warning if report.unreachable else log.info)("%s", text)
    return report
