"""hil's CAN expectation, measured the way the peer kit measures cantools.tester.

Run by the peer kit (``HIL_BENCH=... ./run.sh 3`` in ``shared/peer-bench``; it puts
``_pb`` on ``PYTHONPATH``): the same DBC (``_pb.DBC_TEXT``), the same simulated DUT
(``_pb.Responder``), the same producer (``_pb.produce_status``) and counts.

hil's side is what a plan step uses: ``CanTransport`` (every frame captured with
its timestamp: by a reader thread, or, while a step waits, by the waiting thread
itself, see ``CanTransport.pump``) and ``CanNodeDriver`` (lazy DBC decode of the
capture); a step sends with ``send_message`` and expects with ``wait_for`` judged
on capture timestamps from the send on.

  hil_expect_rtt_p50 / _p99   send Command {Cmd: 1, Seq: i} + wait_for Status.Seq
                              == i, 200 warm-up then PB_RTT_N (2000) trips   [us]
  hil_expect_stream           producer sends PB_STREAM_N (20000) Status frames
                              as fast as it can; wait_for Status.Seq == i for
                              each i in turn (each from the previous match's
                              timestamp on); median of PB_STREAM_REPS (3); a
                              stream still running after 40 s is measured over
                              the frames expected by then (noted on stderr) [frames/s]
  hil_expect_per_frame        1e6 / the above                               [us]

  interleaved_*               the round trip of hil, bare python-can (the kit's
                              raw_rtt loop) and cantools.tester (its rtt loop) in
                              one process, in PB_HIL_ROUNDS (5) alternating rounds
                              of PB_RTT_N / rounds trips each, each with its own
                              _pb.Responder: p50/p99 of the pooled trips [us], and
                              the ratios hil/bare and hil/tester per round, their
                              median. The kit runs each framework in its own
                              process one after another, so on a shared machine a
                              change of speed between processes moves its ratios;
                              rounds that alternate within seconds see the same
                              machine.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import can
from _pb import (  # type: ignore[import-not-found]
    CMD_ID,
    DBC_TEXT,
    STATUS_ID,
    Responder,
    emit,
    env_int,
    load_db,
    median,
    note,
    now,
    pct,
    produce_status,
    virtual_bus,
)
from cantools.tester import Tester as _Tester

from hil.cannode.definition import can_definition
from hil.cannode.driver import CanNodeDriver
from hil.transports.can import CanTransport

Tester: Any = _Tester  # untyped: its calls are checked by its own tests
RTT_N = env_int("PB_RTT_N", 2000)
STREAM_N = env_int("PB_STREAM_N", 20000)
STREAM_REPS = env_int("PB_STREAM_REPS", 3)
# a stream that slow (the kit allows a script 300 s) is measured over the frames it got through
STREAM_BUDGET_S = env_int("PB_HIL_STREAM_BUDGET_S", 40)
WARMUP = 200


def open_driver(channel: str, capture: int) -> tuple[CanTransport, CanNodeDriver]:
    db = load_db()
    definition = can_definition(db, type_name="peer-dut", bench_nodes=("TESTER",))
    transport = CanTransport("dut", interface="virtual", channel=channel, capture_size=capture)
    transport.open()
    return transport, CanNodeDriver("dut", transport, db, definition)


ROUNDS = env_int("PB_HIL_ROUNDS", 5)
ROUND_WARMUP = 50


def rtt() -> None:
    samples = hil_round("pb-hil-rtt", 0, RTT_N, warmup=WARMUP)
    emit("hil_expect_rtt_p50", pct(samples, 50) * 1e6, "us")
    emit("hil_expect_rtt_p99", pct(samples, 99) * 1e6, "us")


def hil_round(channel: str, first: int, count: int, warmup: int = ROUND_WARMUP) -> list[float]:
    """``warmup`` + ``count`` send + expect trips from sequence number ``first``; the
    times of the last ``count``."""
    transport, driver = open_driver(channel, 4 * (warmup + count))
    samples: list[float] = []
    try:
        with Responder(channel) as responder:
            for i in range(first, first + warmup + count):
                seq = i & 0xFFFF
                t0 = now()
                sent = driver.send_message("Command", {"Cmd": 1, "Seq": seq})
                driver.wait_for("Status.Seq", seq, 2.0, since=sent)
                samples.append(now() - t0)
            if responder.replies != warmup + count:
                raise SystemExit(f"responder answered {responder.replies} commands")
    finally:
        driver.close()
        transport.close()
    return samples[warmup:]


def bare_round(channel: str, first: int, count: int) -> list[float]:
    """The peer kit's raw_rtt loop (raw_baselines.rtt)."""
    bus = virtual_bus(channel)
    samples: list[float] = []
    message = can.Message
    try:
        with Responder(channel):
            for i in range(first, first + ROUND_WARMUP + count):
                seq = i & 0xFFFF
                want = bytes([seq & 0xFF, seq >> 8])
                t0 = now()
                bus.send(
                    message(
                        arbitration_id=CMD_ID,
                        is_extended_id=False,
                        data=bytes([1, seq & 0xFF, seq >> 8, 0, 0, 0, 0, 0]),
                    )
                )
                while True:
                    m = bus.recv(timeout=2.0)
                    if m is None:
                        raise SystemExit(f"no Status for Seq={seq} within 2 s")
                    if m.arbitration_id == STATUS_ID and bytes(m.data[1:3]) == want:
                        break
                samples.append(now() - t0)
    finally:
        bus.shutdown()
    return samples[ROUND_WARMUP:]


