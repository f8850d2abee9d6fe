"""``hil bench check``: open a bench, ask every device who it is, print a table (or JSON).

A lab runs it before a certification run: every row says where the device is
declared (bench file:line), whether it is emulated or real, the endpoint the
bench opened, and the identity the device itself reported (``*IDN?``, UDS
F189/F18C, the MIoT model and mcu_version); a device that does not answer
gets its error on its row and the exit code is 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from hil.bench.bench import Bench
from hil.bench.config import BenchConfig, DeviceConfig
from hil.bench.links import dependencies
from hil.bench.loader import LoadedBench, load_bench
from hil.errors import DeviceError, HilError
from hil.lifecycle import Resource
from hil.transports.can import CanTransport
from hil.transports.serial import SerialTransport
from hil.transports.visa import VisaTransport

FORMAT = "hil-bench-check/1"  # the --json document's version, for the reports that read it


def endpoint(transport: Resource) -> str:
    """Where a transport reaches its device, as a person would write it."""
    if isinstance(transport, CanTransport):
        opts = transport.bus_kwargs
        where = f" {opts['host']}:{opts['port']}" if "host" in opts and "port" in opts else ""
        return f"{transport.interface}{where} channel {transport.channel}"
    if isinstance(transport, SerialTransport):
        return transport.url
    if isinstance(transport, VisaTransport):
        return transport.resource
    return repr(transport)


def configured_endpoint(dev: DeviceConfig) -> str:
    """Where the bench file says a device is (for a device that never opened)."""
    if dev.can is not None:
        opts = dev.can.options
        where = f" {opts['host']}:{opts['port']}" if "host" in opts and "port" in opts else ""
        return f"{dev.can.interface}{where} channel {dev.can.channel}"
    if dev.serial is not None:
        return dev.serial.port
    return dev.visa.resource if dev.visa is not None else "?"


def _dependents(config: BenchConfig, failed: str) -> set[str]:
    """Devices that need ``failed`` open first (wired or linked to it), transitively."""
    out = {failed}
    grew = True
    while grew:
        grew = False
        for name in config.devices:
            if name not in out and any(t in out for _w, t in dependencies(config, name)):
                out.add(name)
                grew = True
    return out - {failed}


def _row(loaded: LoadedBench, name: str, endpoint: str, identity: dict[str, str]) -> dict[str, Any]:
    dev = loaded.config.devices[name]
    line, _col = loaded.locations.find(("devices", name), key=True)
    ident = dict(identity)
    error = ident.pop("error", None)
    return {
        "device": name,
        "type": dev.type,
        "emulated": dev.emulated,
        "endpoint": endpoint,
        "declared": f"{loaded.path}:{line}" if line else str(loaded.path),
        "identity": ident,
        "error": error,
    }


def check(loaded: LoadedBench) -> dict[str, Any]:
    """Open the bench and collect one row per device.

    A device that cannot be opened (or does not answer while its driver opens)
    gets its error on its row; the bench is opened again without it (and
    without what is wired or linked to it) so every other device is checked.
    """
    config = loaded.config
    failed: dict[str, dict[str, Any]] = {}
    while True:
        remaining = {n: d for n, d in config.devices.items() if n not in failed}
        if not remaining:
            break
        part = dataclasses.replace(loaded, config=config.model_copy(update={"devices": remaining}))
        try:
            with Bench(part) as bench:
                identities = bench.identities()
                opened = {
                    name: _row(loaded, name, endpoint(bench.transports[name]), identities[name])
                    for name in remaining
                }
            break
        except DeviceError as err:
            name = err.fields.get("device")
            if name not in remaining:
                raise
            dev = config.devices[name]
            failed[name] = _row(loaded, name, configured_endpoint(dev), {"error": str(err)})
            for other in _dependents(part.config, name):
                failed[other] = _row(
                    loaded,
                    other,
                    configured_endpoint(config.devices[other]),
                    {"error": f"not checked: needs {name!r}, which failed"},
                )
    rows = [failed.get(name) or opened[name] for name in config.devices]
    return {
        "format": FORMAT,
        "bench": loaded.id,
        "file": str(loaded.path),
        "sha256": loaded.sha256,
        "ok": all(r["error"] is None for r in rows),
        "devices": rows,
    }


def table(result: dict[str, Any]) -> str:
    head = ("device", "type", "mode", "endpoint", "identity")
    rows = [head]
    for r in result["devices"]:
        ident = ", ".join(f"{k}={v}" for k, v in r["identity"].items())
        if r["error"] is not None:
            ident = f"ERROR ({r['declared']}): {r['error']}"
        mode = "emulated" if r["emulated"] else "real"
        rows.append((r["device"], r["type"], mode, r["endpoint"], ident))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    ]
    failed = [r["device"] for r in result["devices"] if r["error"] is not None]
    verdict = (
        f"{len(failed)} of {len(rows) - 1} devices failed: {', '.join(failed)}"
        if failed
        else f"all {len(rows) - 1} devices answered"
    )
    return "\n".join([*lines, f"bench {result['bench']}: {verdict}", ""])


def run(args: argparse.Namespace) -> int:
    loaded = load_bench(Path(args.bench), args.defect)
    try:
        result = check(loaded)
    except HilError as err:
        if args.json:  # the reports still get a document, saying what failed to open
            failed = {
                "format": FORMAT,
                "bench": loaded.id,
                "file": str(loaded.path),
                "sha256": loaded.sha256,
                "ok": False,
                "devices": [],
                "error": {"message": str(err), **_scalars(err.fields)},
            }
            print(json.dumps(failed, indent=2))
        raise
    print(
        json.dumps(result, indent=2) if args.json else table(result), end="\n" if args.json else ""
    )
    sys.stdout.flush()
    for row in result["devices"]:
        if row["error"] is not None:
            print(f"hil: error: {row['declared']}: {row['error']}", file=sys.stderr)
    return 0 if result["ok"] else 1


def _scalars(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if isinstance(v, str | int | float | bool)}


def add_parser(bench_sub: Any) -> None:
    check_p = bench_sub.add_parser(
        "check", help="open every device and print who it says it is (a table, or --json)"
    )
    check_p.add_argument("--bench", default="benches/emulated.yaml")
    check_p.add_argument("--defect", action="append", default=[], metavar="DEVICE:DEFECT")
    check_p.add_argument("--json", action="store_true", help="one JSON document for reports")
    check_p.set_defaults(func=run)
