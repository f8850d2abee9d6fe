"""Child processes in tests: started with stderr to a log, read for their ready
line with a bounded wait, and always stopped (signal, bounded wait, kill)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import ROOT

START_TIMEOUT_S = 60.0  # interpreter start and imports on a loaded 2-core machine
STOP_TIMEOUT_S = 15.0


def spawn(argv: Sequence[str], log: Path, cwd: Path | None = ROOT) -> subprocess.Popen[bytes]:
    """``argv`` with stdout piped (for its ready line) and stderr to ``log``."""
    with log.open("wb") as err:
        return subprocess.Popen(
            list(argv), cwd=cwd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL
        )


def hil(args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m hil ARGS`` from the repository root."""
    return spawn([sys.executable, "-m", "hil", *args], log)


def first_line(proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> bytes:
    """The first line ``proc`` prints (a bounded wait; the log is shown if it never comes)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout_s
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no line within {timeout_s} s; stderr: {log.read_text()}")
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                proc.wait(timeout=STOP_TIMEOUT_S)
                raise AssertionError(f"exited {proc.returncode}; stderr: {log.read_text()}")
            buf += chunk
    return buf.split(b"\n", 1)[0]


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Signal, bounded wait, SIGKILL if it must: never leaves a zombie or an orphan.
    A process that needed the kill raises TimeoutExpired: not stopping is a finding."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
