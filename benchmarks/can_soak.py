"""Full-bus soak: 9,000 frames/s from another process, through hil's socketcand gateway.

Three processes, as in a lab: ``hil gateway`` serves a CAN channel;
``benchmarks/soak_producer.py`` plays the car and sends ``BMS_Status`` frames at
``HIL_BENCH_SOAK_RATE`` (9000; a saturated 500 kbit/s–1 Mbit/s bus carries
3,700–9,009 frames/s) for ``HIL_BENCH_SOAK_S`` seconds (60), each numbered, in
one write per millisecond against an absolute schedule; this
process is the bench: its ``ev`` is a real (not emulated) device behind the
gateway, and the plan invariant ``ev.BMS_Status.SoC <= 100`` is checked the way
the runner checks it while a step waits (``InvariantWatch.check()`` every tick).

A capture listener checks each frame's number as it is captured (every frame
arrived, in order). Figures:

  soak_sent / soak_captured / soak_lost / soak_out_of_order            [frames]
  soak_send_rate          what the producer achieved               [frames/s]
  soak_producer_writes    socket writes it took (one per 1 ms tick that had frames due)
  soak_bus_rate           frames over the span of their bus timestamps, first to last
                          as the gateway's bus stamped them                [frames/s]
  soak_drain_after_producer  how long the bench still captured after the producer's
                          last write (its backlog)                              [s]
  soak_invariants_watched  the plan's invariant plus the car type's safety envelope
  soak_invariant_evaluations  states judged, over all invariants (at least sent)
  soak_capture_evicted    oldest records the bounded capture let go (it keeps
                          the newest 500,000; the invariant saw them all)
  soak_bench_cpu          this process's CPU while it ran (of one core)   [%]

    .venv/bin/python benchmarks/can_soak.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from figures import emit, write_bench

from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan
from hil.plan.watch import InvariantWatch
from hil.transports.capture import RX, Record

HERE = Path(__file__).resolve().parent
RATE = float(os.environ.get("HIL_BENCH_SOAK_RATE", "9000"))
SECONDS = float(os.environ.get("HIL_BENCH_SOAK_S", "60"))
CHANNEL = "soak"
BMS_ID = 0x100
INVARIANT = "ev.BMS_Status.SoC <= 100"


class Sequence:
    """Capture listener: counts the car's frames and any break in their numbering."""

    def __init__(self) -> None:
        self.count = 0
        self.out_of_order = 0
        self._expected = 0
        self.first_t = self.last_t = 0.0  # bus timestamps of the first and last frame

    def __call__(self, rec: Record[Any]) -> None:
        msg = rec.data
        if rec.direction != RX or msg.arbitration_id != BMS_ID:
            return
        number = msg.data[2] | (msg.data[3] << 8)
        if number != self._expected:
            self.out_of_order += 1
        self._expected = (number + 1) & 0xFFFF
        if not self.count:
            self.first_t = rec.t
        self.last_t = rec.t
        self.count += 1


def start_gateway() -> tuple[subprocess.Popen[str], int]:
    command = [sys.executable, "-m", "hil", "gateway", "--interface", "virtual"]
    command += ["--channel", CHANNEL, "--host", "127.0.0.1", "--port", "0"]
    gateway = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert gateway.stdout is not None
    line = gateway.stdout.readline()
    if not line:
        gateway.kill()
        raise SystemExit("hil gateway did not start")
    return gateway, int(json.loads(line)["gateway"].rpartition(":")[2])


def write_plan(folder: Path) -> Path:
    plan = {
        "spec": 1,
        "id": "BENCH-SOAK",
        "title": "state of charge stays within 100 %",
        "devices": ["ev"],
        "invariants": [
            {"id": "soc", "name": "SoC within 100 %", "always": "ev.BMS_Status.SoC <= 100"}
        ],
        "steps": [{"id": "pause", "wait": {"duration": "0 s"}}],
    }
    path = folder / "soak-plan.yaml"
    path.write_text(yaml.safe_dump(plan), encoding="utf-8")
    return path