def tester_round(channel: str, first: int, count: int) -> list[float]:
    """The peer kit's cantools.tester rtt loop (cantools_tester.rtt)."""
    bus = virtual_bus(channel)
    tester = Tester("DUT", load_db(), bus)
    tester.start()
    samples: list[float] = []
    try:
        with Responder(channel):
            for i in range(first, first + ROUND_WARMUP + count):
                seq = i & 0xFFFF
                t0 = now()
                tester.send("Command", {"Cmd": 1, "Seq": seq})
                if tester.expect("Status", {"Seq": seq}, timeout=2.0) is None:
                    raise SystemExit(f"no Status for Seq={seq} within 2 s")
                samples.append(now() - t0)
    finally:
        tester.stop()
        tester._notifier.stop()  # Tester has no close(); stop its reader thread
        bus.shutdown()
    return samples[ROUND_WARMUP:]


def rtt_interleaved() -> None:
    count = max(1, RTT_N // ROUNDS)
    pooled: dict[str, list[float]] = {"hil": [], "bare": [], "tester": []}
    ratios: dict[tuple[str, int], list[float]] = {
        (peer, p): [] for peer in ("bare", "tester") for p in (50, 99)
    }
    rounds = {"hil": hil_round, "bare": bare_round, "tester": tester_round}
    for r in range(ROUNDS):
        got = {name: run(f"pb-il-{name}{r}", r * 1000, count) for name, run in rounds.items()}
        for name, samples in got.items():
            pooled[name].extend(samples)
        for peer in ("bare", "tester"):
            for p in (50, 99):
                ratios[peer, p].append(pct(got["hil"], p) / pct(got[peer], p))
    for name, samples in pooled.items():
        emit(f"interleaved_{name}_rtt_p50", pct(samples, 50) * 1e6, "us")
        emit(f"interleaved_{name}_rtt_p99", pct(samples, 99) * 1e6, "us")
    for (peer, p), values in ratios.items():
        emit(f"interleaved_hil_vs_{peer}_rtt_p{p}", median(values), "x")


def stream_once(rep: int) -> float:
    channel = f"pb-hil-stream{rep}"
    transport, driver = open_driver(channel, 2 * STREAM_N)
    producer, result = produce_status(channel, STREAM_N)
    try:
        producer.start()
        wait_for = driver.wait_for
        since = 0.0
        budget = now() + STREAM_BUDGET_S
        done = 0
        while done < STREAM_N and now() < budget:
            since = wait_for("Status.Seq", done & 0xFFFF, 5.0, since=since).t
            done += 1
        t1 = now()
        producer.join()
        if transport.capture.dropped:
            raise SystemExit(f"capture dropped {transport.capture.dropped} frames")
    finally:
        driver.close()
        transport.close()
        producer.bus.shutdown()
    if done < STREAM_N:
        note(f"stream {rep}: {done}/{STREAM_N} frames expected within {STREAM_BUDGET_S:g} s")
    return float(done / (t1 - result["t0"]))


def stream() -> None:
    rate = median([stream_once(r) for r in range(STREAM_REPS)])
    emit("hil_expect_stream", rate, "frames/s")
    emit("hil_expect_per_frame", 1e6 / rate, "us")


def main() -> None:
    assert DBC_TEXT  # the peer kit's database, loaded by load_db()
    rtt()
    stream()
    rtt_interleaved()
    note(f"hil can rtt_n={RTT_N} stream_n={STREAM_N} ({Path(sys.executable).name})")


if __name__ == "__main__":
    main()
