"""CAN capture throughput: hil's capture + DBC decode vs bare python-can + cantools.

One run, same machine, same virtual channel type, same frames: a producer
thread sends N ``Status`` frames as fast as python-can's virtual bus takes
them; the consumer either

* **bare**: ``bus.recv()`` + ``db.decode_message()`` for each frame, or
* **hil**: ``CanTransport`` (reader thread, timestamped capture) + the generic
  ``CanNodeDriver`` decoding every captured frame, polled the way a plan's
  expectation polls it.

Rate = N / (time the last frame was decoded − time the first was sent); the
median of ``HIL_BENCH_REPS`` runs. Prints both rates and hil's per-frame cost
as a ratio of the bare loop's (< 1 would mean hil is cheaper).

    .venv/bin/python benchmarks/can_capture.py        # HIL_BENCH_N=20000 HIL_BENCH_REPS=5
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid

import can
import cantools

from hil.cannode.definition import can_definition
from hil.cannode.driver import CanNodeDriver
from hil.transports.can import CanTransport

DBC_TEXT = """VERSION ""
NS_ :
BS_:
BU_: TESTER DUT
BO_ 256 Command: 8 TESTER
 SG_ Cmd : 0|8@1+ (1,0) [0|255] "" DUT
 SG_ Seq : 8|16@1+ (1,0) [0|65535] "" DUT
BO_ 512 Status: 8 DUT
 SG_ State : 0|8@1+ (1,0) [0|255] "" TESTER
 SG_ Seq : 8|16@1+ (1,0) [0|65535] "" TESTER
"""

N = int(os.environ.get("HIL_BENCH_N", "20000"))
REPS = int(os.environ.get("HIL_BENCH_REPS", "5"))
_loaded = cantools.database.load_string(DBC_TEXT, database_format="dbc")
assert isinstance(_loaded, cantools.database.can.Database)
DB = _loaded
STATUS = DB.get_message_by_name("Status")


def _produce(channel: str, n: int, started: list[float]) -> threading.Thread:
    frames = [
        can.Message(
            arbitration_id=STATUS.frame_id,
            is_extended_id=False,
            data=STATUS.encode({"State": 1, "Seq": i & 0xFFFF}),
        )
        for i in range(n)
    ]

    def run() -> None:
        with can.Bus(interface="virtual", channel=channel) as bus:
            started.append(time.perf_counter())
            for frame in frames:
                bus.send(frame)

    thread = threading.Thread(target=run, name="bench-producer")
    thread.start()
    return thread


def bare_rate(n: int) -> float:
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    started: list[float] = []
    with can.Bus(interface="virtual", channel=channel) as bus:
        producer = _produce(channel, n, started)
        got = 0
        while got < n:
            msg = bus.recv(timeout=5.0)
            if msg is None:
                raise RuntimeError(f"bare loop lost frames: {got}/{n}")
            DB.decode_message(msg.arbitration_id, msg.data)  # type: ignore[arg-type]
            got += 1
        end = time.perf_counter()
        producer.join()
    return n / (end - started[0])


def hil_rate(n: int) -> float:
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    definition = can_definition(DB, type_name="bench", bench_nodes=("TESTER",))
    started: list[float] = []
    with CanTransport(
        "dut", interface="virtual", channel=channel, capture_size=n + 10
    ) as transport:
        driver = CanNodeDriver("dut", transport, DB, definition)
        producer = _produce(channel, n, started)
        decoded = 0
        deadline = time.monotonic() + 60
        while decoded < n:  # what an expectation does: poll the capture, decode what is new
            decoded = len(driver.samples("Status.Seq", 0.0))
            if time.monotonic() > deadline:
                raise RuntimeError(f"hil lost frames: {decoded}/{n}")
            time.sleep(0.001)
        end = time.perf_counter()
        producer.join()
        values = driver.samples("Status.Seq", 0.0)
        assert len(values) == n and transport.capture.dropped == 0
        assert [int(s.value) for s in values[:5]] == [0, 1, 2, 3, 4]
        driver.close()
    return n / (end - started[0])


def main() -> None:
    bare_rate(2000)  # warm-up: imports, caches
    hil_rate(2000)
    # interleaved, so both loops see the same machine state (thread wake-ups on
    # a 2-core VM move these figures by up to 2x between passes)
    bare: list[float] = []
    hil: list[float] = []
    for _ in range(REPS):
        bare.append(bare_rate(N))
        hil.append(hil_rate(N))
    b, h = statistics.median(bare), statistics.median(hil)
    pair = statistics.median(x / y for x, y in zip(bare, hil, strict=True))
    print(f"frames per run: {N}, runs: {REPS} interleaved (medians)")
    print(f"bare_recv_decode_stream: {b:,.0f} frames/s ({1e6 / b:.1f} us/frame)")
    print(f"hil_capture_decode_stream: {h:,.0f} frames/s ({1e6 / h:.1f} us/frame)")
    print(f"hil/bare per-frame cost ratio: {b / h:.2f} (median of per-pair ratios: {pair:.2f})")


if __name__ == "__main__":
    main()
