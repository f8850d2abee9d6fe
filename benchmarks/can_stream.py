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

Each is measured two ways, the peer kit's two (``raw_recv_decode_stream`` and
``raw_recv_decode_prefilled``):

* **streaming**: the producer runs while the consumer consumes; wall time from
  the first send to the last frame decoded (bare) or judged (hil);
* **consumer-only**: every frame is queued in the consumer's bus first (as a
  kernel-fed interface holds them), then the consumer alone is timed on the wall.
  hil's reader thread is held by a capture listener on the first frame while the
  producer queues the rest, so hil's figure includes its reader draining the bus.

Figures (median of ``HIL_BENCH_REPS`` interleaved runs):

  bare_stream_per_frame / hil_stream_per_frame  streaming wall per frame      [us]
  hil_stream_ratio       hil / bare per frame (goal ≤ 1.3)
  bare_consumer_rate / hil_consumer_rate  consumer-only frames per second
        (goal for hil ≥ 50,000)                                        [frames/s]
  hil_consumer_ratio     hil / bare consumer-only cost per frame
  bare_consumer_cpu_rate / hil_consumer_cpu_rate  the same runs, frames per CPU
        second of the process (the producer has finished): hil's reader thread and
        its checking thread hand frames over, which on a loaded machine costs wall
        time waiting to be scheduled but no CPU                        [frames/s]
  hil_invariants_watched   the plan's invariant plus the car type's safety envelope
  hil_invariant_evaluations  verdicts in the last streaming run (at least N: every
        frame judged by every invariant whose signals it carries)
  hil_invariant_reused   of those, verdicts reused because the invariant's signals
        held the values of the state judged just before (a cyclic bus repeats them)

    .venv/bin/python benchmarks/can_stream.py   # HIL_BENCH_N=20000 HIL_BENCH_REPS=3
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
from hil.transports.capture import Capture, Record

N = int(os.environ.get("HIL_BENCH_N", "20000"))
REPS = int(os.environ.get("HIL_BENCH_REPS", "3"))
DB = load_database()
BMS = DB.get_message_by_name("BMS_Status")
INVARIANT = "ev.BMS_Status.SoC <= 100"
WAIT_S = 60.0  # bound on every wait: a broken run fails, it does not hang


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
    """Sends the frames as fast as it can; records when it started.

    Given ``after_first``, it sends the first frame, then waits for that event
    before it sends the rest.
    """

    def __init__(
        self,
        channel: str,
        batch: list[can.Message],
        after_first: threading.Event | None = None,
    ) -> None:
        super().__init__(name="bench-producer", daemon=True)
        self.batch = batch
        self.bus = can.Bus(interface="virtual", channel=channel)
        self.after_first = after_first
        self.t0 = 0.0

    def run(self) -> None:
        self.t0 = time.perf_counter()
        send = self.bus.send
        for i, frame in enumerate(self.batch):
            send(frame)
            if i == 0 and self.after_first is not None:
                self.after_first.wait(WAIT_S)

    def finish(self) -> None:
        self.join(WAIT_S)
        self.bus.shutdown()


def consume(bus: can.BusABC, n: int) -> None:
    """The bare consumer: the peer kit's ``recv()`` + ``decode_message()`` loop."""
    recv, decode = bus.recv, DB.decode_message
    for i in range(n):
        msg = recv(timeout=5.0)
        if msg is None:
            raise SystemExit(f"bare loop lost frames: {i}/{n}")
        decode(msg.arbitration_id, msg.data)  # type: ignore[arg-type]  # as the kit does


def bare_stream(batch: list[can.Message]) -> float:
    """Seconds per frame on the wall, from the first send to the last frame decoded."""
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    with can.Bus(interface="virtual", channel=channel) as bus:
        producer = Producer(channel, batch)
        producer.start()
        consume(bus, len(batch))
        end = time.perf_counter()
        producer.finish()
    return (end - producer.t0) / len(batch)


def bare_prefilled(batch: list[can.Message]) -> tuple[float, float]:
    """Frames per wall and per CPU second of the bare consumer alone, every frame
    queued before."""
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    with can.Bus(interface="virtual", channel=channel) as bus:
        producer = Producer(channel, batch)
        producer.start()
        producer.finish()
        start, cpu = time.perf_counter(), time.process_time()
        consume(bus, len(batch))
        end, cpu = time.perf_counter(), time.process_time() - cpu
    return len(batch) / (end - start), len(batch) / cpu


def write_setup(folder: Path, channel: str) -> tuple[Path, Path]:
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
                "can": {"interface": "virtual", "channel": channel, "bitrate": 500000},
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


@dataclass
class HilSetup:
    channel: str
    watch: InvariantWatch
    capture: Capture[can.Message]
    invariants: int


@contextmanager
def hil_bench(folder: Path) -> Iterator[HilSetup]:
    """An open bench on a fresh channel, watching the plan's invariant and the envelope.

    The plan's own invariant, and the safety envelope the car's device type
    declares (watched in every plan that uses the car), are both judged.
    """
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    bench_path, plan_path = write_setup(folder, channel)
    loaded = load_bench(bench_path)
    with Bench(loaded) as bench:
        resolved = resolve_plan(
            load_plan(plan_path).instances()[0], bench.definitions, loaded.capabilities()
        )

        def lookup(name: str) -> Any:
            raise KeyError(name)  # the invariant names only its own signal

        watch = InvariantWatch(bench, resolved.invariants, 0.0, lookup)
        capture = bench.get("ev").transport.capture  # type: ignore[attr-defined]
        yield HilSetup(channel, watch, capture, len(resolved.invariants))
        if capture.dropped:
            raise SystemExit(f"capture dropped {capture.dropped} frames")


