"""What the fault tests share: a small bench of one device per transport, throwaway
plans, a fault struck on a timer, and the shape of a plan broken by a lost device."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from hil.bench.bench import Bench
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan
from hil.plan.runner import CATEGORY_DEVICE, PlanRunner
from hil.report.record import PlanRecord, Status

FAULT_AFTER_S = 0.5  # the fault strikes this long into a step that would wait far longer
LONG_WAIT_S = 30  # a step the fault must cut short (the suite never waits it out)


def bench_file(tmp_path: Path, **extra: dict[str, Any]) -> Path:
    devices: dict[str, Any] = {
        "ev": {"type": "ev", "emulated": True, "can": {"interface": "virtual", "channel": "ev"}},
        "smart_plug": {"type": "smart_plug", "emulated": True, "serial": {"port": "auto"}},
        "power_analyzer": {
            "type": "power_analyzer",
            "emulated": True,
            "visa": {"resource": "auto", "timeout_s": 1.0},
            "wiring": {"1": "smart_plug"},
        },
    }
    for name, more in extra.items():
        devices[name] = {**devices[name], **more}
    path = tmp_path / "faults.yaml"
    bench = {"spec": 1, "id": "faults", "time_scale": 0.1, "devices": devices}
    path.write_text(yaml.safe_dump(bench), encoding="utf-8")
    return path


def plan_file(
    tmp_path: Path, plan_id: str, devices: list[str], steps: list[dict[str, Any]], **top: Any
) -> Path:
    path = tmp_path / f"{plan_id}.yaml"
    doc = {"spec": 1, "id": plan_id, "title": f"fault test {plan_id}", "devices": devices}
    path.write_text(yaml.safe_dump({**doc, **top, "steps": steps}), encoding="utf-8")
    return path


def run_plan(
    bench: Bench, plan: Path, evidence: Path, timeout_s: float | None = None
) -> PlanRecord:
    instance = load_plan(plan).instances({})[0]
    resolved = resolve_plan(instance, bench.definitions, bench.loaded.capabilities())
    return PlanRunner(bench, evidence_dir=evidence, timeout_s=timeout_s).run(resolved)


def strike_after(seconds: float, fault: Callable[[], object]) -> threading.Timer:
    timer = threading.Timer(seconds, fault)
    timer.daemon = True
    timer.start()
    return timer


def assert_lost(record: PlanRecord, device: str, words: str) -> None:
    assert record.status is Status.BROKEN, record.reason
    assert record.category == CATEGORY_DEVICE, record.reason
    assert record.lost["device"] == device, record.lost
    # when it was last heard from: a silent node may have gone quiet just before the plan began
    assert record.started - 5.0 <= record.lost["lost_at"] <= record.ended, record.lost
    assert words in record.reason, record.reason
    held = next(s for s in record.steps if s.id == "hold")
    # cut short by the fault, not waited out
    assert held.ended - held.started < LONG_WAIT_S / 2, held
