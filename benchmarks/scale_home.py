"""Scale: an emulated home of 100 MIoT appliances, plus the car, the wallbox and the hub.

Builds, in a temporary folder, the shipped emulated bench (``benches/emulated.yaml``)
with extra ceiling lights (``light_001`` …) until the home holds
``HIL_BENCH_APPLIANCES`` (100) MIoT appliances, each its own pty and MCU emulator
and each linked to the hub as the shipped ones are. Extra lights stay off, so they
add no current to the household sum X3 judges. Opens it as one bench and runs the
hub scenarios X2 (welcome home) and X3 (household current limit) on it, judged by
the plans' own bounds.

Figures:

  scale_appliances / scale_devices       MIoT appliances / all devices opened
  scale_open_s           opening the whole bench (emulators, ptys, drivers)  [s]
  scale_rss_per_device   resident memory added per device (VmRSS)          [KiB]
  scale_threads_per_device  threads added per device
  scale_threads          threads of the process, bench open
  scale_idle_cpu         CPU of the open, idle home over 5 s (% of one core), and
                         per device: what its polling threads cost before any plan
  scale_idle_cpu_loops   of that, the two selector loops' threads (all the ptys of
                         the bench side and of the MCU emulators); the CPU of each
                         kind of thread is printed as ``#`` lines (/proc, Linux)
  scale_threads_per_role_max  threads of the most numerous kind (device names
                         folded to ``<device>``); the census itself is printed as
                         ``#`` lines, so a kind that scales with devices shows
  scale_X2_passed / scale_X3_passed   1 when the plan passed within its bounds
  scale_X2_s / scale_X3_s   wall time of each plan                          [s]

The same two plans on the shipped bench (7 appliances) in the same run give the
baseline: ``base_X2_s`` / ``base_X3_s``.

    .venv/bin/python benchmarks/scale_home.py
"""

from __future__ import annotations

import collections
import copy
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from figures import emit

from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan
from hil.plan.runner import PlanRunner
from hil.report.record import Status

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "benches" / "emulated.yaml"
PLANS = {
    "X2": ROOT / "testplans" / "interop" / "X2-welcome-home.yaml",
    "X3": ROOT / "testplans" / "interop" / "X3-household-current-limit.yaml",
}
APPLIANCES = int(os.environ.get("HIL_BENCH_APPLIANCES", "100"))
IDLE_S = 5.0
SERIAL_TYPES_NOT_APPLIANCES = {"phone"}  # on a pty too, but the person's, not the home's


def write_home(folder: Path, appliances: int) -> Path:
    """The shipped bench with lights added until it holds ``appliances`` appliances."""
    bench: dict[str, Any] = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    answers = bench.get("answers")
    if answers:  # the answers file sits beside the bench file
        shutil.copy(SHIPPED.parent / answers, folder / answers)
    devices: dict[str, Any] = bench["devices"]
    shipped = [
        n
        for n, d in devices.items()
        if "serial" in d and d["type"] not in SERIAL_TYPES_NOT_APPLIANCES
    ]
    template = devices["lights"]
    for i in range(1, appliances - len(shipped) + 1):
        light = copy.deepcopy(template)
        light["description"] = f"ceiling light {i} (MIoT MCU), added for the scale benchmark"
        devices[f"light_{i:03d}"] = light
    bench["id"] = f"emulated-home-{appliances}"
    path = folder / f"home-{appliances}.yaml"
    path.write_text(yaml.safe_dump(bench, sort_keys=False), encoding="utf-8")
    return path