def judge_all(setup: HilSetup, total: int) -> None:
    """Check the invariants the way a waiting step does until all ``total`` frames
    are captured and a check finds nothing more to judge."""
    watch, capture = setup.watch, setup.capture
    deadline = time.monotonic() + WAIT_S
    settled = -1  # verdicts after a check that began with every frame captured
    while True:
        seq = capture.seq
        violation = watch.check()
        if violation is not None:
            raise SystemExit(f"invariant violated: {violation.message}")
        if seq >= total:
            if watch.evaluations == settled:
                return
            settled = watch.evaluations
            continue
        if time.monotonic() > deadline:
            raise SystemExit(f"hil captured {seq}/{total} frames")
        capture.wait_beyond(seq, 0.05)  # what a waiting step does between ticks


def hil_stream(folder: Path, batch: list[can.Message]) -> tuple[float, int, int]:
    """(wall seconds per frame, verdicts, verdicts reused) while the producer runs."""
    with hil_bench(folder) as setup:
        producer = Producer(setup.channel, batch)
        producer.start()
        judge_all(setup, len(batch))
        end = time.perf_counter()
        producer.finish()
    watch = setup.watch
    if watch.evaluations < len(batch):
        raise SystemExit(f"{watch.evaluations} verdicts for {len(batch)} frames")
    return (end - producer.t0) / len(batch), watch.evaluations, watch.reused


class Gate:
    """A capture listener that holds the reader thread on the first record it sees,
    so the producer can queue the rest in the bus before the consumer is timed."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.release = threading.Event()

    def __call__(self, rec: Record[Any]) -> None:
        if not self.release.is_set():
            self.holding.set()
            self.release.wait(WAIT_S)


def hil_prefilled(folder: Path, batch: list[can.Message]) -> tuple[float, float]:
    """Frames per wall and per CPU second of hil's consumer alone (reader thread,
    capture, decode and the invariant checks), every frame but the first queued in
    its bus before. The producer has finished: the process's CPU is the consumer's."""
    with hil_bench(folder) as setup:
        gate = Gate()
        setup.capture.add_listener(gate)
        producer = Producer(setup.channel, batch, after_first=gate.holding)
        producer.start()
        if not gate.holding.wait(WAIT_S):
            raise SystemExit("hil's reader thread never saw the first frame")
        producer.finish()
        before = setup.capture.seq  # the first frame, taken before the gate held the reader
        judge_all(setup, before)  # judged before the clock starts
        start, cpu = time.perf_counter(), time.process_time()
        gate.release.set()
        judge_all(setup, len(batch))
        end, cpu = time.perf_counter(), time.process_time() - cpu
        setup.capture.remove_listener(gate)
    if setup.watch.evaluations < len(batch):
        raise SystemExit(f"{setup.watch.evaluations} verdicts for {len(batch)} frames")
    return (len(batch) - before) / (end - start), (len(batch) - before) / cpu


def main() -> None:
    batch = frames(N)
    with tempfile.TemporaryDirectory(prefix="hil-can-stream-") as tmp:
        folder = Path(tmp)
        warm = frames(min(N, 2000))
        bare_stream(warm)  # warm-up: imports, caches
        hil_stream(folder, warm)
        bare_wall: list[float] = []
        hil_wall: list[float] = []
        bare_rate: list[tuple[float, float]] = []
        hil_rate: list[tuple[float, float]] = []
        evaluations = reused = 0
        for _ in range(REPS):  # interleaved: both loops see the same machine state
            bare_wall.append(bare_stream(batch))
            wall, evaluations, reused = hil_stream(folder, batch)
            hil_wall.append(wall)
            bare_rate.append(bare_prefilled(batch))
            hil_rate.append(hil_prefilled(folder, batch))
        with hil_bench(folder) as setup:
            invariants = setup.invariants
    b_wall, h_wall = statistics.median(bare_wall), statistics.median(hil_wall)
    b_rate = statistics.median(x[0] for x in bare_rate)
    h_rate = statistics.median(x[0] for x in hil_rate)
    b_cpu = statistics.median(x[1] for x in bare_rate)
    h_cpu = statistics.median(x[1] for x in hil_rate)
    emit("stream_frames", N, "frames")
    emit("bare_stream_per_frame", b_wall * 1e6, "us")
    emit("hil_stream_per_frame", h_wall * 1e6, "us")
    emit("hil_stream_ratio", h_wall / b_wall, "x")
    emit("bare_consumer_rate", b_rate, "frames/s")
    emit("hil_consumer_rate", h_rate, "frames/s")
    emit("hil_consumer_ratio", b_rate / h_rate, "x")
    emit("bare_consumer_cpu_rate", b_cpu, "frames/s")
    emit("hil_consumer_cpu_rate", h_cpu, "frames/s")
    emit("hil_invariants_watched", invariants, "invariants")
    emit("hil_invariant_evaluations", evaluations, "evaluations")
    emit("hil_invariant_reused", reused, "evaluations")


if __name__ == "__main__":
    main()
