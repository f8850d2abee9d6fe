"""``hil emulate`` and ``hil gateway``: emulators and CAN gateways in their own process.

``hil emulate DEVICE… --bench B`` starts those devices' emulators as the
bench would, prints one JSON line (``{"bench", "pid", "devices": {name: bench
entry}, "gateway"}``: each entry is what a bench file needs to use the device
as real, ``emulated: false``) and one human line per device, and runs until
SIGINT or SIGTERM, then closes everything and exits 0.

``hil gateway`` serves python-can channels to socketcand clients: on a lab
machine with ``--interface socketcan --channel can0 --host 0.0.0.0`` it stands
in for the socketcand daemon.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from hil.bench.loader import load_bench
from hil.errors import BenchError
from hil.lifecycle import Resource
from hil.standalone import Address, EmulatorHost
from hil.transports.socketcand_gateway import DEFAULT_PORT, SocketcandGateway


def _address(text: str) -> Address:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _defects(devices: list[str], given: list[str]) -> list[str]:
    """``DEVICE:DEFECT`` as everywhere else; a bare defect when one device is emulated."""
    out = []
    for item in given:
        if ":" not in item:
            if len(devices) != 1:
                raise BenchError(f"--defect {item!r}: say which device, as DEVICE:{item}")
            item = f"{devices[0]}:{item}"
        out.append(item)
    return out


@contextlib.contextmanager
def _until_signalled() -> Iterator[threading.Event]:
    """An event that SIGINT or SIGTERM sets (set from the start, so startup is covered)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(resource: Resource, stop: threading.Event, ready: Callable[[], str]) -> int:
    """Open ``resource``, print ``ready()``, keep it open until ``stop``, close it."""
    with resource:
        if not stop.is_set():
            print(ready(), flush=True)
        while not stop.wait(0.5):
            pass
    print("hil: stopped", file=sys.stderr, flush=True)
    return 0


def _describe(name: str, entry: dict[str, Any]) -> str:
    if "can" in entry:
        can = entry["can"]
        opts = can.get("options") or {}
        where = f" at {opts['host']}:{opts['port']}" if "host" in opts else ""
        reach = f"CAN {can['interface']}{where}, channel {can['channel']}"
    elif "serial" in entry:
        reach = f"serial {entry['serial']['port']}"
    else:
        reach = f"VISA {entry['visa']['resource']}"
    actuator = entry.get("actuator")
    extra = f"; physical inputs via {actuator['resource']}" if actuator else ""
    return f"hil emulate: {name} ({entry['type']}) on {reach}{extra}"


def run_emulate(args: argparse.Namespace) -> int:
    loaded = load_bench(Path(args.bench), _defects(args.devices, args.defect))
    host = EmulatorHost(loaded, args.devices, port=args.port, can_gateway=args.can_gateway)

    def ready() -> str:
        entries = host.entries()
        gateway = host.gateway
        line = {
            "bench": loaded.id,
            "pid": os.getpid(),
            "time_scale": loaded.config.time_scale,
            "devices": entries,
            "gateway": f"{gateway.host}:{gateway.port}" if gateway is not None else None,
        }
        human = [_describe(name, entry) for name, entry in entries.items()]
        return "\n".join([json.dumps(line, default=str), *human, "hil emulate: Ctrl-C to stop"])

    with _until_signalled() as stop:
        return _serve(host, stop, ready)


def run_gateway(args: argparse.Namespace) -> int:
    channels = {c: c for c in args.channel} if args.channel else None
    gateway = SocketcandGateway(
        interface=args.interface, channels=channels, host=args.host, port=args.port
    )

    def ready() -> str:
        served = ", ".join(args.channel) if args.channel else "any channel"
        line = {
            "gateway": f"{args.host}:{gateway.port}",
            "interface": args.interface,
            "channels": args.channel or None,
            "pid": os.getpid(),
        }
        return (
            f"{json.dumps(line)}\nhil gateway: socketcand on {args.host}:{gateway.port} for "
            f"{args.interface} ({served}); Ctrl-C to stop"
        )

    with _until_signalled() as stop:
        return _serve(gateway, stop, ready)


def add_parsers(sub: Any) -> None:
    emu = sub.add_parser(
        "emulate",
        help="run devices' emulators in this process, reachable from another bench",
        description="Start the emulators of DEVICE… as BENCH declares them and print, as "
        "one JSON line, the bench entries (emulated: false) that reach them. Devices wired "
        "or linked to each other run in one process: name them together.",
    )
    emu.add_argument("devices", nargs="+", metavar="DEVICE")
    emu.add_argument("--bench", default="benches/emulated.yaml")
    emu.add_argument("--defect", action="append", default=[], metavar="[DEVICE:]DEFECT")
    where = emu.add_mutually_exclusive_group()
    where.add_argument(
        "--port", type=int, default=None, help="port of this process's CAN gateway (0: any)"
    )
    where.add_argument(
        "--can-gateway",
        type=_address,
        default=None,
        metavar="HOST:PORT",
        help="put CAN devices on a socketcand server that runs elsewhere",
    )
    emu.set_defaults(func=run_emulate)

    gw = sub.add_parser("gateway", help="serve python-can channels to socketcand clients")
    gw.add_argument("--interface", default="virtual", help="python-can interface (socketcan…)")
    gw.add_argument(
        "--channel", action="append", default=[], help="a channel clients may open (repeat)"
    )
    gw.add_argument("--host", default="127.0.0.1", help="address to listen on (lab: 0.0.0.0)")
    gw.add_argument("--port", type=int, default=DEFAULT_PORT)
    gw.set_defaults(func=run_gateway)
