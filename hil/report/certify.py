"""``hil certify``: run the plans, then the canaries, then write and seal every report.

The order matters: the certification run's records are complete (and
flushed, plan by plan) before anything is derived from them; the Allure
report keeps the previous report's ``history/`` so trends show across runs;
the certificate is built from the records alone; the seal comes last, over
everything.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hil.bench.loader import load_bench
from hil.report.canary import load_canaries, run_canaries
from hil.report.commands import (
    CANARIES,
    CERTIFICATE,
    KEY_ENV,
    RECORDS,
    add_certificate_options,
    write_certificate,
)
from hil.report.manifest import load_private_key, seal
from hil.report.record import read_records
from hil.report.summary import summarize
from hil.secrets import redact

HISTORY = "allure-history"  # the trend data Allure carries from one run to the next


def _pytest(args: argparse.Namespace, reports: Path) -> int:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *args.plans,
        "--bench",
        args.bench,
        "--alluredir",
        str(reports / "allure-results"),
        "--clean-alluredir",
        "--hil-results",
        str(reports / RECORDS),
        "-p",
        "no:cacheprovider",
        "-q",
        "-rfE",
    ]
    # plan folders outside the project's own (a lab's plans) are plan roots for this run
    folders = [str(Path(p).resolve()) for p in args.plans if Path(p).is_dir()]
    if folders:
        cmd += ["-o", "hil_plan_roots=" + "\n".join(["testplans", *folders])]
    for defect in args.defect:
        cmd += ["--hil-defect", defect]
    return subprocess.run(cmd, check=False).returncode


def _allure(args: argparse.Namespace, reports: Path) -> str | None:
    """The single-file Allure report, with the trend of earlier runs.

    A single-file report keeps no ``history/`` of its own, so a second, plain
    generation extracts it into ``allure-history/``, which the next run feeds
    back into its results: Allure then shows trends across runs.
    """
    results, html = reports / "allure-results", reports / "allure-report"
    history = reports / HISTORY
    allure = args.allure or shutil.which("allure")
    if not allure or not Path(allure).exists():
        print("hil: the Allure command line was not found; no HTML report", file=sys.stderr)
        return None
    if not results.is_dir():
        return None
    if history.is_dir():
        shutil.copytree(history, results / "history", dirs_exist_ok=True)
    env = dict(os.environ, ALLURE_NO_ANALYTICS="true")

    def generate(*extra: str, out: Path) -> subprocess.CompletedProcess[str]:
        cmd = [allure, "generate", *extra, "--clean", "-o", str(out), str(results)]
        return subprocess.run(cmd, env=env, check=False, capture_output=True, text=True)

    gen = generate("--single-file", out=html)
    if gen.returncode != 0 or not (html / "index.html").is_file():
        print(f"hil: allure generate failed:\n{gen.stdout}{gen.stderr}", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory(prefix="hil-allure-") as scratch:
        plain = generate(out=Path(scratch) / "report")
        if plain.returncode == 0 and (Path(scratch) / "report" / "history").is_dir():
            shutil.rmtree(history, ignore_errors=True)
            shutil.copytree(Path(scratch) / "report" / "history", history)
    return str(html / "index.html")


def certify(args: argparse.Namespace) -> int:
    bench_path = Path(args.bench)
    load_bench(bench_path, args.defect)  # a bad bench stops here, before pytest starts
    reports = Path(args.reports)
    for stale in (RECORDS, CANARIES, CERTIFICATE, "manifest.json", "summary.txt"):
        target = reports / stale
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    pytest_rc = _pytest(args, reports)
    report_file = _allure(args, reports)
    if args.canaries and not args.no_canaries and not args.defect:
        canaries = load_canaries(Path(args.canaries))
        print(f"hil: {len(canaries)} canary runs (known defects the plans must catch)")
        run_canaries(
            bench_path,
            canaries,
            [Path(p) for p in args.plans],
            reports / CANARIES,
            progress=lambda line: print(f"  {line}", flush=True),
        )
    key = args.key or os.environ.get(KEY_ENV)
    cert = write_certificate(
        reports,
        bench_path=bench_path,
        requirements=Path(args.requirements) if args.requirements else None,
        canaries=Path(args.canaries) if args.canaries and not args.no_canaries else None,
        key_path=Path(key) if key else None,
        plan_roots=[Path(p) for p in args.plans],
        authorised_by=args.authorised_by,
        role=args.role,
        customer=args.customer,
        seal_now=False,  # the summary belongs to the sealed set too
    )
    text, ok = summarize(read_records(reports / RECORDS), report_file)
    text += (
        f"certificate: {reports / CERTIFICATE / 'certificate.html'}\n"
        f"certificate {cert.report_id}: {cert.verdict.value}"
        + ("" if cert.verdict.value == "CERTIFIED" else f" — {cert.verdict.reason}")
        + "\n"
        + ("sealed: manifest.json (hil report verify " + str(reports) + ")\n" if key else "")
    )
    text = redact(text)
    (reports / "summary.txt").write_text(text, encoding="utf-8")
    if key:
        seal(reports, load_private_key(Path(key)), subject=cert.report_id)
    print(text, end="")
    if pytest_rc not in (0, 1):  # 1 = some plans failed: the summary says which
        print(f"hil: pytest exited with {pytest_rc}", file=sys.stderr)
        return 2
    certified = cert.verdict.value == "CERTIFIED"
    return 0 if ok and pytest_rc == 0 and report_file and certified else 1


def add_certify_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cert = sub.add_parser(
        "certify", help="run the plans and canaries on a bench; write and seal the reports"
    )
    cert.add_argument("plans", nargs="*", default=["testplans"])
    cert.add_argument("--bench", default="benches/emulated.yaml")
    cert.add_argument("--reports", default="reports")
    cert.add_argument("--allure", default=None, help="path of the allure command line")
    cert.add_argument("--defect", action="append", default=[], metavar="DEVICE:DEFECT")
    cert.add_argument("--no-canaries", action="store_true", help="skip the canary runs")
    add_certificate_options(cert)
    cert.set_defaults(func=certify)
