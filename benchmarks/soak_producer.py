"""The car of the full-bus soak, in a process of its own: paced frames through a socketcand server.

    python benchmarks/soak_producer.py HOST PORT CHANNEL RATE SECONDS

Sends ``BMS_Status`` frames of ``devices/ev/ev.dbc`` at RATE frames/s for SECONDS,
each carrying its sequence number (mod 65536) in ``PackVoltage``'s raw bits and
a state of charge within 0 … 100 %. Paced on a fixed grid: every millisecond it
sends what is due, so a late wake-up is caught up and the average rate holds.
Prints ``sent: N frames`` and ``send_rate: R frames/s``.
"""

from __future__ import annotations

import sys
import time

import can

from devices.ev.driver import load_database


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


def main(host: str, port: int, channel: str, rate: float, seconds: float) -> None:
    frame_id = load_database().get_message_by_name("BMS_Status").frame_id
    data = payloads(min(65536, round(rate * seconds)))
    total = round(rate * seconds)
    bus = can.Bus(interface="socketcand", host=host, port=port, channel=channel)
    try:
        sent = 0
        t0 = time.perf_counter()
        while sent < total:
            due = min(total, int((time.perf_counter() - t0) * rate) + 1)
            while sent < due:
                msg = can.Message(
                    arbitration_id=frame_id, is_extended_id=False, data=data[sent % len(data)]
                )
                bus.send(msg)
                sent += 1
            time.sleep(0.001)
        elapsed = time.perf_counter() - t0
    finally:
        bus.shutdown()
    print(f"sent: {sent} frames", flush=True)
    print(f"send_rate: {sent / elapsed:.0f} frames/s", flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], int(a[1]), a[2], float(a[3]), float(a[4]))
