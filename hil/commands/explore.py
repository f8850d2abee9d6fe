"""``hil explore``: search sequences of stimuli for invariant violations.

``hil explore FILE… --bench B`` runs explore files; ``hil explore --bench B
--devices ev,oven`` builds one from the bench (every stimulus of those
devices whose fields have declared bounds) with the devices' envelopes and
any ``--invariant ID=EXPR``. Each violation is written as a reproducing plan
under ``--out``; the run record (seed, profile, database) beside it.
Exit 1 when a violation was found, 0 when none.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hil.bench.loader import load_bench
from hil.errors import PlanError, did_you_mean
from hil.explore.explorer import explore
from hil.explore.loader import LoadedExplore, from_data, load_explore
from hil.yamlio import Locations


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("explore", help="stateful exploration: find sequences that break invariants")
    p.add_argument("files", nargs="*", help="explore files (testplans/explore/*.yaml)")
    p.add_argument("--bench", default="benches/emulated.yaml")
    p.add_argument("--devices", default="", help="comma-separated: explore these devices' stimuli")
    p.add_argument("--invariant", action="append", default=[], metavar="ID=EXPR")
    p.add_argument("--profile", choices=("ci", "deep"), default="ci")
    p.add_argument("--out", default="reports/explore")
    p.add_argument("--defect", action="append", default=[], metavar="DEVICE:DEFECT")
    p.add_argument("--max-examples", type=int, default=None)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    bench = load_bench(Path(args.bench), args.defect)
    files = [load_explore(Path(f)) for f in args.files]
    if args.devices:
        files.append(_from_devices(args, bench.definitions()))
    if not files:
        raise PlanError("give explore files, or --devices to explore a bench's devices")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    found = 0
    for f in files:
        result = explore(f, bench, profile=args.profile, out=out, max_examples=args.max_examples)
        print(result.summary())
        found += result.found
    return 1 if found else 0


def _from_devices(args: argparse.Namespace, definitions: dict[str, Any]) -> LoadedExplore:
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    stimuli: list[dict[str, Any]] = []
    for device in devices:
        definition = definitions.get(device)
        if definition is None:
            raise PlanError(
                f"--devices: the bench has no device {device!r}; "
                + did_you_mean(device, definitions)
            )
        for name, info in definition.stimuli.items():
            bounded = all(
                f.choices or f.kind == "bool" or (f.minimum is not None and f.maximum is not None)
                for f in info.fields.values()
            )
            if not bounded or name.startswith(("miot.", "uds_")):
                continue  # no declared bounds to draw from, or a protocol probe
            key = {"message": "send", "action": "call"}.get(info.kind, "set")
            stimuli.append({key: f"{device}.{name}"})
    invariants = []
    for item in args.invariant:
        ident, sep, expr = item.partition("=")
        if not sep:
            raise PlanError(f"--invariant {item!r}: write it as ID=EXPRESSION")
        invariants.append({"id": ident.strip(), "always": expr.strip()})
    data = {
        "spec": 1,
        "id": "explore-" + "-".join(devices),
        "title": f"Exploration of {', '.join(devices)}",
        "devices": devices,
        "invariants": invariants,
        "explore": {"stimuli": stimuli, "waits": ["0 s", "500 ms"]},
    }
    return from_data(Path("command-line"), data, Locations("command line"))
