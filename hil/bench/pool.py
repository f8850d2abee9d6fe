"""Bench pools: several bench files, each process (an xdist worker, or a plain run) leases one.

On one host a lease is an exclusive ``flock`` on a file named after the bench
file, in a shared lease folder; the holder writes who it is (pid, host, xdist
worker, bench, since when) into that file, so a process that waits can say who
holds what. The kernel drops the lock when the holder exits, however it exits:
a crashed run never leaves a bench reserved. Across hosts, benches are
reserved through labgrid's coordinator instead (see ``hil/bench/labgrid_place.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from hil.errors import BenchError, HilError

LEASE_DIR_ENV = "HIL_LEASE_DIR"  # one folder per host (or per CI job) that every run shares
POLL_S = 0.2  # how often a waiting process tries the pool again


class BenchBusy(HilError, TimeoutError):
    """No bench of the pool became free in time; the message names who holds each."""


@dataclass(frozen=True)
class Holder:
    """Who holds a bench: written into the lease file by the holder."""

    pid: int
    host: str
    worker: str
    bench: str
    since: float

    def describe(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} on {self.host} (worker {self.worker}) since {when}"


def default_lease_dir() -> Path:
    given = os.environ.get(LEASE_DIR_ENV)
    return Path(given) if given else Path(tempfile.gettempdir()) / "hil-bench-leases"


def lease_file(lease_dir: Path, bench: Path) -> Path:
    """The lease file of ``bench``: named after its resolved path, readable by a person."""
    resolved = str(bench.resolve())
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:12]
    return lease_dir / f"{bench.stem}-{digest}.lease"


def read_holder(path: Path) -> Holder | None:
    """The holder recorded in a lease file, or None (free, never used, or being written)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "null")
        return Holder(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


class BenchLease:
    """One bench of the pool, held by this process until ``release()`` (or its exit)."""

    def __init__(self, bench: Path, path: Path, fd: int, holder: Holder) -> None:
        self.bench = bench
        self.path = path
        self.holder = holder
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Idempotent: the holder record is cleared, then the lock is dropped."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> BenchLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_lease(bench: Path, lease_dir: Path, worker: str) -> BenchLease | None:
    path = lease_file(lease_dir, bench)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    holder = Holder(os.getpid(), socket.gethostname(), worker, str(bench), time.time())
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(asdict(holder)).encode(), 0)
    return BenchLease(bench, path, fd, holder)


def _first_choice(pool: Sequence[Path], worker: str) -> int:
    """xdist's gwN starts at bench N (mod the pool): workers spread without contention."""
    digits = worker[2:] if worker.startswith("gw") else ""
    return int(digits) % len(pool) if digits.isdigit() else 0


def lease_bench(
    pool: Sequence[Path],
    *,
    worker: str = "main",
    lease_dir: Path | None = None,
    timeout_s: float = 60.0,
) -> BenchLease:
    """Lease a free bench of ``pool``, waiting at most ``timeout_s`` for one.

    Raises BenchError naming every bench's holder when none became free.
    """
    if not pool:
        raise BenchError("a bench pool needs at least one bench file")
    folder = lease_dir or default_lease_dir()
    folder.mkdir(parents=True, exist_ok=True)
    start = _first_choice(pool, worker)
    order = [pool[(start + i) % len(pool)] for i in range(len(pool))]
    deadline = time.monotonic() + timeout_s
    while True:
        for bench in order:
            lease = _try_lease(bench, folder, worker)
            if lease is not None:
                return lease
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    held = []
    for bench in pool:
        holder = read_holder(lease_file(folder, bench))
        who = holder.describe() if holder is not None else "a process that has not said who"
        held.append(f"{bench.name} is held by {who}")
    raise BenchBusy(
        f"no bench of the pool became free within {timeout_s:g} s: "
        + "; ".join(held)
        + f" (leases in {folder}; wait for them or raise --hil-lease-timeout)",
        holders=[h for h in (read_holder(lease_file(folder, b)) for b in pool) if h],
    )
