"""``hil fuzz``: protocol fuzzing of one bench device through its real transport."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def run_fuzz_command(args: argparse.Namespace) -> int:
    # hypothesis and the fuzzers load only when fuzzing: every other command starts fast
    from hil.explore.fuzz.run import fuzz_device

    report = fuzz_device(
        Path(args.bench),
        args.device,
        protocol=args.protocol,
        profile=args.profile,
        defects=args.defect,
        seed=args.seed,
    )
    print(report.summary())
    path = report.write(Path(args.out))
    print(f"report: {path}")
    return 1 if report.finding is not None else 0


def add_parser(sub: Any) -> None:
    fz = sub.add_parser(
        "fuzz",
        help="fuzz a device's protocol (CAN, MIoT serial, SCPI) through its real transport",
        description="Send hypothesis-generated input derived from DEVICE's definition (DBC, "
        "MIoT spec, SCPI vocabulary) over its transport; after each example the device must "
        "answer a liveness probe, answer bad input as its protocol requires and keep its "
        "safety signals. Prints a summary and the minimal input of a finding, and writes "
        "the report as JSON. Exit status 1 when something was found.",
    )
    fz.add_argument("--bench", default="benches/emulated.yaml")
    fz.add_argument("--device", required=True)
    fz.add_argument("--protocol", choices=["can", "miot", "scpi"], default=None)
    fz.add_argument(
        "--profile", choices=["ci", "deep"], default="ci", help="hypothesis profile fuzz-ci/deep"
    )
    fz.add_argument("--defect", action="append", default=[], help="inject a defect (emulated)")
    fz.add_argument("--seed", type=int, default=None, help="seed of a deep run, to replay it")
    fz.add_argument("--out", default="reports/fuzz", help="directory of the JSON report")
    fz.set_defaults(func=run_fuzz_command)
