"""Plan loading: 1,000 plans loaded, expanded and resolved against the emulated bench.

Writes 1,000 variations of the shipped plans (``testplans/**/*.yaml``: new ids,
scaled parameter defaults, some with a matrix, some with extra steps) into a
temporary folder, then times, in this process, ``load_plan`` →
``instances()`` → ``resolve_plan`` over all of them: one warm-up, then the
median of 5 runs. The goal is under 2 s for the lot. It then times
``hil plans validate`` on the same folder as a subprocess (interpreter start,
imports and bench loading included) and prints that separately.

Plans go through hil's plan cache (``hil.plan_cache``) as in use, so each run is
timed three ways, interleaved with the bare parse so all see the same machine:
**cold** (an empty cache: every file parsed and its entry written, what a first run
costs), **warm** (every entry present, what a run over unchanged files costs) and
with the cache off (``HIL_PLAN_CACHE=0``, what loading cost before the cache). The
cold figure is the one the goal is judged on; the warm one is printed apart.

Figures: ``plan_load_s`` (cold median, s), ``plan_load_per_plan`` (ms),
``plan_load_cpu_s`` (this process's CPU, steadier on a shared machine),
``plan_load_goal_ratio`` (÷ 2 s; < 1 meets the goal), ``bare_yaml_parse_s`` (PyYAML's
libyaml loader alone on the same files: the floor) and ``plan_load_bare_ratio``,
``bare_yaml_parse_cpu_s`` and ``plan_load_bare_cpu_ratio`` (the same in CPU time, which
a shared machine disturbs less than wall time); ``plan_load_warm_s``,
``plan_load_warm_cpu_s``, ``plan_load_warm_goal_ratio`` and ``plan_load_warm_bare_ratio``
(warm cache); ``plan_load_nocache_s`` and ``plan_load_nocache_bare_ratio`` (cache off);
``plan_validate_cli_s`` (cold cache).

hil pauses the garbage collector while it loads and resolves a plan
(``hil.gc_policy``); the bare parse runs as a caller of PyYAML would, collector
on. ``bare_yaml_parse_nogc_s`` is the bare parse with the collector paused
too, so the share of the ratio that the pause makes is visible.

    .venv/bin/python benchmarks/plan_load.py       # HIL_BENCH_PLANS=1000 HIL_BENCH_REPS=5
"""

from __future__ import annotations

import copy
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from figures import emit

from hil.bench.definition import DeviceDefinition
from hil.bench.loader import load_bench
from hil.gc_policy import gc_paused
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benches" / "emulated.yaml"
PLANS = ROOT / "testplans"
GOAL_S = 2.0

# a parameter each plan can run as a matrix, with values its steps accept
MATRICES: dict[str, tuple[str, list[float]]] = {
    "E1": ("target_kmh", [30, 40, 60]),
    "A1": ("overload_a", [12, 14]),
    "A0": ("load_a", [1, 3, 5]),
    "NE1": ("load_a", [1, 2]),
}


def variant(base: dict[str, Any], i: int) -> dict[str, Any]:
    """Plan ``i``: the shipped plan with a new id and its own parameters and steps."""
    plan = copy.deepcopy(base)
    plan["id"] = f"{base['id']}-{i:04d}"
    plan["title"] = f"{base['title']} (variant {i})"
    factor = 0.9 + (i % 7) * 0.05  # 0.90 … 1.20, the same for every number of the plan
    for p in plan.get("parameters", {}).values():
        if p.get("type", "number") == "number" and isinstance(p["default"], int | float):
            value = round(p["default"] * factor, 3)
            if p.get("max") is not None:
                value = min(value, p["max"])
            if p.get("min") is not None:
                value = max(value, p["min"])
            p["default"] = value
    if i % 4 == 0 and base["id"] in MATRICES and "matrix" not in plan:
        name, values = MATRICES[base["id"]]
        plan["matrix"] = {name: values}
    for k in range(i % 3):  # 0-2 extra steps: a pause and, where there is one, an expectation
        plan["steps"].append({"id": f"extra-wait-{k}", "wait": {"duration": f"{100 + k} ms"}})
        expects = [s for s in base["steps"] if "expect" in s and "save_as" not in s]
        if expects:
            extra = copy.deepcopy(expects[k % len(expects)])
            extra["id"] = f"extra-expect-{k}"
            plan["steps"].append(extra)
    return plan


def write_plans(folder: Path, count: int) -> list[Path]:
    docs = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(PLANS.rglob("*.yaml"))]
    # the folder also holds the canary and requirement catalogues: plans have steps
    shipped = [d for d in docs if isinstance(d, dict) and "id" in d and "steps" in d]
    paths = []
    for i in range(count):
        base = shipped[i % len(shipped)]
        path = folder / f"{base['id']}-{i:04d}.yaml"
        text = yaml.safe_dump(variant(base, i), sort_keys=False, allow_unicode=True)
        path.write_text("# yaml-language-server: $schema=plan.schema.json\n" + text)
        paths.append(path)
    return paths


def load_all(
    paths: list[Path],
    definitions: dict[str, DeviceDefinition],
    capabilities: dict[str, frozenset[str]],
) -> int:
    """Load, expand and resolve every plan; the number of plan instances."""
    instances = 0
    for path in paths:
        for instance in load_plan(path).instances():
            resolve_plan(instance, definitions, capabilities)
            instances += 1
    return instances


