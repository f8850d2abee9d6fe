"""CAN streaming: hil's capture + DBC decode + invariant checks vs bare python-can + cantools.

One run, the same frames, the same virtual channel type. A producer thread plays
the car: it sends ``N`` ``BMS_Status`` frames of ``devices/ev/ev.dbc`` (SoC
sweeping 0 … 100 %) as fast as python-can's virtual bus takes them. The consumer is

* **bare**: ``bus.recv()`` + ``db.decode_message()`` for each frame, in the main
  thread (the peer kit's ``raw_recv_decode`` loop);
* **hil**: a bench whose ``ev`` is a real (not emulated) device on that channel:
  ``CanTransport``'s reader thread captures every frame, and a plan invariant
  (``ev.BMS_Status.SoC <= 100``, ``InvariantWatch`` over ``Timeline``) is checked
  on every observation, polled the way the runner polls it while a step waits.

Figures (median of ``HIL_BENCH_REPS`` interleaved runs):

  bare_stream_per_frame / hil_stream_per_frame  wall from the first send to the
        last frame decoded (bare) or judged (hil), per frame                  [us]
  bare_consumer_rate / hil_consumer_rate  frames per CPU second of the consumer
        alone: process CPU time minus the producer thread's own, so thread
        hand-offs and the producer do not count (the rate a kernel-fed interface
        with frames already queued would see)                         [frames/s]
  hil_stream_ratio       hil / bare per frame (goal ≤ 1.3)
  hil_invariants_watched   the plan's invariant plus the car type's safety envelope
  hil_invariant_evaluations  evaluations in the last hil run (at least N: every
        frame judged by every invariant whose signals it carries)

    .venv/bin/python benchmarks/can_stream.py   # HIL_BENCH_N=20000 HIL_BENCH_REPS=3
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import can
import yaml
from figures import emit

from devices.ev.driver import load_database
from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan
from hil.plan.watch import InvariantWatch

N = int(os.environ.get("HIL_BENCH_N", "20000"))
REPS = int(os.environ.get("HIL_BENCH_REPS", "3"))
DB = load_database()
BMS = DB.get_message_by_name("BMS_Status")
INVARIANT = "ev.BMS_Status.SoC <= 100"


def frames(n: int) -> list[can.Message]:
    return [
        can.Message(
            arbitration_id=BMS.frame_id,
            is_extended_id=False,
            data=BMS.encode(
                {
                    "SoC": (i % 1001) / 10,
                    "PackVoltage": 400.0,
                    "PackCurrent": 0.0,
                    "ContactorState": 0,
                    "LinkVoltage": 0.0,
                }
            ),
        )
        for i in range(n)
    ]


class Producer(threading.Thread):
    """Sends the frames as fast as it can; records its start and its own CPU time."""

    def __init__(self, channel: str, batch: list[can.Message]) -> None:
        super().__init__(name="bench-producer", daemon=True)
        self.batch = batch
        self.bus = can.Bus(interface="virtual", channel=channel)
        self.t0 = 0.0
        self.cpu = 0.0

    def run(self) -> None:
        cpu0 = time.thread_time()
        self.t0 = time.perf_counter()
        send = self.bus.send
        for frame in self.batch:
            send(frame)
        self.cpu = time.thread_time() - cpu0

    def finish(self) -> None:
        self.join()
        self.bus.shutdown()


def bare_run(batch: list[can.Message]) -> tuple[float, float]:
    """(seconds per frame on the wall, consumer CPU seconds per frame)."""
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    decode = DB.decode_message
    with can.Bus(interface="virtual", channel=channel) as bus:
        producer = Producer(channel, batch)
        cpu0 = time.process_time()
        producer.start()
        for i in range(len(batch)):
            msg = bus.recv(timeout=5.0)
            if msg is None:
                raise SystemExit(f"bare loop lost frames: {i}/{len(batch)}")
            decode(msg.arbitration_id, msg.data)  # type: ignore[arg-type]  # as the kit does
        end = time.perf_counter()
        producer.finish()
        cpu = time.process_time() - cpu0 - producer.cpu
    return (end - producer.t0) / len(batch), cpu / len(batch)


def write_setup(folder: Path) -> tuple[Path, Path]:
    """A bench whose car is a real device on a virtual channel; a plan with the invariant."""
    bench = {
        "spec": 1,
        "id": "bench-can-stream",
        "name": "CAN streaming benchmark",
        "lab": {"name": "benchmark", "location": "this machine", "operator": "benchmark"},
        "devices": {
            "ev": {
                "type": "ev",
                "emulated": False,
                "can": {"interface": "virtual", "channel": "set per run", "bitrate": 500000},
            }
        },
    }
    plan = {
        "spec": 1,
        "id": "BENCH-STREAM",
        "title": "state of charge stays within 100 %",
        "devices": ["ev"],
        "invariants": [{"id": "soc", "name": "SoC within 100 %", "always": INVARIANT}],
        "steps": [{"id": "pause", "wait": {"duration": "0 s"}}],
    }
    (folder / "bench.yaml").write_text(yaml.safe_dump(bench), encoding="utf-8")
    (folder / "plan.yaml").write_text(yaml.safe_dump(plan), encoding="utf-8")
    return folder / "bench.yaml", folder / "plan.yaml"


def hil_run(folder: Path, batch: list[can.Message]) -> tuple[float, float, int, int]:
    """(wall and consumer CPU seconds per frame, evaluations, invariants watched).

    The plan's own invariant, and the safety envelope the car's device type
    declares (watched in every plan that uses the car), are both judged.
    """
    bench_path, plan_path = write_setup(folder)
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    text = bench_path.read_text(encoding="utf-8").replace("set per run", channel)
    bench_path.write_text(text, encoding="utf-8")
    loaded = load_bench(bench_path)
    with Bench(loaded) as bench:
        resolved = resolve_plan(
            load_plan(plan_path).instances()[0], bench.definitions, loaded.capabilities()
        )

        def lookup(name: str) -> Any:
            raise KeyError(name)  # the invariant names only its own signal

        watch = InvariantWatch(bench, resolved.invariants, 0.0, lookup)
        capture = bench.get("ev").transport.capture  # type: ignore[attr-defined]
        producer = Producer(channel, batch)
        cpu0 = time.process_time()
        producer.start()
        deadline = time.monotonic() + 60
        settled = -1  # evaluations after a check that began with every frame captured
        while True:
            seq = capture.seq
            violation = watch.check()
            if violation is not None:
                raise SystemExit(f"invariant violated: {violation.message}")
            if seq >= len(batch):
                if watch.evaluations == settled:  # a check found nothing more to judge
                    break
                settled = watch.evaluations
                continue
            if time.monotonic() > deadline:
                raise SystemExit(f"hil captured {seq}/{len(batch)} frames")
            capture.wait_beyond(seq, 0.05)  # what a waiting step does between ticks
        end = time.perf_counter()
        producer.finish()
        cpu = time.process_time() - cpu0 - producer.cpu
        if capture.dropped:
            raise SystemExit(f"capture dropped {capture.dropped} frames")
    if watch.evaluations < len(batch):
        raise SystemExit(f"{watch.evaluations} evaluations for {len(batch)} frames")
    per_frame = (end - producer.t0) / len(batch)
    return per_frame, cpu / len(batch), watch.evaluations, len(resolved.invariants)


def main() -> None:
    batch = frames(N)
    with tempfile.TemporaryDirectory(prefix="hil-can-stream-") as tmp:
        folder = Path(tmp)
        bare_run(frames(min(N, 2000)))  # warm-up: imports, caches
        hil_run(folder, frames(min(N, 2000)))
        bare: list[tuple[float, float]] = []
        hil: list[tuple[float, float]] = []
        evaluations = invariants = 0
        for _ in range(REPS):  # interleaved: both loops see the same machine state
            bare.append(bare_run(batch))
            wall, cpu, evaluations, invariants = hil_run(folder, batch)
            hil.append((wall, cpu))
    b_wall = statistics.median(x[0] for x in bare)
    h_wall = statistics.median(x[0] for x in hil)
    b_cpu = statistics.median(x[1] for x in bare)
    h_cpu = statistics.median(x[1] for x in hil)
    emit("stream_frames", N, "frames")
    emit("bare_stream_per_frame", b_wall * 1e6, "us")
    emit("hil_stream_per_frame", h_wall * 1e6, "us")
    emit("hil_stream_ratio", h_wall / b_wall, "x")
    emit("bare_consumer_rate", 1 / b_cpu, "frames/s")
    emit("hil_consumer_rate", 1 / h_cpu, "frames/s")
    emit("hil_invariants_watched", invariants, "invariants")
    emit("hil_invariant_evaluations", evaluations, "evaluations")


if __name__ == "__main__":
    main()
