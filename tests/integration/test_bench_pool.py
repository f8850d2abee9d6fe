"""Bench pools: ``--bench a.yaml,b.yaml``, one bench leased per process with a file lock.

The runs are real pytest processes (with pytest-xdist where it matters): a
lease is a property of processes, so it is only shown by several of them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hil.bench.pool import BenchBusy, lease_bench, read_holder
from hil.report.commands import write_certificate
from hil.report.record import read_records
from tests.conftest import EMULATED_BENCH, PLANS, ROOT

RUN_TIMEOUT_S = 300.0  # a pytest subprocess on a loaded 2-core machine
E1 = PLANS / "safety" / "E1-speed-auto-lock.yaml"
A1 = PLANS / "safety" / "A1-plug-overcurrent.yaml"

LEASE_TEST = """
import json, os, time
from pathlib import Path
from hil.pytest_plugin.session import hil_session

def test_lease(bench, request):
    session = hil_session(request.config)
    assert session.lease is not None
    out = Path(os.environ["LEASE_OUT"]) / f"{session.worker}.json"
    out.write_text(json.dumps({"bench": bench.loaded.id, "pid": os.getpid(),
                               "holder": session.lease.holder.worker}))
    # hold the bench: a second worker starting late must still find it taken
    time.sleep(float(os.environ.get("LEASE_HOLD_S", "0")))