def soak(folder: Path, port: int) -> None:
    car = {
        "type": "ev",
        "emulated": False,
        "can": {
            "interface": "socketcand",
            "channel": CHANNEL,
            "options": {"host": "127.0.0.1", "port": port},
        },
    }
    loaded = load_bench(write_bench(folder, "can-soak", {"ev": car}))
    with Bench(loaded) as bench:
        resolved = resolve_plan(
            load_plan(write_plan(folder)).instances()[0], bench.definitions, loaded.capabilities()
        )

        def lookup(name: str) -> Any:
            raise KeyError(name)  # the invariant names only its own signal

        watch = InvariantWatch(bench, resolved.invariants, 0.0, lookup)
        transport = bench.get("ev").transport  # type: ignore[attr-defined]
        capture = transport.capture
        numbering = Sequence()
        capture.add_listener(numbering)
        producer = subprocess.Popen(
            [sys.executable, str(HERE / "soak_producer.py"), "127.0.0.1", str(port), CHANNEL]
            + [str(RATE), str(SECONDS)],
            stdout=subprocess.PIPE,
            text=True,
        )
        cpu0, wall0 = time.process_time(), time.perf_counter()
        # the producer sends every frame however late it gets (a loaded machine slows its
        # pacing, reported as soak_send_rate); the bench waits for all of them
        deadline = time.monotonic() + 3 * SECONDS + 60
        sent: int | None = None
        settled = -1
        while True:
            seq = capture.seq
            violation = watch.check()
            if violation is not None:
                producer.kill()
                raise SystemExit(f"invariant violated: {violation.message}")
            if sent is None and producer.poll() is not None:
                out, _ = producer.communicate()
                figures = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
                sent = int(figures["sent"].split()[0])
                send_rate = float(figures["send_rate"].split()[0])
                writes = int(figures["writes"].split()[0])
                producer_done = time.perf_counter()
            if sent is not None and numbering.count >= sent:
                if watch.evaluations == settled:  # a check found nothing more to judge
                    break
                settled = watch.evaluations
                continue
            if time.monotonic() > deadline or transport.lost is not None:
                producer.kill()  # a lost gateway fails the soak now, not at the deadline
                break
            capture.wait_beyond(seq, 0.05)  # the runner's wait tick
        wall1 = time.perf_counter()
        cpu = (time.process_time() - cpu0) / (wall1 - wall0)
        evicted = capture.dropped
        lost_link = transport.lost
    if lost_link is not None:
        raise SystemExit(f"the bench lost the gateway: {lost_link}")
    if sent is None:
        raise SystemExit("the producer did not finish in time")
    emit("soak_seconds", SECONDS, "s")
    emit("soak_sent", sent, "frames")
    emit("soak_send_rate", send_rate, "frames/s")
    emit("soak_producer_writes", writes, "writes")
    span = numbering.last_t - numbering.first_t
    emit("soak_bus_rate", (numbering.count - 1) / span if span > 0 else 0.0, "frames/s")
    emit("soak_drain_after_producer", wall1 - producer_done, "s")
    emit("soak_captured", numbering.count, "frames")
    emit("soak_lost", sent - numbering.count, "frames")
    emit("soak_out_of_order", numbering.out_of_order, "frames")
    emit("soak_invariants_watched", len(resolved.invariants), "invariants")
    emit("soak_invariant_evaluations", watch.evaluations, "evaluations")
    emit("soak_capture_evicted", evicted, "records")
    emit("soak_bench_cpu", cpu * 100, "%")


def main() -> None:
    gateway, port = start_gateway()
    try:
        with tempfile.TemporaryDirectory(prefix="hil-can-soak-") as tmp:
            soak(Path(tmp), port)
    finally:
        gateway.terminate()
        gateway.wait(timeout=10)


if __name__ == "__main__":
    main()
