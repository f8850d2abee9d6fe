"""Soak: the emulated catalogue, over and over, with transport faults thrown in.

One bench (``benches/emulated.yaml``, every device given a reconnect policy)
stays open for the whole run. Plans from the catalogue run one after another
until the time is up; during some of them a random fault strikes a device the
plan uses, on its real transport:

* ``vanish``: the emulator closes (a pty that disappears, an SCPI server that
  goes away, a CAN node that stops transmitting);
* ``flood``: a burst of error frames on a CAN device's bus.

Figures printed at the end: plans run (by status), faults injected, faults
detected (the bench marked the device lost after the strike: a plan met it,
the check before a plan found it, or the final sweep), accounted for (detected,
or the device was reopened before anything looked at it again) and recovered
(reopened after the strike, for a later plan), hangs (a plan the watchdog had
to abort, or one that outlived the soak's own bound), and the leak check:
threads, file descriptors and listening TCP ports before the bench opened and
after it closed, plus peak memory. Exit status 1 if any hang, leak or
unaccounted fault.

    .venv/bin/python benchmarks/soak.py --minutes 30 [--fault-rate 0.3] [--seed 1]
"""

from __future__ import annotations

import argparse
import collections
import random
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import can
import yaml

from hil import plan_cache
from hil.bench.bench import Bench
from hil.bench.loader import LoadedBench, load_bench
from hil.errors import DeviceError
from hil.plan.loader import PlanInstance, load_plan
from hil.plan.prompts import AnswersFile
from hil.plan.resolve import resolve_plan
from hil.plan.runner import CATEGORY_DEVICE, CATEGORY_TIMEOUT, PlanRunner
from hil.plan.tools import NOT_PLANS
from hil.process_resources import counts
from hil.report.record import PlanRecord, Status
from hil.safety.interlock import drive_safe

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benches" / "emulated.yaml"
PLAN_ROOTS = [ROOT / "testplans" / d for d in ("safety", "interop", "energy", "acceptance")]
PLAN_BOUND_S = 900.0  # no catalogue plan takes this long at time_scale 0.1: past it, a hang
FLOOD_FRAMES = 400


def soak_bench(folder: Path) -> Path:
    """The emulated bench with a reconnect policy on every device and a watchdog default."""
    data = yaml.safe_load(BENCH.read_text(encoding="utf-8"))
    for dev in data["devices"].values():
        dev["reconnect"] = {"attempts": 3, "interval": "500 ms"}
    data["plan_timeout"] = "600 s"
    answers = data.get("answers")
    if answers:
        data["answers"] = str((BENCH.parent / answers).resolve())
    path = folder / "soak-bench.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def catalogue(overrides: Any) -> list[PlanInstance]:
    out: list[PlanInstance] = []
    for root in PLAN_ROOTS:
        for path in sorted(root.rglob("*.yaml")):
            if path.name in NOT_PLANS:
                continue
            plan = load_plan(path)
            out.extend(plan.instances(overrides(plan.id)))
    return out


class SoakBench(Bench):
    """The bench, remembering every loss it marked (``lost`` forgets a device once it is
    reconnected): what the soak counts as a fault detected."""

    def __init__(self, loaded: LoadedBench) -> None:
        super().__init__(loaded)
        self.losses: list[tuple[str, float]] = []

    def mark_lost(self, name: str, err: DeviceError) -> None:
        if name in self.config.devices and name not in self.lost:
            self.losses.append((name, time.time()))
        super().mark_lost(name, err)


class Injector:
    """Strikes one device of the running plan, once, at a random moment."""

    def __init__(self, bench: Bench, rng: random.Random) -> None:
        self.bench = bench
        self.rng = rng
        self.injected: list[dict[str, Any]] = []

    def arm(self, devices: list[str], kinds: list[str]) -> threading.Timer | None:
        candidates = [d for d in devices if d in self.bench.emulators]
        if not candidates:
            return None
        device = self.rng.choice(candidates)
        can_device = self.bench.definitions[device].transport == "can"
        kind = self.rng.choice([k for k in kinds if k != "flood" or can_device])
        delay = self.rng.uniform(0.2, 2.0)  # most plans run longer than this
        timer = threading.Timer(delay, self._strike, (device, kind))
        timer.daemon = True
        timer.start()
        return timer

    def _strike(self, device: str, kind: str) -> None:
        at = time.time()
        try:
            if kind == "vanish":
                self.bench.emulators[device].close()
            else:
                channel = self.bench.transports[device].channel  # type: ignore[attr-defined]
                with can.Bus(interface="virtual", channel=channel) as bus:
                    for _ in range(FLOOD_FRAMES):
                        err = can.Message(arbitration_id=0x20000004, is_error_frame=True)
                        bus.send(err)
        except Exception as err:  # the device was already gone: not a fault of ours
            print(f"  fault {kind} on {device} could not strike: {err}", file=sys.stderr)
            return
        self.injected.append({"device": device, "kind": kind, "at": at})


def run_one(bench: Bench, instance: PlanInstance, prompter: AnswersFile | None) -> PlanRecord:
    """One plan as the pytest items run it: the runner, then the interlock if it failed
    (evidence files are not what a soak measures: the disk stays out of it)."""
    resolved = resolve_plan(instance, bench.definitions, bench.loaded.capabilities())
    runner = PlanRunner(bench, prompter=prompter, timeout_s=bench.config.plan_timeout)
    record = runner.run(resolved)
    if record.status in (Status.FAILED, Status.BROKEN) and not record.interlock:
        record.interlock = drive_safe(
            bench, f"plan {record.plan_id} {record.status.value}"
        ).to_json()
    return record