def _status(field: str) -> int:
    """A field of /proc/self/status in its own unit (VmRSS: KiB; Threads: count)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise SystemExit(f"/proc/self/status has no {field}")


def thread_census(devices: list[str]) -> collections.Counter[str]:
    """Threads by kind: each name with the device it serves folded to ``<device>``."""
    return collections.Counter(_kind(t.name, devices) for t in threading.enumerate())


def thread_cpu_s() -> dict[int, float]:
    """CPU seconds of each thread of this process, by native id (/proc/self/task)."""
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / hz  # utime + stime
    return out


def cpu_by_kind(
    before: dict[int, float], after: dict[int, float], seconds: float, devices: list[str]
) -> dict[str, float]:
    """% of one core each kind of thread used between two ``thread_cpu_s`` readings."""
    kinds = {t.native_id: _kind(t.name, devices) for t in threading.enumerate()}
    used: dict[str, float] = collections.defaultdict(float)
    for tid, cpu in after.items():
        if tid in before and tid in kinds:
            used[kinds[tid]] += (cpu - before[tid]) / seconds * 100
    return used


def _kind(name: str, devices: list[str]) -> str:
    for device in sorted(devices, key=len, reverse=True):
        if f"-{device}" in name:
            return name.replace(f"-{device}", "-<device>", 1)
    return name


def run_plans(bench: Bench, evidence: Path) -> dict[str, tuple[bool, float, str]]:
    """Each plan's (passed, seconds, reason) on the open bench."""
    out = {}
    for plan_id, path in PLANS.items():
        loaded = load_plan(path)
        overrides = bench.loaded.parameter_overrides(loaded.id)
        resolved = resolve_plan(
            loaded.instances(overrides)[0], bench.definitions, bench.loaded.capabilities()
        )
        start = time.perf_counter()
        record = PlanRunner(bench, evidence_dir=evidence).run(resolved)
        seconds = time.perf_counter() - start
        out[plan_id] = (record.status is Status.PASSED, seconds, record.reason)
    return out


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hil-scale-") as tmp:
        folder = Path(tmp)
        with Bench(load_bench(SHIPPED)) as bench:  # baseline, and every import done
            base = run_plans(bench, folder / "base")
        home = load_bench(write_home(folder, APPLIANCES))
        rss0, threads0 = _status("VmRSS"), threading.active_count()
        start = time.perf_counter()
        with Bench(home) as bench:
            opened = time.perf_counter() - start
            rss1, threads1 = _status("VmRSS"), threading.active_count()
            census = thread_census(list(home.config.devices))
            cpu0, wall0, threads_cpu0 = time.process_time(), time.perf_counter(), thread_cpu_s()
            time.sleep(IDLE_S)  # the home idles: MCUs poll, readers wait, the hub ticks
            idle_s = time.perf_counter() - wall0
            idle_cpu = (time.process_time() - cpu0) / idle_s
            by_kind = cpu_by_kind(threads_cpu0, thread_cpu_s(), idle_s, list(home.config.devices))
            scaled = run_plans(bench, folder / "scale")
            devices = len(home.config.devices)
    appliances = sum(1 for d in home.config.devices.values() if d.serial is not None) - 1
    emit("scale_appliances", appliances, "appliances")
    emit("scale_devices", devices, "devices")
    emit("scale_open_s", opened, "s")
    emit("scale_rss_per_device", (rss1 - rss0) / devices, "KiB")
    emit("scale_threads_per_device", (threads1 - threads0) / devices, "threads")
    emit("scale_threads", threads1, "threads")
    emit("scale_idle_cpu", idle_cpu * 100, "%")
    emit("scale_idle_cpu_per_device", idle_cpu * 100 / devices, "%")
    loops = sum(cpu for kind, cpu in by_kind.items() if kind.startswith("hil-selector-"))
    emit("scale_idle_cpu_loops", loops, "%")
    for kind, cpu in sorted(by_kind.items(), key=lambda kc: -kc[1])[:8]:
        print(f"# idle cpu {kind}: {cpu:.1f} %")
    emit("scale_threads_per_role_max", max(census.values()), "threads")
    for kind, count in census.most_common():
        if count > 1:
            print(f"# threads {kind}: {count}")
    print(f"# threads of one kind each: {sum(1 for c in census.values() if c == 1)}")
    for plan_id in PLANS:
        ok, seconds, reason = scaled[plan_id]
        emit(f"scale_{plan_id}_passed", int(ok), "bool")
        emit(f"scale_{plan_id}_s", seconds, "s")
        emit(f"base_{plan_id}_s", base[plan_id][1], "s")
        if not ok:
            print(f"# {plan_id} on {APPLIANCES} appliances: {reason}")
        if not base[plan_id][0]:
            print(f"# {plan_id} on the shipped bench: {base[plan_id][2]}")


if __name__ == "__main__":
    main()
