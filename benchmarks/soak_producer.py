"""The car of the full-bus soak, in a process of its own: paced frames through a socketcand server.

    python benchmarks/soak_producer.py HOST PORT CHANNEL RATE SECONDS

Sends ``BMS_Status`` frames of ``devices/ev/ev.dbc`` at RATE frames/s for SECONDS,
each carrying its sequence number (mod 65536) in ``PackVoltage``'s raw bits and
a state of charge within 0 … 100 %. Paced against an absolute schedule: every
millisecond it sends what is due by then in one write, so a late wake-up is
caught up and the average rate holds however the machine is loaded. The
commands are formatted once, before the clock starts, by python-can's own
socketcand formatter; sending costs one system call per tick, not per frame
(python-can's client has no batch send; its ``send()`` writes each frame alone).
Prints ``sent: N frames``, ``send_rate: R frames/s`` and ``writes: W``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import can
from can.interfaces.socketcand.socketcand import convert_can_message_to_ascii_message

from devices.ev.driver import load_database

TICK_S = 0.001
BATCH_MAX = 4096  # frames in one write at most (well under the 65,536 numbers that wrap)


def payloads(count: int) -> list[bytes]:
    bms = load_database().get_message_by_name("BMS_Status")
    return [
        bytes(
            bms.encode(
                {
                    "SoC": (i % 1001) / 10,
                    "PackVoltage": (i & 0xFFFF) / 100,
                    "PackCurrent": 0.0,
                    "ContactorState": 0,
                    "LinkVoltage": 0.0,
                }
            )
        )
        for i in range(count)
    ]


def commands(frame_id: int, data: list[bytes]) -> list[str]:
    """``< send … >`` of each payload, as python-can's client would write it."""
    return [
        convert_can_message_to_ascii_message(
            can.Message(arbitration_id=frame_id, is_extended_id=False, data=payload)
        )
        for payload in data
    ]


def main(host: str, port: int, channel: str, rate: float, seconds: float) -> None:
    frame_id = load_database().get_message_by_name("BMS_Status").frame_id
    lines = commands(frame_id, payloads(min(65536, round(rate * seconds))))
    total = round(rate * seconds)
    bus = can.Bus(interface="socketcand", host=host, port=port, channel=channel)
    # the client's own socket write (see the module docstring)
    write: Callable[[str], None] = bus._tcp_send  # type: ignore[attr-defined]
    try:
        sent = writes = 0
        t0 = time.perf_counter()
        while sent < total:
            due = min(total, int((time.perf_counter() - t0) * rate) + 1, sent + BATCH_MAX)
            if due > sent:
                first, last = sent % len(lines), (due - 1) % len(lines)
                if first <= last:
                    write("".join(lines[first : last + 1]))
                else:  # the numbering wrapped within this batch
                    write("".join(lines[first:]) + "".join(lines[: last + 1]))
                writes += 1
                sent = due
            time.sleep(TICK_S)
        elapsed = time.perf_counter() - t0
    finally:
        bus.shutdown()
    print(f"sent: {sent} frames", flush=True)
    print(f"send_rate: {sent / elapsed:.0f} frames/s", flush=True)
    print(f"writes: {writes}", flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], int(a[1]), a[2], float(a[3]), float(a[4]))
