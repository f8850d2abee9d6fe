"""SCPI over pyvisa-py SOCKET: hil's power-analyzer driver vs a bare pyvisa query.

The same emulated power analyzer (an SCPI server on 127.0.0.1) answers both;
both ask for the numeric values (``:NUMeric:NORMal:VALue?``):

* **bare**: ``pyvisa.ResourceManager("@py").open_resource(...).query(...)``;
* **hil**: ``PowerAnalyzerDriver.read("P")``, what a plan's measurement does: the
  query through ``VisaTransport`` (serialised, captured), parsed into a sample
  carrying the capture timestamp.

Figures: ``bare_visa_rtt_p50/_p99``, ``hil_visa_rtt_p50/_p99`` [us] and the ratios
(goal ≤ 1.2), printed by ``_report.latency_row``; ``HIL_BENCH_RTT_N`` trips
(default 2000) after 100 warm-up, the two interleaved in blocks of 100 so both
see the same machine.

    .venv/bin/python benchmarks/visa_rtt.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pyvisa
from _report import latency_row
from figures import env_int, write_bench

from devices.power_analyzer.driver import VALUE_QUERY
from hil.bench.bench import Bench
from hil.bench.loader import load_bench

N = env_int("HIL_BENCH_RTT_N", 2000)
WARMUP = 100
BLOCK = 100
ANALYZER = {
    "type": "power_analyzer",
    "emulated": True,
    "visa": {"resource": "auto", "backend": "@py"},
    "settings": {"elements": 1},
}


def main() -> None:
    bare: list[float] = []
    hil: list[float] = []
    with tempfile.TemporaryDirectory(prefix="hil-visa-rtt-") as tmp:
        bench_path = write_bench(Path(tmp), "visa-rtt", {"power_analyzer": ANALYZER})
        with Bench(load_bench(bench_path)) as bench:
            driver = bench.get("power_analyzer")
            resource = driver.transport.resource  # type: ignore[attr-defined]
            rm = pyvisa.ResourceManager("@py")
            inst = rm.open_resource(resource, read_termination="\n", write_termination="\n")
            assert isinstance(inst, pyvisa.resources.MessageBasedResource)
            try:
                done = 0
                while done < WARMUP + N:
                    for _ in range(BLOCK):
                        t0 = time.perf_counter()
                        answer = inst.query(VALUE_QUERY)
                        dt = time.perf_counter() - t0
                        if not answer or done < WARMUP:
                            continue
                        bare.append(dt)
                    for _ in range(BLOCK):
                        t0 = time.perf_counter()
                        sample = driver.read("P")
                        dt = time.perf_counter() - t0
                        if sample.value is None or done < WARMUP:
                            continue
                        hil.append(dt)
                    done += BLOCK
            finally:
                inst.close()
                rm.close()
    latency_row("visa", hil, bare)


if __name__ == "__main__":
    main()
