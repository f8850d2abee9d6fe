"""What this process holds that a leak would grow, read from the kernel (Linux /proc):
threads, open file descriptors and listening TCP sockets with their addresses.

The security test checks every server listens on loopback; the soak compares the
counts before a bench opens and after it closes.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

LISTEN = "0A"  # the TCP state /proc/net/tcp prints for a listening socket


def _socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed between listing and reading
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def listening_tcp() -> list[tuple[str, int]]:
    """(address, port) of every TCP socket this process listens on. IPv4 addresses read
    as dotted quads, IPv6 ones as 32 hex digits."""
    mine = _socket_inodes()
    out = []
    for table, ipv4 in (("/proc/net/tcp", True), ("/proc/net/tcp6", False)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != LISTEN or inode not in mine:
                continue
            host_hex, port_hex = local.split(":")
            raw = bytes.fromhex(host_hex)
            # the kernel prints each 32-bit word in host (little-endian) order
            addr = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            text = ".".join(str(b) for b in addr) if ipv4 else addr.hex()
            out.append((text, int(port_hex, 16)))
    return out


def is_loopback(address: str) -> bool:
    return address.startswith("127.") or address in (
        "00000000000000000000000000000001",  # ::1
        "00000000000000000000ffff7f000001",  # ::ffff:127.0.0.1
    )


def counts() -> dict[str, int]:
    """Threads, open fds and listening TCP sockets of this process, now."""
    return {
        "threads": threading.active_count(),
        "fds": len(os.listdir("/proc/self/fd")),
        "listening": len(listening_tcp()),
    }