"""


def _bench(folder: Path, bench_id: str) -> Path:
    """A copy of the emulated bench under another id (its answers file beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = EMULATED_BENCH.read_text(encoding="utf-8")
    assert "\nid: emulated-home\n" in text
    path = folder / f"{bench_id}.yaml"
    path.write_text(text.replace("\nid: emulated-home\n", f"\nid: {bench_id}\n"), "utf-8")
    answers = EMULATED_BENCH.parent / "emulated-answers.yaml"
    (folder / answers.name).write_text(answers.read_text(encoding="utf-8"), "utf-8")
    return path


@pytest.fixture
def pool(tmp_path: Path) -> list[Path]:
    return [_bench(tmp_path / "benches", "bench-a"), _bench(tmp_path / "benches", "bench-b")]


def _pytest(
    args: list[str], tmp_path: Path, cwd: Path | None = None, hold_s: float = 0.0
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HIL_LEASE_DIR": str(tmp_path / "leases"),
        "LEASE_OUT": str(tmp_path),
        "LEASE_HOLD_S": str(hold_s),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", *args],
        cwd=cwd or tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def test_a_process_waiting_for_a_full_pool_names_the_holders(
    pool: list[Path], tmp_path: Path
) -> None:
    leases = tmp_path / "leases"
    with (
        lease_bench(pool, worker="gw0", lease_dir=leases) as a,
        lease_bench(pool, worker="gw1", lease_dir=leases) as b,
    ):
        assert {a.bench, b.bench} == set(pool)
        assert read_holder(a.path) == a.holder and a.holder.pid == os.getpid()
        with pytest.raises(BenchBusy) as busy:
            lease_bench(pool, worker="gw2", lease_dir=leases, timeout_s=0.5)
        assert [h.worker for h in busy.value.holders] == ["gw0", "gw1"]
        (tmp_path / "test_lease.py").write_text(LEASE_TEST, encoding="utf-8")
        run = _pytest(
            ["--bench", ",".join(map(str, pool)), "--hil-lease-timeout", "1", "test_lease.py"],
            tmp_path,
        )
    assert run.returncode == 1, run.stdout + run.stderr
    said = run.stdout
    assert "no bench of the pool became free within 1 s" in said, said
    host = socket.gethostname()
    assert f"bench-a.yaml is held by pid {os.getpid()} on {host} (worker gw0)" in said, said
    assert f"bench-b.yaml is held by pid {os.getpid()} on {host} (worker gw1)" in said, said
    # released: the holder record is gone and the next process gets a bench at once
    assert read_holder(a.path) is None
    with lease_bench(pool, lease_dir=leases, timeout_s=0) as again:
        assert again.bench == pool[0]


def test_each_xdist_worker_leases_a_bench_of_its_own(pool: list[Path], tmp_path: Path) -> None:
    (tmp_path / "test_lease.py").write_text(LEASE_TEST, encoding="utf-8")
    benches = ",".join(map(str, pool))
    run = _pytest(["-n", "2", "--dist", "each", "--bench", benches, "test_lease.py"], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    seen = {w: json.loads((tmp_path / f"{w}.json").read_text()) for w in ("gw0", "gw1")}
    assert {s["bench"] for s in seen.values()} == {"bench-a", "bench-b"}
    assert seen["gw0"]["pid"] != seen["gw1"]["pid"]
    assert [s["holder"] for s in seen.values()] == ["gw0", "gw1"]


def test_a_pool_of_one_bench_named_twice_makes_the_second_worker_wait(
    pool: list[Path], tmp_path: Path
) -> None:
    """The defect case of the test above: two workers, one bench, so one of them waits,
    times out and names the worker that holds it."""
    (tmp_path / "test_lease.py").write_text(LEASE_TEST, encoding="utf-8")
    same = f"{pool[0]},{pool[0]}"
    args = ["-n", "2", "--dist", "each", "--bench", same, "--hil-lease-timeout", "2"]
    # the holder keeps it long past the other's 2 s wait, however late that one starts
    run = _pytest([*args, "test_lease.py"], tmp_path, hold_s=20.0)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed" in run.stdout and "1 error" in run.stdout, run.stdout
    assert "bench-a.yaml is held by pid" in run.stdout, run.stdout
    assert "(worker gw0)" in run.stdout or "(worker gw1)" in run.stdout, run.stdout


def test_plans_on_two_benches_merge_into_one_record_set_and_certificate(
    pool: list[Path], tmp_path: Path
) -> None:
    """Two plan files, two workers (``--dist loadfile`` gives each worker one file), two
    benches: one result set whose records name the bench each plan ran on, and one
    certificate over all of them."""
    results = tmp_path / "results"
    args = ["-n", "2", "--dist", "loadfile", "--bench", ",".join(map(str, pool))]
    args += ["--hil-results", str(results / "hil-results"), "--alluredir", str(tmp_path / "al")]
    run = _pytest([*args, str(E1), str(A1)], tmp_path, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    records = read_records(results / "hil-results")
    ran_on = {r["plan_id"]: r["bench_id"] for r in records}
    assert sorted(ran_on) == ["A1", "E1"]
    assert set(ran_on.values()) == {"bench-a", "bench-b"}, ran_on
    environment = (tmp_path / "al" / "environment.properties").read_text(encoding="utf-8")
    assert "bench.pool=bench-a.yaml bench-b.yaml" in environment
    cert = write_certificate(
        results,
        bench_path=pool[0],
        requirements=None,
        canaries=None,
        key_path=None,
        plan_roots=[],
        authorised_by="test",
        role="test",
    )
    assert sorted((r.plan_id, r.status) for r in cert.results) == [
        ("A1", "passed"),
        ("E1", "passed"),
    ]


ENDPOINTS_TEST = """
import json, os
from pathlib import Path
from hil.pytest_plugin.session import hil_session

def test_endpoints(bench, request):
    worker = hil_session(request.config).worker
    endpoints = {name: dict(e.endpoint) for name, e in bench.emulators.items()}
    out = Path(os.environ["LEASE_OUT"]) / f"endpoints-{worker}.json"
    out.write_text(json.dumps({"pid": os.getpid(), "endpoints": endpoints}, default=str))
"""


def test_with_n_auto_each_worker_opens_an_emulated_bench_of_its_own(tmp_path: Path) -> None:
    """``-n auto`` (two workers on two cores), one all-emulated bench file, no pool: each
    worker has its own emulators, ptys and loopback ports (nothing is leased: there is
    nothing to share), and its virtual channels live in its own process."""
    bench = tmp_path / "small.yaml"
    bench.write_text(
        json.dumps(
            {
                "spec": 1,
                "id": "small",
                "devices": {
                    "ev": {
                        "type": "ev",
                        "emulated": True,
                        "can": {"interface": "virtual", "channel": "ev-can"},
                    },
                    "smart_plug": {
                        "type": "smart_plug",
                        "emulated": True,
                        "serial": {"port": "auto"},
                    },
                    "power_analyzer": {
                        "type": "power_analyzer",
                        "emulated": True,
                        "visa": {"resource": "auto"},
                        "wiring": {"1": "smart_plug"},
                    },
                },
            }
        ),
        encoding="utf-8",
    )
    (tmp_path / "test_endpoints.py").write_text(ENDPOINTS_TEST, encoding="utf-8")
    run = _pytest(
        ["-n", "auto", "--dist", "each", "--bench", str(bench), "test_endpoints.py"], tmp_path
    )
    assert run.returncode == 0, run.stdout + run.stderr
    seen = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("endpoints-gw*.json"))]
    assert len(seen) >= 2, seen  # this machine has two cores
    a, b = seen[0], seen[1]
    assert a["pid"] != b["pid"]
    assert a["endpoints"]["smart_plug"]["url"] != b["endpoints"]["smart_plug"]["url"]
    assert (
        a["endpoints"]["power_analyzer"]["resource"] != b["endpoints"]["power_analyzer"]["resource"]
    )
    assert a["endpoints"]["ev"].get("interface", "virtual") == "virtual"  # process-local
    assert not (tmp_path / "leases").exists()  # an all-emulated bench alone is never leased