def final_sweep(bench: Bench, injected: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """Devices struck after the last plan that used them: found lost (or not) now."""
    found = []
    for device in dict.fromkeys(f["device"] for f in injected):
        try:
            bench.get(device).check_link()
        except DeviceError:
            found.append((device, time.time()))
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--fault-rate", type=float, default=0.3, help="share of plans struck")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kinds", default="vanish,flood")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    kinds = args.kinds.split(",")
    before = counts()
    records: list[PlanRecord] = []
    hangs: list[str] = []
    started = time.monotonic()
    end = started + args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="hil-soak-") as tmp:
        loaded = load_bench(soak_bench(Path(tmp)))
        plans = catalogue(loaded.parameter_overrides)
        plan_cache.Store.close_all()  # the plan cache's file is held open while loading
        answers = loaded.config.answers
        prompter = AnswersFile(Path(answers)) if answers else None
        with SoakBench(loaded) as bench:
            injector = Injector(bench, rng)
            passes = 0
            while time.monotonic() < end:
                passes += 1
                for instance in rng.sample(plans, len(plans)):
                    if time.monotonic() >= end:
                        break
                    timer = None
                    if rng.random() < args.fault_rate:
                        timer = injector.arm(list(instance.plan.devices), kinds)
                    t0 = time.monotonic()
                    record = run_one(bench, instance, prompter)
                    if timer is not None:
                        timer.cancel()
                        timer.join(timeout=5)
                    took = time.monotonic() - t0
                    if record.category == CATEGORY_TIMEOUT or took > PLAN_BOUND_S:
                        hangs.append(f"{record.plan_id}{record.instance} ({took:.0f} s)")
                    records.append(record)
                    struck = injector.injected[-1] if injector.injected else None
                    fault = (
                        f"  [{struck['kind']} {struck['device']}]"
                        if struck is not None and struck["at"] >= record.started
                        else ""
                    )
                    reopened = f"  reopened: {','.join(record.reconnected)}" * bool(
                        record.reconnected
                    )
                    print(
                        f"{len(records):4d} {record.plan_id + record.instance:40s} "
                        f"{record.status.value:8s} {took:6.1f} s {record.category}{fault}"
                        f"{reopened}",
                        flush=True,
                    )
            injected = injector.injected
            swept = final_sweep(bench, injected)
            losses = bench.losses + swept
        time.sleep(1.0)  # reader threads notice their closed ports
    after = counts()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report(records, injected, losses, hangs, before, after, peak_mb, started, passes)


def report(
    records: list[PlanRecord],
    injected: list[dict[str, Any]],
    losses: list[tuple[str, float]],
    hangs: list[str],
    before: dict[str, Any],
    after: dict[str, Any],
    peak_mb: float,
    started: float,
    passes: int,
) -> int:
    reconnected = [(d, r.started) for r in records for d in r.reconnected]
    detected = accounted = recovered = 0
    unaccounted: list[str] = []
    for fault in injected:
        named = any(dev == fault["device"] and t >= fault["at"] for dev, t in losses)
        # reopened (lost itself, or with a lost device it links to) before a plan began
        # after the strike: a device struck after its plan's last look may come back
        # fresh before anything looks at it again, so nothing can see that fault
        back = any(dev == fault["device"] and t >= fault["at"] for dev, t in reconnected)
        detected += named
        accounted += named or back
        recovered += back
        if not (named or back):
            unaccounted.append(f"{fault['kind']} on {fault['device']}")
    statuses = collections.Counter(r.status.value for r in records)
    broken_device = sum(r.category == CATEGORY_DEVICE for r in records)
    print(f"soak_minutes: {(time.monotonic() - started) / 60:.1f} min")
    print(f"soak_passes: {passes} passes")
    print(f"soak_plans_run: {len(records)} plans")
    for status, n in sorted(statuses.items()):
        print(f"soak_plans_{status}: {n} plans")
    print(f"soak_broken_device_not_responding: {broken_device} plans")
    print(f"soak_faults_injected: {len(injected)} faults")
    print(f"soak_faults_detected: {detected} faults")
    print(f"soak_faults_accounted: {accounted} faults")
    print(f"soak_faults_recovered: {recovered} faults")
    print(f"soak_hangs: {len(hangs)} plans")
    for key in ("threads", "fds", "listening"):
        print(f"soak_{key}_before_after: {before[key]} -> {after[key]}")
    print(f"soak_max_memory: {peak_mb:.0f} MB")
    leaks = {k: (before[k], after[k]) for k in before if after[k] > before[k]}
    if unaccounted:
        print("unaccounted faults: " + ", ".join(unaccounted))
    if hangs:
        print("hangs: " + ", ".join(hangs))
    if leaks:
        print(f"leaks: {leaks}")
    failed_healthy = [
        f"{r.plan_id}{r.instance}: {r.reason}"
        for r in records
        if r.status is Status.FAILED and r.category != CATEGORY_DEVICE
    ]
    if failed_healthy:
        print(f"failed (not a device loss), {len(failed_healthy)}:")
        for line in failed_healthy:
            print("  " + line[:300])
    return 1 if (hangs or leaks or unaccounted) else 0


if __name__ == "__main__":
    sys.exit(main())
