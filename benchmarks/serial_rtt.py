"""MIoT over a pty: hil's module driver vs a bare pyserial loop, on the same emulated MCU.

The emulated smart plug's MCU polls (``get_down``) every 2 ms here, so a request
waits little for its turn. Both sides play the Wi-Fi module on the same kind of
pty and ask ``get_properties 2 1`` (switch.on); the round trip is measured from
the ``get_down`` that carried the request to the moment the caller has the
``result``:

* **bare**: pyserial ``read_until(b"\\r")`` → ``get_down`` (t0) → write ``down
  get_properties 2 1`` → read until the ``result`` (t1);
* **hil**: ``MiotModuleDriver.request()`` queued beforehand; t0 = the capture
  timestamp of that ``get_down``, t1 = when ``request()`` returns to the caller.

Each side has its own emulated plug (both polling all along, on the same MCU
loop); the two run interleaved in blocks of 100 trips so both see the same
machine. Figures: ``bare_serial_rtt_p50/_p99``, ``hil_serial_rtt_p50/_p99`` [us]
and the ratios (goal ≤ 1.2), printed by ``_report.latency_row``.
``HIL_BENCH_RTT_N`` trips (default 1000) after 50 warm-up.

    .venv/bin/python benchmarks/serial_rtt.py
"""

from __future__ import annotations

import bisect
import tempfile
import time
from pathlib import Path

import serial
from _report import latency_row
from figures import env_int, write_bench

from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from hil.miot.module import MiotModuleDriver
from hil.standalone import EmulatorHost

N = env_int("HIL_BENCH_RTT_N", 1000)
WARMUP = 50
BLOCK = 100
PLUG = {
    "type": "smart_plug",
    "emulated": True,
    "serial": {"port": "auto", "baudrate": 115200},
    "settings": {"poll_period_s": 0.002},
}


def bare_trips(port: serial.Serial, n: int) -> list[float]:
    """``n`` round trips of a bare pyserial module loop on its own plug's pty."""
    port.reset_input_buffer()  # the polls that queued up while the other side ran
    samples: list[float] = []
    for _ in range(n):
        t0 = None
        while True:
            line = port.read_until(b"\r")
            if not line:
                raise SystemExit("bare: the MCU went quiet")
            word = line.strip().split(b" ", 1)[0]
            if word == b"get_down" and t0 is None:
                t0 = time.perf_counter()
                port.write(b"down get_properties 2 1\r")
            elif word == b"get_down":
                port.write(b"down none\r")
            elif word in (b"model", b"mcu_version", b"properties_changed"):
                port.write(b"ok\r")
            elif word == b"result" and t0 is not None:
                break
        samples.append(time.perf_counter() - t0)
    return samples


def hil_trips(driver: MiotModuleDriver, n: int) -> list[float]:
    """``n`` round trips of ``MiotModuleDriver.request()``, from the carrying get_down on."""
    trips: list[tuple[float, float]] = []
    for _ in range(n):
        request = driver.request("get_properties", 2, 1)
        done = time.time()
        assert request.reply is not None and request.reply.command == "result"
        assert request.t_sent is not None
        trips.append((request.t_sent, done))
    polls = [r.t for r in driver.transport.capture.records() if r.data == "get_down"]
    samples = []
    for sent, done in trips:
        k = bisect.bisect_right(polls, sent) - 1
        samples.append(done - polls[k])
    return samples


def main() -> None:
    bare: list[float] = []
    hil: list[float] = []
    with tempfile.TemporaryDirectory(prefix="hil-serial-rtt-") as tmp:
        # two plugs, both polling all along: the bare loop's and the bench's
        bare_bench = write_bench(Path(tmp), "serial-rtt-bare", {"smart_plug": PLUG})
        hil_bench = write_bench(Path(tmp), "serial-rtt-hil", {"smart_plug": PLUG})
        with (
            EmulatorHost(load_bench(bare_bench), ["smart_plug"]) as host,
            serial.Serial(
                str(host.emulators["smart_plug"].endpoint["url"]), 115200, timeout=2.0
            ) as port,
            Bench(load_bench(hil_bench)) as bench,
        ):
            driver = bench.get("smart_plug")
            assert isinstance(driver, MiotModuleDriver)
            bare_trips(port, WARMUP)
            hil_trips(driver, WARMUP)
            while len(hil) < N:  # interleaved, so both see the same machine
                bare += bare_trips(port, BLOCK)
                hil += hil_trips(driver, BLOCK)
    latency_row("serial", hil, bare)


if __name__ == "__main__":
    main()
