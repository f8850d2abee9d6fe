"""Bench hosts in network namespaces: two namespaces joined by a veth pair.

``hil-host-<id>`` plays a lab machine that has the devices (emulators behind
ser2net, a socketcand gateway, an instrument's SCPI port); ``hil-ctl-<id>``
plays the machine that runs the plans. Their addresses exist only inside the
two namespaces (198.18.0.0/15 is the range set aside for benchmarking
networks, RFC 2544), and the ids are unique per run, so parallel runs never
meet. Deleting a namespace deletes its end of the veth pair, and the pair with it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.processes import spawn

HOST_IP, CTL_IP = "198.18.0.1", "198.18.0.2"
IP_TIMEOUT_S = 10.0

# connect to every HOST:PORT given, retrying until all answer or the deadline passes
PROBE = """
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[1])
for target in sys.argv[2:]:
    host, port = target.rsplit(":", 1)
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            break
        except OSError as err:
            if time.monotonic() > deadline:
                sys.exit(f"{target}: {err}")
            time.sleep(0.1)
"""


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run the suite as root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing: `make install` installs it"
    probe = f"hil-probe-{os.getpid()}-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"this machine does not permit network namespaces: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class NetnsPair:
    host: str  # the bench host's namespace
    ctl: str  # the controller's namespace
    host_ip: str = HOST_IP
    ctl_ip: str = CTL_IP

    def argv(self, namespace: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", namespace, *argv]

    def popen(
        self, namespace: str, argv: Sequence[str], log: Path, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """A process in ``namespace``: stdout piped (for its ready line), stderr to ``log``."""
        return spawn(self.argv(namespace, argv), log, cwd)

    def wait_reachable(self, targets: Sequence[str], timeout_s: float = 30.0) -> None:
        """Every ``HOST:PORT`` of the bench host accepts a connection from the controller."""
        done = subprocess.run(
            self.argv(self.ctl, [sys.executable, "-c", PROBE, str(timeout_s), *targets]),
            capture_output=True,
            text=True,
            timeout=timeout_s + 30,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"not reachable from {self.ctl}: {done.stderr.strip()}")


@contextlib.contextmanager
def netns_pair() -> Iterator[NetnsPair]:
    """Two fresh namespaces with loopback up, joined by a veth pair; deleted afterwards."""
    tag = f"{os.getpid()}-{secrets.token_hex(3)}"
    pair = NetnsPair(host=f"hil-host-{tag}", ctl=f"hil-ctl-{tag}")
    veth = secrets.token_hex(4)  # interface names: at most 15 characters
    made: list[str] = []
    try:
        for ns in (pair.host, pair.ctl):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        host_if, ctl_if = f"vh{veth}", f"vc{veth}"
        _ip(
            "link",
            "add",
            host_if,
            "netns",
            pair.host,
            "type",
            "veth",
            *("peer", "name", ctl_if, "netns", pair.ctl),
        )
        for ns, ifname, addr in ((pair.host, host_if, HOST_IP), (pair.ctl, ctl_if, CTL_IP)):
            _ip("-n", ns, "addr", "add", f"{addr}/30", "dev", ifname)
            _ip("-n", ns, "link", "set", ifname, "up")
        yield pair
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
