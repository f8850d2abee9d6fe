"""The ``hil`` command: certify, report, bench check, plans, emulate, gateway."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from hil.bench.loader import load_bench
from hil.commands import bench_check, emulate, fuzz
from hil.commands import explore as explore_command
from hil.errors import HilError
from hil.plan.tools import resolve_for_show, schema_text, show, validate_plans
from hil.report.certify import add_certify_command
from hil.report.commands import add_report_commands
from hil.secrets import install_log_redaction


def _plans_validate(args: argparse.Namespace) -> int:
    bench = load_bench(Path(args.bench))
    count, problems = validate_plans([Path(p) for p in args.paths], bench)
    for problem in problems:
        print(problem)
    print(
        f"{count} plan files checked against bench {bench.id!r}: "
        + (f"{len(problems)} with problems" if problems else "all valid")
    )
    return 1 if problems or count == 0 else 0


def _plans_show(args: argparse.Namespace) -> int:
    params = dict(p.partition("=")[::2] for p in args.param)
    print(show(resolve_for_show(Path(args.plan), load_bench(Path(args.bench)), params)), end="")
    return 0


def _plans_schema(args: argparse.Namespace) -> int:
    text = schema_text()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hil", description="hardware-in-the-loop test and certification"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    add_certify_command(sub)
    add_report_commands(sub)

    bench = sub.add_parser("bench", help="bench tools")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    bench_check.add_parser(bench_sub)
    emulate.add_parsers(sub)
    explore_command.add_parsers(sub)
    fuzz.add_parser(sub)

    plans = sub.add_parser("plans", help="plan tools: validate, show, schema")
    plans_sub = plans.add_subparsers(dest="plans_command", required=True)
    val = plans_sub.add_parser("validate", help="check plans against a bench; all problems at once")
    val.add_argument("paths", nargs="*", default=["testplans"])
    val.add_argument("--bench", default="benches/emulated.yaml")
    val.set_defaults(func=_plans_validate)
    shw = plans_sub.add_parser("show", help="dry run: the steps a plan would run on a bench")
    shw.add_argument("plan")
    shw.add_argument("--bench", default="benches/emulated.yaml")
    shw.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    shw.set_defaults(func=_plans_show)
    sch = plans_sub.add_parser("schema", help="print (or write) the JSON Schema of plan files")
    sch.add_argument("-o", "--output", default=None)
    sch.set_defaults(func=_plans_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    install_log_redaction()
    try:
        rc: int = args.func(args)
    except HilError as err:
        print(f"hil: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hil: interrupted", file=sys.stderr)
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
