"""Every benchmark script still runs and prints every figure it promises.

Each script runs as the README runs it (a subprocess of this interpreter), with a
tiny N from its own environment knobs, so a benchmark that silently broke (an API
it uses changed, a figure went missing) fails here. No timing is judged: the
figures only have to be numbers. The peer scripts need the peer kit's ``_pb``,
which lives in the shared folder beside the repository; without it they skip.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
PEER_KIT = ROOT.parent / "shared" / "peer-bench"
FIGURE = re.compile(r"^([A-Za-z0-9_.\-]+):\s+([-+0-9.eE]+)\s+(\S+)\s*$")

# script → (tiny-N environment, figures it must print)
SCRIPTS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "peer/hil_plan.py": (
        {"PB_N": "4", "PB_RUNS": "1"},
        ("hil_plan_per_step", "hil_plan_json_per_step", "hil_plan_nomeas_per_step")
        + ("hil_plan_fixed",),
    ),
    "peer/hil_cli.py": (
        {"PB_N": "3", "PB_PYTEST_RUNS": "1"},
        ("hil_cli_fixed", "hil_cli_per_step", "hil_cli_allure_fixed", "hil_cli_allure_per_step"),
    ),
    "peer/hil_can.py": (
        {"PB_RTT_N": "20", "PB_STREAM_N": "200", "PB_STREAM_REPS": "1"},
        (
            "hil_expect_rtt_p50",
            "hil_expect_rtt_p99",
            "hil_expect_stream",
            "hil_expect_per_frame",
            "interleaved_hil_vs_bare_rtt_p50",
            "interleaved_hil_vs_tester_rtt_p99",
        ),
    ),
    "can_stream.py": (
        {"HIL_BENCH_N": "300", "HIL_BENCH_REPS": "1"},
        ("bare_stream_per_frame", "hil_stream_per_frame", "hil_stream_ratio")
        + ("bare_consumer_rate", "hil_consumer_rate", "hil_consumer_ratio")
        + ("bare_consumer_cpu_rate", "hil_consumer_cpu_rate")
        + ("hil_invariant_evaluations", "hil_invariant_reused"),
    ),
    "can_soak.py": (
        {"HIL_BENCH_SOAK_S": "1", "HIL_BENCH_SOAK_RATE": "500"},
        ("soak_sent", "soak_captured", "soak_lost", "soak_out_of_order")
        + ("soak_invariant_evaluations", "soak_capture_evicted", "soak_bench_cpu")
        + ("soak_producer_writes", "soak_bus_rate", "soak_drain_after_producer"),
    ),
    "serial_rtt.py": (
        {"HIL_BENCH_RTT_N": "20"},
        ("bare_serial_rtt_p50", "bare_serial_rtt_p99", "hil_serial_rtt_p50")
        + ("hil_serial_rtt_p99", "hil_serial_rtt_p50_ratio", "hil_serial_rtt_p99_ratio"),
    ),
    "visa_rtt.py": (
        {"HIL_BENCH_RTT_N": "100"},
        ("bare_visa_rtt_p50", "bare_visa_rtt_p99", "hil_visa_rtt_p50", "hil_visa_rtt_p99")
        + ("hil_visa_rtt_p50_ratio", "hil_visa_rtt_p99_ratio"),
    ),
    "plan_load.py": (
        {"HIL_BENCH_PLANS": "12", "HIL_BENCH_REPS": "1"},
        ("plan_load_s", "plan_load_cpu_s", "plan_load_goal_ratio", "bare_yaml_parse_s")
        + ("plan_load_bare_ratio", "bare_yaml_parse_cpu_s", "plan_load_bare_cpu_ratio")
        + ("bare_yaml_parse_nogc_s",)
        + ("plan_load_warm_s", "plan_load_warm_cpu_s", "plan_load_warm_goal_ratio")
        + ("plan_load_warm_bare_ratio", "plan_load_nocache_s", "plan_load_nocache_bare_ratio")
        + ("plan_validate_cli_s",),
    ),
    "scale_home.py": (
        {"HIL_BENCH_APPLIANCES": "9"},
        ("scale_appliances", "scale_open_s", "scale_rss_per_device", "scale_threads_per_device")
        + ("scale_idle_cpu",)
        + ("scale_X2_passed", "scale_X3_passed", "scale_X2_s", "scale_X3_s"),
    ),
}


def figures(output: str) -> dict[str, float]:
    """The ``<name>: <value> <unit>`` lines of a benchmark's output."""
    found = {}
    for line in output.splitlines():
        m = FIGURE.match(line.strip())
        if m:
            found[m.group(1)] = float(m.group(2))
    return found


def missing(output: str, names: tuple[str, ...]) -> list[str]:
    """The promised figures the output lacks (or prints without a number)."""
    got = figures(output)
    return [n for n in names if n not in got]


def test_the_check_finds_a_missing_or_non_numeric_figure() -> None:
    healthy = "hil_plan_per_step: 61.2 us\nhil_plan_fixed: 21 ms\n# a note\n"
    assert missing(healthy, ("hil_plan_per_step", "hil_plan_fixed")) == []
    no_number = "hil_plan_per_step: fast us\nhil_plan_fixed: 21 ms\n"
    assert missing(no_number, ("hil_plan_per_step", "hil_plan_fixed")) == ["hil_plan_per_step"]
    assert missing("", ("hil_plan_fixed",)) == ["hil_plan_fixed"]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_benchmark_prints_every_figure(script: str, tmp_path: Path) -> None:
    env_n, names = SCRIPTS[script]
    env = {**os.environ, **env_n, "PEERBENCH_TMP": str(tmp_path)}
    if script.startswith("peer/"):
        if not (PEER_KIT / "_pb.py").is_file():
            pytest.skip(f"the peer kit is not beside the repository ({PEER_KIT})")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PEER_KIT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr[-3000:]}"
    assert missing(done.stdout, names) == [], done.stdout
