"""An invariant is judged on every frame captured, not on the value seen at a step.

A 30 ms excursion on the car's bus (three ``BMS_Cells`` frames 10 ms apart, sent
by another node on the real virtual channel) between the emulator's healthy
frames is caught, with the capture timestamp of its first frame, although every
value before and after it is healthy, so any look at "the current value" at a
step boundary or a poll would have missed it.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import can
import yaml

from devices.ev.driver import load_database
from hil.bench.bench import open_bench
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan
from hil.plan.runner import CATEGORY_SAFETY, PlanRunner
from hil.report.record import PlanRecord, Status

LIMIT_C = 60
EXCURSIONS_C = (80, 81, 82)  # three frames 10 ms apart: a 30 ms excursion, then healthy
HEALTHY_C = 25
HOLD_S = 1.0  # the plan waits this long; the excursion comes after 0.4 s of it


def _run(tmp_path: Path, excursion: bool) -> tuple[PlanRecord, list[float]]:
    bus = {"interface": "virtual", "channel": f"transient-{uuid.uuid4().hex[:8]}"}
    devices = {"ev": {"type": "ev", "emulated": True, "can": bus}}
    bench_file = tmp_path / "bench.yaml"
    bench_doc = {"spec": 1, "id": "transient", "time_scale": 0.1, "devices": devices}
    bench_file.write_text(yaml.safe_dump(bench_doc), encoding="utf-8")
    plan_file = tmp_path / "plan.yaml"
    plan = {
        "spec": 1,
        "id": "CELLS-COOL",
        "title": "cell temperature never above the limit",
        "devices": ["ev"],
        "invariants": [{"id": "cells-cool", "always": f"ev.BMS_Cells.CellTempMax <= {LIMIT_C}"}],
        "steps": [
            {"id": "settle", "wait": {"duration": 0.2, "scaled": False}},
            {"id": "hold", "wait": {"duration": HOLD_S, "scaled": False}},
        ],
    }
    plan_file.write_text(yaml.safe_dump(plan), encoding="utf-8")
    sent: list[float] = []
    with open_bench(bench_file) as bench:
        channel = bench.transports["ev"].channel  # type: ignore[attr-defined]
        if excursion:
            timer = threading.Timer(0.6, _excursion, (channel, sent))
            timer.daemon = True
            timer.start()
        instance = load_plan(plan_file).instances({})[0]
        resolved = resolve_plan(instance, bench.definitions, bench.loaded.capabilities())
        record = PlanRunner(bench, evidence_dir=tmp_path / "evidence").run(resolved)
    return record, sent


def _excursion(channel: str, sent: list[float]) -> None:
    db = load_database()
    message = db.get_message_by_name("BMS_Cells")
    healthy = {"CellVoltageMin": 3.6, "CellVoltageMax": 3.7, "CellTempMin": 20}
    with can.Bus(interface="virtual", channel=channel) as bus:
        for temp in (*EXCURSIONS_C, HEALTHY_C):
            data = message.encode({**healthy, "CellTempMax": temp})
            sent.append(time.time())
            bus.send(can.Message(arbitration_id=message.frame_id, is_extended_id=False, data=data))
            time.sleep(0.010)


def test_a_30_ms_excursion_between_healthy_frames_is_a_safety_violation(tmp_path: Path) -> None:
    record, sent = _run(tmp_path, excursion=True)
    assert len(sent) == len(EXCURSIONS_C) + 1
    assert record.status is Status.FAILED and record.category == CATEGORY_SAFETY, record.reason
    assert "cells-cool" in record.reason, record.reason
    held = next(s for s in record.steps if s.id == "hold")
    assert held.status is Status.FAILED
    # the first offending frame is the one judged, at its capture time (not the last
    # value seen when the runner looked: by then the bus says 25 °C again)
    assert sent[0] <= held.observed["violation_t"] < sent[1], (sent, held.observed)
    assert held.observed["values"] == {"ev.BMS_Cells.CellTempMax": EXCURSIONS_C[0]}
    assert Path(held.observed["evidence"]).is_file()


def test_without_the_excursion_the_same_plan_passes(tmp_path: Path) -> None:
    record, sent = _run(tmp_path, excursion=False)
    assert sent == []
    assert record.status is Status.PASSED, record.reason
