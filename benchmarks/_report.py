"""The latency block the round-trip benchmarks share (serial_rtt.py, visa_rtt.py).

Both compare hil's driver path with the bare library on the same peer and print
the same five figures; one function keeps their names and rounding identical.

    from _report import latency_row
    latency_row("serial", hil_s, bare_s)

prints ``bare_serial_rtt_p50``, ``bare_serial_rtt_p99``, ``hil_serial_rtt_p50``,
``hil_serial_rtt_p99`` [us] and ``hil_serial_rtt_p50_ratio``,
``hil_serial_rtt_p99_ratio`` [x], and returns the same lines as one string.
"""

from __future__ import annotations

import contextlib
import io

from figures import emit, pct

PERCENTILES = (50, 99)


def latency_row(name: str, hil_s: list[float], bare_s: list[float]) -> str:
    """Print (and return) the p50/p99 of both paths in microseconds and hil/bare ratios.

    ``hil_s`` and ``bare_s`` are round trips in seconds; ``name`` is the
    figure stem (``"serial"`` gives ``hil_serial_rtt_p50``).
    """
    if not hil_s or not bare_s:
        raise ValueError(f"{name}: no samples (hil {len(hil_s)}, bare {len(bare_s)})")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for side, got in (("bare", bare_s), ("hil", hil_s)):
            for p in PERCENTILES:
                emit(f"{side}_{name}_rtt_p{p}", pct(got, p) * 1e6, "us")
        for p in PERCENTILES:
            emit(f"hil_{name}_rtt_p{p}_ratio", pct(hil_s, p) / pct(bare_s, p), "x")
    text = out.getvalue()
    print(text, end="", flush=True)
    return text