def parse_all(paths: list[Path]) -> int:
    """The bare library's share: PyYAML's libyaml loader on the same files, nothing else."""
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return sum(len(yaml.load(p.read_text(encoding="utf-8"), Loader=loader)) for p in paths)


def main() -> None:
    count = int(os.environ.get("HIL_BENCH_PLANS", "1000"))
    reps = int(os.environ.get("HIL_BENCH_REPS", "5"))
    bench = load_bench(BENCH)
    definitions, capabilities = bench.definitions(), bench.capabilities()
    with tempfile.TemporaryDirectory(prefix="hil-plan-bench-") as tmp:
        folder = Path(tmp)
        paths = write_plans(folder, count)
        # the caches live where hil keeps one by default (under the project, or in
        # $HIL_CACHE_DIR), on the disk a lab's checkout is on
        caches_home = Path(os.environ.get("HIL_CACHE_DIR") or ROOT / ".hil_cache")
        caches_home.mkdir(parents=True, exist_ok=True)
        caches = Path(tempfile.mkdtemp(prefix="plan-load-bench-", dir=caches_home))
        os.environ["HIL_CACHE_DIR"] = str(caches / "warm-up")
        os.environ.pop("HIL_PLAN_CACHE", None)  # on for the cold and warm runs, whatever was set
        instances = load_all(paths, definitions, capabilities)  # warm-up; fails on a bad variant
        times, cpus, bare, bare_cpus, bare_nogc = [], [], [], [], []
        warm, warm_cpus, nocache = [], [], []
        for rep in range(reps):  # interleaved with the bare parse, so all see the same machine
            os.environ["HIL_CACHE_DIR"] = str(caches / f"run-{rep}")  # empty: cold
            start, cpu = time.perf_counter(), time.process_time()
            load_all(paths, definitions, capabilities)
            times.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            start, cpu = time.perf_counter(), time.process_time()  # the same cache, now full
            load_all(paths, definitions, capabilities)
            warm.append(time.perf_counter() - start)
            warm_cpus.append(time.process_time() - cpu)
            os.environ["HIL_PLAN_CACHE"] = "0"
            start = time.perf_counter()
            load_all(paths, definitions, capabilities)
            nocache.append(time.perf_counter() - start)
            del os.environ["HIL_PLAN_CACHE"]
            start, cpu = time.perf_counter(), time.process_time()
            parse_all(paths)
            bare.append(time.perf_counter() - start)
            bare_cpus.append(time.process_time() - cpu)
            start = time.perf_counter()
            with gc_paused():
                parse_all(paths)
            bare_nogc.append(time.perf_counter() - start)
        os.environ["HIL_CACHE_DIR"] = str(caches / "cli")  # the command starts cold too
        median = statistics.median(times)

        hil = Path(sys.executable).with_name("hil")
        command = [str(hil)] if hil.exists() else [sys.executable, "-m", "hil"]
        start = time.perf_counter()
        done = subprocess.run(
            [*command, "plans", "validate", str(folder), "--bench", str(BENCH)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        cli = time.perf_counter() - start
        shutil.rmtree(caches, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"hil plans validate failed:\n{done.stdout}{done.stderr}")
    emit("plan_load_plans", count, "plans")
    emit("plan_load_instances", instances, "instances")
    emit("plan_load_s", median, "s")
    emit("plan_load_per_plan", median / count * 1000, "ms")
    emit("plan_load_cpu_s", statistics.median(cpus), "s")
    emit("plan_load_goal_ratio", median / GOAL_S, "x")
    emit("bare_yaml_parse_s", statistics.median(bare), "s")
    emit("plan_load_bare_ratio", median / statistics.median(bare), "x")
    emit("bare_yaml_parse_cpu_s", statistics.median(bare_cpus), "s")
    emit("plan_load_bare_cpu_ratio", statistics.median(cpus) / statistics.median(bare_cpus), "x")
    emit("bare_yaml_parse_nogc_s", statistics.median(bare_nogc), "s")
    warm_median = statistics.median(warm)
    emit("plan_load_warm_s", warm_median, "s")
    emit("plan_load_warm_cpu_s", statistics.median(warm_cpus), "s")
    emit("plan_load_warm_goal_ratio", warm_median / GOAL_S, "x")
    emit("plan_load_warm_bare_ratio", warm_median / statistics.median(bare), "x")
    emit("plan_load_nocache_s", statistics.median(nocache), "s")
    emit("plan_load_nocache_bare_ratio", statistics.median(nocache) / statistics.median(bare), "x")
    emit("plan_validate_cli_s", cli, "s")
    print(f"# cold runs: {', '.join(f'{t:.3f}' for t in times)}; goal < {GOAL_S:g} s")
    print(f"# warm runs: {', '.join(f'{t:.3f}' for t in warm)}")
    print(f"# cache off: {', '.join(f'{t:.3f}' for t in nocache)}")
    print(f"# bare parse: {', '.join(f'{t:.3f}' for t in bare)}")
    print(f"# hil plans validate: {done.stdout.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
