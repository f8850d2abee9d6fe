"""hil's plan engine as a pytest subprocess, measured the way the peer kit measures pytest.

Run by the peer kit beside ``hil_plan.py`` (its own script, so each stays within
the kit's 300 s per script). The plan of N measurement steps (``benchplan``) is
one pytest item of hil's plugin; ``python -m pytest -q -p no:cacheprovider`` with
plugin autoload off and only hil's plugin (and Allure's) loaded with ``-p``;
interpreter start, imports, bench opening and plan loading included; median of
``PB_PYTEST_RUNS`` (3); ``(wall(N) − wall(1)) / (N − 1)``.

  hil_cli_fixed             wall of a 1-step plan                          [ms]
  hil_cli_per_step          marginal cost of a step                        [us]
  hil_cli_allure_fixed      same with ``--alluredir`` and ``--hil-results``
                            (Allure results and the JSON plan record)      [ms]
  hil_cli_allure_per_step                                                  [us]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchplan
from _pb import env_int, note, now  # type: ignore[import-not-found]
from benchplan import write_bench, write_plan
from per_step import emit_per_step, work_folder

N = env_int("PB_N", 1000)
PYTEST_RUNS = env_int("PB_PYTEST_RUNS", 3)


def pytest_wall(bench_path: Path, plan_path: Path, allure: Path | None) -> float:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "hil.pytest_plugin.plugin", "--bench", str(bench_path)]
    if allure is not None:
        results = allure.parent / f"{allure.name}-records"
        command += ["-p", "allure_pytest.plugin", "--alluredir", str(allure)]
        command += ["--clean-alluredir", "--hil-results", str(results)]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    t0 = now()
    done = subprocess.run(
        [*command, str(plan_path)],
        cwd=plan_path.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    dt: float = now() - t0
    if done.returncode != 0 or "1 passed" not in done.stdout:
        raise SystemExit(f"pytest on {plan_path.name} failed:\n{done.stdout}\n{done.stderr}")
    if allure is not None and not list(allure.glob("*-result.json")):
        raise SystemExit(f"no Allure result in {allure}")
    return dt


def subprocesses(work: Path, bench_path: Path) -> None:
    one, many = (write_plan(work / f"cli{n}", n, measure=True) for n in (1, N))
    wall: dict[str, list[float]] = {"plain": [], "allure": []}
    fixed: dict[str, list[float]] = {"plain": [], "allure": []}
    for _ in range(PYTEST_RUNS):
        for v in wall:
            allure = work / "allure" if v == "allure" else None
            wall[v].append(pytest_wall(bench_path, many, allure))
            fixed[v].append(pytest_wall(bench_path, one, allure))
    for v, name in (("plain", "hil_cli"), ("allure", "hil_cli_allure")):
        emit_per_step(name, wall[v], fixed[v], N)


def main() -> None:
    with work_folder("hil-cli-") as work:
        for sub in ("cli1", f"cli{N}"):
            (work / sub).mkdir()
        subprocesses(work, write_bench(work))
    note(f"hil cli N={N} pytest_runs={PYTEST_RUNS}")


if __name__ == "__main__":
    main()
